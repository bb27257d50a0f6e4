package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/internal/cancelctx"
	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/internal/rawio"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Protocol constants.
const (
	// initialWindow is RFC 9113's initial flow-control window.
	initialWindow = 65535
	// streamRecvWindow and connRecvWindow are the request-body bytes a
	// client may send ahead of the handler's reads, per stream and per
	// connection (x/net/http2's defaults): what a connection buffers is
	// bounded by connRecvWindow.
	streamRecvWindow = 1 << 20
	connRecvWindow   = 1 << 20
	// maxWindow is the largest flow-control window (2^31-1).
	maxWindow = 1<<31 - 1
	// readFrameSize is the largest frame read (SETTINGS_MAX_FRAME_SIZE,
	// left at its default).
	readFrameSize = 16384
	// headerTableSize is the HPACK dynamic table of the request decoder
	// (SETTINGS_HEADER_TABLE_SIZE, left at its default): a client's table
	// size update above it is a COMPRESSION_ERROR.
	headerTableSize = 4096
	// inflowMinRefresh is the least WINDOW_UPDATE increment sent while
	// the window is not half used, as x/net/http2.
	inflowMinRefresh = 4 << 10
	// goAwayLinger is how long a connection ended by an error keeps
	// reading (and discarding) after its GOAWAY, so that the client reads
	// the GOAWAY before the close resets the connection.
	goAwayLinger = time.Second
	// floodFrames is the unproductive frames (PING, SETTINGS, PRIORITY,
	// empty DATA without END_STREAM, RST_STREAM of a stream whose handler
	// never ran) a connection may send, beyond floodPerRequest for each
	// request it made, before it is closed with ENHANCE_YOUR_CALM.
	floodFrames     = 10000
	floodPerRequest = 10
	// writeBufSize is the connection's write buffer: the frames of
	// several streams' responses leave in one TLS record and syscall.
	writeBufSize = 16 << 10
	readBufSize  = 8 << 10
	// idleSettle is how long a connection stays without a stream before
	// its reading goroutine stops waiting in crypto/tls's read with its
	// read buffer and waits on the socket alone (waitIdle).
	idleSettle = 250 * time.Millisecond
)

// aLongTimeAgo is a deadline in the past, to interrupt a read.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection. The goroutine of ServeConn reads its
// frames and handles the control frames itself; handlers write their
// frames straight to the write buffer under wmu.
type conn struct {
	srv        *Server
	nc         net.Conn
	tlsState   *tls.ConnectionState // see connState
	remoteAddr string
	// ctx is the connection's context, under Server.ConnContext's: the
	// parent of its streams' contexts, which it cancels when it is
	// cancelled (cancelStreams), at the connection's end at the latest.
	ctx   cancelctx.Context
	start time.Time

	// Owned by the reading goroutine. The framer reads through src, from
	// br while the connection has one (see waitIdle); neither is held
	// while the connection waits idle. hdec is the framer's HPACK
	// decoder.
	br              *bufio.Reader
	src             frameSource
	fr              *http2.Framer
	hdec            *hpack.Decoder
	sawSettings     bool
	unackedSettings int
	flood           int
	requests        int
	maxStreams      int
	maxHeaderList   uint32

	// maxStreamID is the highest stream the client opened.
	maxStreamID atomic.Uint32
	// peerMaxFrame is the client's SETTINGS_MAX_FRAME_SIZE.
	peerMaxFrame atomic.Uint32

	// Writing: frames go to bw under wmu. queued counts the writers
	// waiting for wmu: a writer flushes only when none is queued behind
	// it, so that the last of a burst flushes for all. needFlush is set
	// when a writer left bytes in bw for a queued one.
	wmu       sync.Mutex
	queued    atomic.Int32
	needFlush atomic.Bool
	bw        *bufio.Writer
	out       deadlineWriter
	wfr       *http2.Framer
	henc      fieldEncoder
	hblock    []byte // the header block being encoded
	werr      error
	// frameHeader is the DATA frame header being written (wmu).
	frameHeader [9]byte

	// Flow control, both ways, under flowMu.
	flowMu      sync.Mutex
	sendWin     int64 // the connection's send window
	initSendWin int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	inAvail     int64 // what the client may still send on the connection
	inUnsent    int64 // consumed, not yet given back by WINDOW_UPDATE
	waiters     []*stream

	// running is the handlers running (curHandlers, read without mu).
	running atomic.Int32

	// Streams and handlers, under mu.
	mu          sync.Mutex
	streams     map[uint32]*stream
	curHandlers int
	queue       []*stream
	// resets are the last streams the server reset (ring, nextReset).
	resets    [8]uint32
	nextReset uint32
	goingAway bool   // GOAWAY sent: no stream after lastID
	lastID    uint32 // the last stream the GOAWAY lets through
	closed    bool

	// The connection's timer: header and idle timeouts, and the idle
	// settle (see waitIdle). timerAt is when it fires (UnixNano, mu).
	timer     *time.Timer
	timerAt   int64
	requested atomic.Bool
	idleSince atomic.Int64 // UnixNano since no stream is open; 0 while one is
	// settleAt is when the timer settles the idle connection (UnixNano,
	// 0: not while a stream is open, or done); settle says that it
	// interrupted the reading goroutine's read (see waitIdle).
	settleAt atomic.Int64
	settle   atomic.Bool
	// parked is set while the reading goroutine waits in waitIdle.
	parked atomic.Bool
	// prefaced is set once the client's preface is read (reading
	// goroutine).
	prefaced bool

	// mayPark is whether the connection parks in srv.Parker when idle;
	// done is called once it is closed (ServeConnThen).
	mayPark bool
	done    func(error)
	// spot is the connection's place in srv.Parker.
	spot park.Spot
	// wakeFn is c.wake, made once.
	wakeFn func(readable bool)
}

// deadlineWriter writes to the connection under WriteTimeout: each write
// has its own deadline, so a connection on which nothing can be written
// for that long fails its write and is closed.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	return w.nc.Write(p)
}

// connWriter is where the write framer writes: the connection's buffer
// while it has one (wmu is held).
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	if w.c.bw == nil {
		return 0, errConnClosed
	}
	return w.c.bw.Write(p)
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
)

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remoteAddr: nc.RemoteAddr().String(), start: time.Now()}
	ctx := context.Background()
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	c.ctx.Init(ctx)
	c.ctx.WatchCancel(c.cancelStreams)
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(nc)
	c.src.c = c
	c.out = deadlineWriter{nc: nc, timeout: s.WriteTimeout}
	c.maxHeaderList = s.maxHeaderListSize()
	c.hdec = hpack.NewDecoder(headerTableSize, nil)
	c.newReadFramer()
	c.wfr = http2.NewFramer(connWriter{c}, nil)
	// Responses are encoded without HPACK's dynamic table, as nginx
	// encodes them (fieldEncoder): the fields that are not in the static
	// table go as literals, and neither end keeps a copy of them (with
	// their index maps, about 1.5 KB per idle connection here). The first
	// header block tells the client so (a table size update to 0).
	c.peerMaxFrame.Store(16384)
	c.maxStreams = s.maxStreams()
	c.sendWin = initialWindow
	c.initSendWin = initialWindow
	c.inAvail = connRecvWindow
	c.streams = make(map[uint32]*stream)
	c.idleSince.Store(c.start.UnixNano())
	c.settleAt.Store(c.start.Add(idleSettle).UnixNano())
	c.wakeFn = c.wake
	return c
}

// run runs the connection's reading goroutine until the connection parks
// or ends; at its end it tears the connection down and calls done. Woken
// from a park, it first ends the parked wait (wake).
func (c *conn) run(woken, readable bool) {
	parked, err := c.serve(woken, readable)
	if parked {
		return // c is the woken goroutine's
	}
	c.teardown()
	c.srv.untrack(c)
	c.done(err)
}

// begin arms the connection's timer and sends the server's preface.
func (c *conn) begin() {
	now := time.Now()
	c.mu.Lock()
	c.timer, c.timerAt = time.AfterFunc(time.Hour, c.onTimer), math.MaxInt64
	c.armLocked(now)
	c.mu.Unlock()
	// The server's preface: SETTINGS, and the connection window opened
	// from 65,535 to connRecvWindow.
	c.lockWrite()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.maxStreams)},
		{ID: http2.SettingMaxHeaderListSize, Val: c.maxHeaderList},
		{ID: http2.SettingInitialWindowSize, Val: streamRecvWindow},
	}
	c.wfr.WriteSettings(settings...)
	c.wfr.WriteWindowUpdate(0, connRecvWindow-initialWindow)
	c.unackedSettings++
	c.unlockWrite(true)
}

// serve reads the client's preface and frames until the connection ends
// or parks. Woken from a park, it first ends the parked wait: readable
// says whether the socket is.
func (c *conn) serve(woken, readable bool) (parked bool, err error) {
	if woken {
		if err := c.endWait(readable); err != nil {
			return false, c.readErr(err)
		}
	}
	if !c.prefaced {
		var preface [len(http2.ClientPreface)]byte
		for {
			c.src.boundary = true
			_, err := io.ReadFull(&c.src, preface[:])
			if err == errSettled {
				// No byte of the preface read yet (frameSource).
				if parked, err := c.waitIdle(); parked || err != nil {
					return parked, c.readErr(err)
				}
				continue
			}
			if err != nil {
				return false, c.readErr(err)
			}
			break
		}
		if string(preface[:]) != http2.ClientPreface {
			return false, errors.New("h2: bogus client preface")
		}
		c.prefaced = true
	}
	for {
		if c.needFlush.Load() && c.mayBlock() {
			c.lockWrite()
			c.unlockWrite(true)
		}
		c.src.boundary = true
		f, err := c.fr.ReadFrame()
		if err == errSettled {
			if parked, err := c.waitIdle(); parked || err != nil {
				return parked, c.readErr(err)
			}
			continue
		}
		if err == nil {
			err = c.processFrame(f)
		} else if errors.Is(err, http2.ErrFrameTooLarge) {
			err = connErr(http2.ErrCodeFrameSize, "frame_too_large")
		} else {
			var ce http2.ConnectionError
			var se http2.StreamError
			switch {
			case errors.As(err, &se):
				err = streamErr(se.StreamID, se.Code, "bad_frame")
			case errors.As(err, &ce):
				if f != nil && f.Header().StreamID > c.maxStreamID.Load() && f.Header().StreamID%2 == 1 {
					c.maxStreamID.Store(f.Header().StreamID)
				}
				err = connErr(http2.ErrCode(ce), "bad_frame")
			default:
				return false, c.readErr(err)
			}
		}
		switch e := err.(type) {
		case nil:
		case *streamError:
			c.srv.countError(e)
			c.resetStreamID(e.id, e.code, e.body)
		case *connError:
			c.srv.countError(e)
			c.goAwayError(e.code)
			return false, e
		default:
			return false, err
		}
	}
}

// readErr sorts a read error: the client or a timeout ended the
// connection (nil), or the server closed it.
func (c *conn) readErr(err error) error {
	if err == nil {
		return nil
	}
	if c.srv.shutdown.Load() {
		return ErrServerClosed
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// frameSource is what the framer reads: the connection's read buffer.
// When the timer interrupts a read to settle an idle connection (see
// waitIdle), it returns errSettled if no byte of the next frame was read
// yet, and reads on otherwise.
type frameSource struct {
	c *conn
	// boundary is set before each frame and cleared by its first byte.
	boundary bool
}

var errSettled = errors.New("h2: idle connection settled")

func (r *frameSource) Read(p []byte) (int, error) {
	c := r.c
	for {
		n, err := c.br.Read(p)
		if n > 0 {
			r.boundary = false
			return n, nil
		}
		if err == nil || !c.settle.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if r.boundary {
			return 0, errSettled
		}
		// The client is in the middle of a frame: read on, and settle
		// again later if the connection stays idle.
		if c.endSettle() {
			c.resettle()
		}
	}
}

// waitIdle waits for the client's next frame without the read buffer,
// and in a shallow stack: a connection without a stream for idleSettle
// (onTimer interrupted its read) holds neither the 8 KB buffer nor the
// 8 KB stack of a wait in crypto/tls's read, which the garbage collector
// then shrinks. The read that timed out proves that crypto/tls holds no
// record of the next frame, so the socket is what to wait on; the byte
// that wakes the wait stays there for crypto/tls (rawio.WaitReadable).
// The connection's deadlines and Close end the wait as they end a read.
//
// With a Parker (ServeConnThen), the connection then parks instead, and
// the goroutine returns: parked is true, and the connection is no longer
// the caller's.
//
//go:noinline
func (c *conn) waitIdle() (parked bool, err error) {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
	c.dropReadFramer()
	c.tlsState = nil // the requests that held it are done (connState)
	c.parked.Store(true)
	ok := true // going away: its deadline ends the next read
	if c.endSettle() {
		if c.srv.ConnIdle != nil {
			c.srv.ConnIdle(&c.ctx)
		}
		if c.mayPark && c.park() {
			return true, nil
		}
		ok = c.waitSocket()
	}
	return false, c.endWait(ok)
}

// newReadFramer makes the framer the connection reads with, around its
// HPACK decoder (whose table is the client's to index).
func (c *conn) newReadFramer() {
	c.fr = http2.NewFramer(nil, &c.src)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(readFrameSize)
	c.fr.MaxHeaderListSize = c.maxHeaderList
	c.fr.ReadMetaHeaders = c.hdec
	c.srv.readFramers.Add(1)
}

// connState returns the connection's TLS state for its requests (nil
// without TLS), made on the first request after the connection was made
// or waited idle (waitIdle lets it go). Reading goroutine.
func (c *conn) connState() *tls.ConnectionState {
	if c.tlsState == nil {
		if tc, ok := c.nc.(*tls.Conn); ok {
			st := tc.ConnectionState()
			c.tlsState = &st
		}
	}
	return c.tlsState
}

// dropReadFramer lets the read framer go while the connection waits
// idle: x/net's Framer keeps a payload buffer the size of the largest
// frame it read (up to readFrameSize, 16 KB, after one upload) for as long
// as it lives. Between two frames the framer holds nothing else the
// connection needs: a header block and its CONTINUATION frames are read
// in one ReadFrame, and the HPACK decoder is the connection's.
func (c *conn) dropReadFramer() {
	c.fr = nil
	c.srv.readFramers.Add(-1)
}

// waitSocket waits on the socket alone until it is readable (true), or a
// deadline or Close ends the wait (false).
func (c *conn) waitSocket() bool {
	var peek [1]byte
	return rawio.WaitReadable(c.nc, &peek)
}

// endWait ends an idle wait on the socket: the connection takes a read
// buffer again. ok is whether the socket is readable.
func (c *conn) endWait(ok bool) error {
	c.parked.Store(false)
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.nc)
	c.newReadFramer()
	if !ok {
		return net.ErrClosed
	}
	c.resettle()
	return nil
}

// park parks the connection in srv.Parker until its socket turns readable
// or unpark cancels the spot, and reports whether it did. If it did, wake
// may already be running on another goroutine.
func (c *conn) park() bool {
	rc := rawio.SocketConn(c.nc)
	if rc == nil {
		return false
	}
	// No deadline: the connection's timer ends the wait (unpark).
	if err := c.srv.Parker.Park(&c.spot, rc, time.Time{}, c.wakeFn); err != nil {
		return false // closed, or not a socket: the caller waits itself
	}
	c.mu.Lock()
	gone := c.closed || c.goingAway
	c.mu.Unlock()
	if gone || c.ctx.Err() != nil {
		// Interrupted between endSettle and here, with nothing parked
		// to cancel.
		c.srv.Parker.Cancel(&c.spot)
	}
	return true
}

// wake carries on reading a parked connection, on a goroutine of its own.
// When the socket is not readable, unpark interrupted the wait (a
// timeout, Shutdown, Close): the goroutine waits as an unparked
// connection does, under the deadline or Close that interrupted it.
func (c *conn) wake(readable bool) {
	if !readable {
		readable = c.waitSocket()
	}
	c.run(true, readable)
}

// unpark interrupts the wait of a parked connection, after whatever
// interrupts the reading goroutine's read (a deadline, Close): closing a
// parked socket, or setting its deadline, wakes nobody.
func (c *conn) unpark() {
	if c.srv.Parker != nil {
		c.srv.Parker.Cancel(&c.spot)
	}
}

// resettle schedules the next settle of a connection still idle (woken
// by a PING, say): idleSettle from now.
func (c *conn) resettle() {
	c.mu.Lock()
	if c.idleSince.Load() != 0 {
		c.settleSoonLocked(time.Now().UnixNano())
	}
	c.mu.Unlock()
}

// settleSoonLocked schedules the settle of an idle connection idleSettle
// after now, bringing the timer forward if it is due later; mu is held.
func (c *conn) settleSoonLocked(now int64) {
	at := now + int64(idleSettle)
	c.settleAt.Store(at)
	if c.timer != nil && !c.closed && c.timerAt > at {
		c.timer.Reset(idleSettle)
		c.timerAt = at
	}
}

// endSettle ends the interruption of a settle: the read deadline is
// cleared, unless the connection is going away (its linger deadline
// stands). It reports whether it was cleared.
func (c *conn) endSettle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle.Store(false)
	if c.goingAway || c.closed {
		return false
	}
	c.nc.SetReadDeadline(time.Time{})
	return true
}

// mayBlock reports whether the next ReadFrame may wait for the client:
// less than a whole frame is buffered.
func (c *conn) mayBlock() bool {
	n := c.br.Buffered()
	if n < 9 {
		return true
	}
	h, _ := c.br.Peek(9)
	return n < 9+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

// teardown ends the connection: every stream's context is cancelled and
// its pending reads and writes fail; the buffers go back to the pools.
func (c *conn) teardown() {
	c.mu.Lock()
	c.closed = true
	streams := c.streams
	c.streams = map[uint32]*stream{}
	c.queue = nil
	timer := c.timer
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	c.ctx.Cancel() // stops watching ConnContext's context
	c.nc.Close()
	for _, st := range streams {
		st.ctx.Cancel()
		st.closeBody(errConnClosed)
	}
	c.flowMu.Lock()
	waiters := c.waiters
	c.waiters = nil
	c.flowMu.Unlock()
	for _, st := range waiters {
		st.wakeWriter()
	}
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
	c.dropReadFramer()
	// Handlers still running may try to write: they find werr.
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = errConnClosed
	}
	c.putWriter()
	c.wmu.Unlock()
}

var errConnClosed = errors.New("h2: connection closed")

// processFrame handles one frame read from the client.
func (c *conn) processFrame(f http2.Frame) error {
	if !c.sawSettings {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			return connErr(http2.ErrCodeProtocol, "first_settings")
		}
		c.sawSettings = true
	}
	// After a graceful GOAWAY, frames of streams it did not let through
	// are ignored; their DATA still counts against the connection window,
	// given back at once.
	if id := f.Header().StreamID; id != 0 {
		c.mu.Lock()
		ignore := c.goingAway && id > c.lastID
		c.mu.Unlock()
		if ignore {
			if df, ok := f.(*http2.DataFrame); ok {
				if !c.takeConnInflow(df.Length) {
					return streamErr(id, http2.ErrCodeFlowControl, "data_flow")
				}
				c.giveConnInflow(int64(df.Length), c.mayBlock())
			}
			return nil
		}
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		if f.StreamID != 0 {
			return connErr(http2.ErrCodeProtocol, "ping_on_stream")
		}
		if err := c.unproductive(); err != nil {
			return err
		}
		c.lockWrite()
		c.wfr.WritePing(true, f.Data)
		c.unlockWrite(c.mayBlock())
		return nil
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamID == f.StreamDep {
			return streamErr(f.StreamID, http2.ErrCodeProtocol, "priority")
		}
		// Accepted and ignored: responses are not scheduled by priority.
		return c.unproductive()
	case *http2.GoAwayFrame:
		c.goAwayGraceful()
		return nil
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "push_promise")
	}
	// Unknown and extension frames are ignored (RFC 9113 §5.5).
	return nil
}

// unproductive counts a frame that serves no request; a connection that
// sends too many is a flood.
func (c *conn) unproductive() error {
	c.flood++
	if c.flood > floodFrames+floodPerRequest*c.requests {
		return connErr(http2.ErrCodeEnhanceYourCalm, "flood")
	}
	return nil
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		c.unackedSettings--
		if c.unackedSettings < 0 {
			return connErr(http2.ErrCodeProtocol, "ack_mystery")
		}
		return nil
	}
	if f.NumSettings() > 100 || f.HasDuplicates() {
		return connErr(http2.ErrCodeProtocol, "settings_big_or_dups")
	}
	if err := c.unproductive(); err != nil {
		return err
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return connErr(http2.ErrCode(ce), "bad_setting")
			}
			return connErr(http2.ErrCodeProtocol, "bad_setting")
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			// The response encoder uses no dynamic table: any limit the
			// client sets is at least its 0.
		case http2.SettingInitialWindowSize:
			return c.setInitialSendWindow(int64(s.Val))
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		case http2.SettingNoRFC7540Priorities:
			if s.Val > 1 {
				return connErr(http2.ErrCodeProtocol, "bad_setting")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.lockWrite()
	c.wfr.WriteSettingsAck()
	c.unlockWrite(c.mayBlock())
	return nil
}

// setInitialSendWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every
// open stream's send window (RFC 9113 §6.9.2).
func (c *conn) setInitialSendWindow(v int64) error {
	c.mu.Lock()
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.mu.Unlock()
	c.flowMu.Lock()
	delta := v - c.initSendWin
	c.initSendWin = v
	for _, st := range streams {
		st.sendWin += delta
		if st.sendWin > maxWindow {
			c.flowMu.Unlock()
			return connErr(http2.ErrCodeFlowControl, "setting_win_size")
		}
	}
	waiters := c.takeWaiters(delta > 0)
	c.flowMu.Unlock()
	for _, st := range waiters {
		st.wakeWriter()
	}
	return nil
}

// takeWaiters returns the writers waiting for window and forgets them,
// when wake is true. flowMu is held.
func (c *conn) takeWaiters(wake bool) []*stream {
	if !wake || len(c.waiters) == 0 {
		return nil
	}
	w := c.waiters
	c.waiters = nil
	for _, st := range w {
		st.waiting = false
	}
	return w
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.flowMu.Lock()
		if c.sendWin+int64(f.Increment) > maxWindow {
			c.flowMu.Unlock()
			return connErr(http2.ErrCodeFlowControl, "bad_flow")
		}
		c.sendWin += int64(f.Increment)
		waiters := c.takeWaiters(true)
		c.flowMu.Unlock()
		for _, st := range waiters {
			st.wakeWriter()
		}
		return nil
	}
	if f.StreamID > c.maxStreamID.Load() {
		return connErr(http2.ErrCodeProtocol, "stream_idle")
	}
	st := c.stream(f.StreamID)
	if st == nil {
		// A closed stream: allowed (RFC 9113 §6.9).
		return nil
	}
	c.flowMu.Lock()
	if st.sendWin+int64(f.Increment) > maxWindow {
		c.flowMu.Unlock()
		return streamErr(f.StreamID, http2.ErrCodeFlowControl, "bad_flow")
	}
	st.sendWin += int64(f.Increment)
	c.flowMu.Unlock()
	st.wakeWriter()
	return nil
}

func (c *conn) stream(id uint32) *stream {
	st, _ := c.streamState(id)
	return st
}

// streamState returns an open stream and its state.
func (c *conn) streamState(id uint32) (*stream, streamState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[id]
	if st == nil {
		return nil, stateClosed
	}
	return st, st.state
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	if f.StreamID > c.maxStreamID.Load() {
		return connErr(http2.ErrCodeProtocol, "reset_idle_stream")
	}
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		return nil
	}
	c.removeLocked(st)
	started := st.started
	c.mu.Unlock()
	st.abort(errStreamReset)
	if !started {
		// A stream reset before its handler ran served nothing.
		return c.unproductive()
	}
	return nil
}

var (
	errStreamReset  = errors.New("h2: stream reset by the client")
	errStreamClosed = errors.New("h2: stream closed")
)

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	if id > c.maxStreamID.Load() {
		return connErr(http2.ErrCodeProtocol, "data_on_idle")
	}
	c.mu.Lock()
	st := c.streams[id]
	open := st != nil && st.state == stateOpen && !st.gotTrailers
	c.mu.Unlock()
	if !open {
		// The connection's window still counts what a closed stream
		// receives; it is given back at once.
		if !c.takeConnInflow(f.Length) {
			return streamErr(id, http2.ErrCodeFlowControl, "data_flow")
		}
		c.giveConnInflow(int64(f.Length), c.mayBlock())
		return streamErr(id, http2.ErrCodeStreamClosed, "closed")
	}
	data := f.Data()
	if st.declLen >= 0 && st.recvd+int64(len(data)) > st.declLen {
		if !c.takeConnInflow(f.Length) {
			return streamErr(id, http2.ErrCodeFlowControl, "data_flow")
		}
		c.giveConnInflow(int64(f.Length), c.mayBlock())
		// The body fails when the stream is reset, not before: a handler
		// woken by the failure must find its response refused.
		return &streamError{id: id, code: http2.ErrCodeProtocol, cause: "send_too_much", body: errTooMuchBody}
	}
	if f.Length > 0 {
		if !c.takeInflow(st, f.Length) {
			return streamErr(id, http2.ErrCodeFlowControl, "flow_on_data_length")
		}
		st.recvd += int64(len(data))
		if len(data) > 0 && !st.bodyWrite(data) {
			// The handler closed the body: the connection's window is
			// given back, not the stream's.
			c.giveConnInflow(int64(len(data)), c.mayBlock())
		}
		if pad := int64(f.Length) - int64(len(data)); pad > 0 {
			c.giveInflow(st, pad, c.mayBlock())
		}
	}
	if len(data) == 0 && !f.StreamEnded() {
		// An empty DATA frame, padded or not, serves no request.
		if err := c.unproductive(); err != nil {
			return err
		}
	}
	if f.StreamEnded() {
		c.endStream(st)
	}
	return nil
}

var errTooMuchBody = errors.New("h2: the client sent more than its declared Content-Length")

// endStream marks the client's side of st ended: its body is complete.
func (c *conn) endStream(st *stream) {
	c.mu.Lock()
	st.state = stateHalfClosedRemote
	c.mu.Unlock()
	if st.declLen >= 0 && st.declLen != st.recvd {
		st.closeBody(errShortBody)
		return
	}
	st.closeBody(io.EOF)
}

var errShortBody = errors.New("h2: the request body is shorter than its declared Content-Length")

// Receive flow control.

// takeInflow takes n bytes of the connection's and the stream's receive
// windows, or reports false when the client exceeded either.
func (c *conn) takeInflow(st *stream, n uint32) bool {
	c.flowMu.Lock()
	defer c.flowMu.Unlock()
	if int64(n) > c.inAvail || int64(n) > st.inAvail {
		return false
	}
	c.inAvail -= int64(n)
	st.inAvail -= int64(n)
	return true
}

func (c *conn) takeConnInflow(n uint32) bool {
	c.flowMu.Lock()
	defer c.flowMu.Unlock()
	if int64(n) > c.inAvail {
		return false
	}
	c.inAvail -= int64(n)
	return true
}

// refresh adds n consumed bytes to a window's unsent credit and returns
// the WINDOW_UPDATE increment to send now (0: not yet), as x/net/http2:
// once the credit reaches 4 KiB or the window still available.
func refresh(avail, unsent *int64, n int64) int64 {
	u := *unsent + n
	if u < inflowMinRefresh && u < *avail {
		*unsent = u
		return 0
	}
	*avail += u
	*unsent = 0
	return u
}

// giveConnInflow gives n bytes back to the connection's receive window;
// flush is the flush decision of the WINDOW_UPDATE written (see
// unlockWrite).
func (c *conn) giveConnInflow(n int64, flush bool) {
	c.flowMu.Lock()
	inc := refresh(&c.inAvail, &c.inUnsent, n)
	c.flowMu.Unlock()
	if inc > 0 {
		c.lockWrite()
		c.wfr.WriteWindowUpdate(0, uint32(inc))
		c.unlockWrite(flush)
	}
}

// giveInflow gives n bytes back to the connection's and st's receive
// windows (read by the handler, or padding).
func (c *conn) giveInflow(st *stream, n int64, flush bool) {
	c.flowMu.Lock()
	cinc := refresh(&c.inAvail, &c.inUnsent, n)
	var sinc int64
	if !st.bodyClosed {
		sinc = refresh(&st.inAvail, &st.inUnsent, n)
	}
	c.flowMu.Unlock()
	if cinc == 0 && sinc == 0 {
		return
	}
	c.lockWrite()
	if cinc > 0 {
		c.wfr.WriteWindowUpdate(0, uint32(cinc))
	}
	if sinc > 0 {
		c.wfr.WriteWindowUpdate(st.id, uint32(sinc))
	}
	c.unlockWrite(flush)
}

// Writing.

// lockWrite takes the write lock, counted as queued while it waits.
//
// The write buffer is taken from a pool with the lock, and given back
// when the lock is released with nothing left in it: a connection holds
// no write buffer between its writes.
func (c *conn) lockWrite() {
	c.queued.Add(1)
	c.wmu.Lock()
	c.queued.Add(-1)
	if c.bw == nil && c.werr == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(&c.out)
	}
}

// putWriter gives the write buffer back to the pool; wmu is held.
func (c *conn) putWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// unlockWrite releases the write lock, flushing first when flush is set
// and no other writer is queued (the last queued writer flushes for
// all). It returns the connection's write error, if any.
func (c *conn) unlockWrite(flush bool) error {
	if c.bw == nil {
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	if c.werr == nil && c.bw.Buffered() > 0 {
		if flush && c.queued.Load() == 0 {
			c.werr = c.bw.Flush()
			c.needFlush.Store(false)
		} else {
			c.needFlush.Store(true)
		}
	}
	err := c.werr
	if err != nil || c.bw.Buffered() == 0 {
		c.putWriter()
	}
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
	return err
}

// unlockWriteSoon releases the write lock without flushing, lets the
// goroutines ready to run go first (other handlers finishing their
// responses), then flushes what is still buffered, unless a writer queued
// meanwhile will. The delay is one pass of the scheduler.
func (c *conn) unlockWriteSoon() error {
	if c.werr == nil && c.bw != nil && c.bw.Buffered() > 0 {
		c.needFlush.Store(true)
	}
	c.wmu.Unlock()
	runtime.Gosched()
	c.lockWrite()
	return c.unlockWrite(true)
}

// writeFailed closes a connection that cannot be written to.
func (c *conn) writeFailed(err error) {
	c.ctx.Cancel()
	c.nc.Close()
	c.unpark()
}

// cancelStreams cancels the contexts of the open streams; it runs when
// the connection's context is cancelled. A stream opened after finds the
// connection's context cancelled (schedule).
func (c *conn) cancelStreams() {
	c.mu.Lock()
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.mu.Unlock()
	for _, st := range streams {
		st.ctx.Cancel()
	}
}

// writeErrLocked reports the connection's write error; wmu is held.
func (c *conn) writeErrLocked() error { return c.werr }

// resetStreamID resets stream id (open or not) with code. Its handler's
// body reads fail with body, or errStreamClosed when body is nil.
func (c *conn) resetStreamID(id uint32, code http2.ErrCode, body error) {
	c.mu.Lock()
	st := c.streams[id]
	if st != nil {
		c.removeLocked(st)
	}
	c.noteResetLocked(id)
	c.mu.Unlock()
	if st != nil {
		if body == nil {
			body = errStreamClosed
		}
		st.abortBody(errStreamClosed, body)
	}
	c.lockWrite()
	if c.werr == nil && c.bw != nil {
		c.wfr.WriteRSTStream(id, code)
	}
	c.unlockWrite(true)
}

// noteResetLocked remembers that the server reset stream id; mu is held.
func (c *conn) noteResetLocked(id uint32) {
	c.resets[c.nextReset%uint32(len(c.resets))] = id
	c.nextReset++
}

// resetRecently reports whether the server reset stream id among its
// last resets: frames the client sent on it before it saw the reset are
// ignored (RFC 9113 §5.1, "closed").
func (c *conn) resetRecently(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.resets {
		if r == id {
			return true
		}
	}
	return false
}

// removeLocked forgets a stream that is closed; mu is held. A connection
// left with no stream becomes idle, or closes after a graceful GOAWAY.
func (c *conn) removeLocked(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	st.state = stateClosed
	if len(c.streams) == 0 {
		now := time.Now().UnixNano()
		c.idleSince.Store(now)
		c.settleSoonLocked(now)
		if c.goingAway && !c.closed {
			c.closed = true
			go c.closeAfterGoAway()
		}
	}
}

// goAwayGraceful sends GOAWAY NO_ERROR naming the last stream served;
// the connection closes when its last stream ends.
func (c *conn) goAwayGraceful() {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	c.lastID = c.maxStreamID.Load()
	idle := len(c.streams) == 0
	if idle {
		c.closed = true
	}
	c.mu.Unlock()
	c.lockWrite()
	if c.werr == nil && c.bw != nil {
		c.wfr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
	}
	c.unlockWrite(true)
	if idle {
		go c.closeAfterGoAway()
	}
}

// closeAfterGoAway closes the connection once the client had a moment to
// read the GOAWAY: its write side at once (TLS close_notify), the rest
// when the client closes or after goAwayLinger.
func (c *conn) closeAfterGoAway() {
	c.closeWrite()
	// Under mu: a settle (endSettle) does not clear it.
	c.mu.Lock()
	c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
	c.mu.Unlock()
	c.unpark()
}

// closeWrite flushes what is buffered and ends the connection's write side
// (TLS close_notify): nothing is written after it.
func (c *conn) closeWrite() {
	c.lockWrite()
	if c.werr == nil && c.bw != nil && c.bw.Buffered() > 0 {
		c.werr = c.bw.Flush()
	}
	if c.werr == nil {
		if tc, ok := c.nc.(*tls.Conn); ok {
			tc.CloseWrite()
		}
		c.werr = errConnClosed
	}
	c.putWriter()
	c.wmu.Unlock()
}

// goAwayError sends GOAWAY code after a connection error and lingers
// reading (discarding) until the client closes or goAwayLinger passes.
// It runs on the reading goroutine, which then returns.
func (c *conn) goAwayError(code http2.ErrCode) {
	c.mu.Lock()
	c.goingAway = true
	c.closed = true
	c.lastID = c.maxStreamID.Load()
	c.mu.Unlock()
	c.lockWrite()
	if c.werr == nil && c.bw != nil {
		c.wfr.WriteGoAway(c.lastID, code, nil)
	}
	c.unlockWrite(true)
	c.closeWrite()
	c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
	io.Copy(io.Discard, c.br)
}

// Timeouts.

// nextTimeout is the time until the connection's next header or idle
// deadline, 0 when there is none.
func (c *conn) nextTimeout(now time.Time) (next time.Duration, due bool) {
	at := func(left time.Duration) {
		if !due || left < next {
			next, due = left, true
		}
	}
	if d := c.srv.ReadHeaderTimeout; d > 0 && !c.requested.Load() {
		at(c.start.Add(d).Sub(now))
	}
	if d := c.srv.IdleTimeout; d > 0 {
		left := d
		if since := c.idleSince.Load(); since != 0 {
			left = time.Duration(since + int64(d) - now.UnixNano())
		}
		at(left)
	}
	if settle := c.settleAt.Load(); settle != 0 && c.idleSince.Load() != 0 {
		at(time.Duration(settle - now.UnixNano()))
	}
	return next, due
}

// onTimer closes a connection whose first request is late (header) or
// that has had no open stream for IdleTimeout (idle, with GOAWAY), or
// re-arms the timer.
func (c *conn) onTimer() {
	c.srv.timerRuns.Add(1)
	now := time.Now()
	if d := c.srv.ReadHeaderTimeout; d > 0 && !c.requested.Load() && !now.Before(c.start.Add(d)) {
		c.srv.countTimeout("header")
		c.ctx.Cancel()
		c.nc.Close()
		c.unpark()
		return
	}
	if d := c.srv.IdleTimeout; d > 0 {
		if since := c.idleSince.Load(); since != 0 && now.UnixNano()-since >= int64(d) {
			c.mu.Lock()
			idle := len(c.streams) == 0 && !c.closed
			c.mu.Unlock()
			if idle {
				c.srv.countTimeout("idle")
				c.goAwayGraceful()
				return
			}
		}
	}
	if at := c.settleAt.Load(); at != 0 && now.UnixNano() >= at {
		c.mu.Lock()
		if c.settleAt.Load() == at && c.idleSince.Load() != 0 && !c.closed && !c.goingAway {
			// Interrupt the reading goroutine's read: see waitIdle.
			c.settleAt.Store(0)
			c.settle.Store(true)
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	if !c.closed {
		c.armLocked(now)
	}
	c.mu.Unlock()
}

// armLocked sets the timer for the connection's next timeout or settle,
// or stops it when none is due (a connection with no timeouts, busy:
// settleSoonLocked arms it when it goes idle); mu is held.
func (c *conn) armLocked(now time.Time) {
	d, due := c.nextTimeout(now)
	if !due {
		c.timer.Stop()
		c.timerAt = math.MaxInt64
		return
	}
	d = max(d, time.Millisecond)
	c.timer.Reset(d)
	c.timerAt = now.Add(d).UnixNano()
}
