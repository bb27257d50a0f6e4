//go:build linux

package park

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Parker is one epoll set of parked connections and the goroutine that
// reads its events. Its methods may be called from any goroutine.
type Parker struct {
	ep *os.File // the epoll set, in Go's network poller
	rc syscall.RawConn

	mu     sync.Mutex
	spots  map[uint64]*Spot // the parked connections, by park
	next   uint64
	closed bool
	done   chan struct{} // closed when loop returns
}

// Spot is a connection's place in a Parker: a connection embeds one and
// parks in it, again and again. Its zero value is not parked.
type Spot struct {
	// Under the Parker's mu:
	id    uint64 // the current park's, 0 while not parked
	wake  func(readable bool)
	timer *time.Timer // the current park's deadline, if any
}

// events is what a parked socket waits for: a byte to read, the client's
// end of the stream (EPOLLRDHUP), and (always reported) errors and
// hang-ups. One-shot: an event disarms the registration, which stays in
// the set until the socket is closed or parked again (EPOLL_CTL_MOD).
const events = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// New makes a Parker and starts its goroutine; Close ends both.
func New() (*Parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's network poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	ep := os.NewFile(uintptr(fd), "park-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	p := &Parker{ep: ep, rc: rc, spots: map[uint64]*Spot{}, done: make(chan struct{})}
	// A file the poller refused would make every wait fail: find out now.
	if err := rc.Read(func(uintptr) bool { return true }); err != nil {
		ep.Close()
		return nil, err
	}
	go p.loop()
	return p, nil
}

// Park parks s: it waits for the socket of rc to turn readable, with no
// goroutine, then calls wake(true) on a new goroutine. If deadline (when
// not zero) passes first, or Cancel cancels the park, wake(false) is
// called instead, on a goroutine of its own too. wake is called exactly
// once per park; once it is called, s may be parked again.
//
// The caller must neither read rc's socket nor close it without
// cancelling the park until wake is called, and from the moment Park
// returns nil wake may be running. When Park returns an error, nothing
// is parked and wake is never called: the caller waits itself.
func (p *Parker) Park(s *Spot, rc syscall.RawConn, deadline time.Time, wake func(readable bool)) error {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return net.ErrClosed
	case s.id != 0:
		p.mu.Unlock()
		return errParked
	}
	p.next++
	id := p.next
	s.id, s.wake = id, wake
	p.spots[id] = s
	if !deadline.IsZero() {
		s.timer = time.AfterFunc(time.Until(deadline), func() { p.expire(id) })
	}
	p.mu.Unlock()

	var cerr error
	err := rc.Control(func(fd uintptr) {
		// Inside the set's Control too: a concurrent Close cannot let
		// its descriptor's number go to another file meanwhile.
		eerr := p.rc.Control(func(ep uintptr) {
			cerr = register(int(ep), int(fd), id)
		})
		if eerr != nil {
			cerr = eerr
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil && p.take(id) != nil {
		return err
	}
	// Registered, or (a deadline already past, a Close) woken anyway.
	return nil
}

var errParked = errors.New("park: the spot is parked already")

// Cancel wakes the connection parked in s with wake(false), and reports
// whether it was parked. It may be called at any time, from any
// goroutine: before s was ever parked, or once its wake was called, it
// does nothing.
func (p *Parker) Cancel(s *Spot) bool {
	p.mu.Lock()
	wake := p.takeLocked(s.id)
	p.mu.Unlock()
	if wake == nil {
		return false
	}
	go wake(false)
	return true
}

// expire is a deadline's timer function (on a goroutine of its own).
func (p *Parker) expire(id uint64) {
	if wake := p.take(id); wake != nil {
		wake(false)
	}
}

// take ends the park id and returns its wake function, or nil when it
// was woken already: whoever takes a park calls its wake.
func (p *Parker) take(id uint64) func(bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(id)
}

func (p *Parker) takeLocked(id uint64) func(bool) {
	if id == 0 {
		return nil
	}
	s := p.spots[id]
	if s == nil {
		return nil
	}
	delete(p.spots, id)
	wake := s.wake
	s.id, s.wake = 0, nil
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return wake
}

// Len reports how many connections are parked.
func (p *Parker) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spots)
}

// Close wakes every parked connection with wake(false), refuses further
// Parks and stops the Parker's goroutine.
func (p *Parker) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ep.Close() // ends loop's wait
	<-p.done
	return err
}

// register adds socket fd to the epoll set ep (or, parked before, arms it
// again), one-shot, with id as the event's data.
func register(ep, fd int, id uint64) error {
	// The id travels in the event's 64-bit data (Fd and Pad).
	ev := syscall.EpollEvent{Events: events, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev)
	if err == syscall.EEXIST {
		// Parked before, and woken by its event or not at all.
		err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, fd, &ev)
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// loop reads the set's events as Go's poller reports the set readable,
// and wakes their connections, until Close. Then it wakes the rest.
func (p *Parker) loop() {
	defer close(p.done)
	var evs [128]syscall.EpollEvent
	for {
		var n int
		err := p.rc.Read(func(fd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(fd), evs[:], 0)
			switch werr {
			case nil:
				return n > 0
			case syscall.EINTR:
				n = 0
				return true // try again at once: an edge may be gone
			}
			n = 0
			return false
		})
		if err != nil {
			break // closed
		}
		for _, ev := range evs[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if wake := p.take(id); wake != nil {
				go wake(true)
			}
		}
	}
	p.mu.Lock()
	ids := make([]uint64, 0, len(p.spots))
	for id := range p.spots {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		if wake := p.take(id); wake != nil {
			go wake(false)
		}
	}
}
