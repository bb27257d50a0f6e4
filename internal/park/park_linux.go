//go:build linux

package park

import (
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
	spots  map[uint64]*Spot // the parked connections, by id
	next   uint64
	closed bool
	done   chan struct{} // closed when loop returns
}

// Spot is one parked connection.
type Spot struct {
	p     *Parker
	id    uint64
	wake  func(readable bool)
	timer *time.Timer // the deadline's, if any
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

// Park waits for the socket of rc to turn readable, with no goroutine,
// then calls wake(true) on a new goroutine. If deadline (when not zero)
// passes first, or the spot is cancelled, wake(false) is called instead,
// on a goroutine of its own too. wake is called exactly once.
//
// The caller must neither read rc's socket nor close it without
// cancelling the spot until wake is called. When Park returns an error,
// nothing is parked and wake is never called: the caller waits itself.
func (p *Parker) Park(rc syscall.RawConn, deadline time.Time, wake func(readable bool)) (*Spot, error) {
	s := &Spot{p: p, wake: wake}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, net.ErrClosed
	}
	p.next++
	s.id = p.next
	p.spots[s.id] = s
	if !deadline.IsZero() {
		// Under mu: expire takes mu, so it sees s.timer set.
		s.timer = time.AfterFunc(time.Until(deadline), s.expire)
	}
	p.mu.Unlock()

	var cerr error
	err := rc.Control(func(fd uintptr) {
		// Inside the set's Control too: a concurrent Close cannot let
		// its descriptor's number go to another file meanwhile.
		eerr := p.rc.Control(func(ep uintptr) {
			cerr = register(int(ep), int(fd), s.id)
		})
		if eerr != nil {
			cerr = eerr
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil && p.take(s.id) != nil {
		return nil, err
	}
	// Registered, or (a deadline already past, a Close) woken anyway.
	return s, nil
}

// Cancel wakes the spot's connection with wake(false) if it is still
// parked, and reports whether it was.
func (s *Spot) Cancel() bool {
	if s.p.take(s.id) == nil {
		return false
	}
	go s.wake(false)
	return true
}

// expire is the deadline's timer function (on a goroutine of its own).
func (s *Spot) expire() {
	if s.p.take(s.id) != nil {
		s.wake(false)
	}
}

// take removes the spot id and returns it, or nil when it was woken
// already: whoever takes a spot calls its wake.
func (p *Parker) take(id uint64) *Spot {
	p.mu.Lock()
	s := p.spots[id]
	if s != nil {
		delete(p.spots, id)
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	p.mu.Unlock()
	return s
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
			if s := p.take(id); s != nil {
				go s.wake(true)
			}
		}
	}
	p.mu.Lock()
	rest := p.spots
	p.spots = map[uint64]*Spot{}
	p.mu.Unlock()
	for _, s := range rest {
		if s.timer != nil {
			s.timer.Stop()
		}
		go s.wake(false)
	}
}
