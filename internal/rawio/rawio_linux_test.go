//go:build linux

package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/nettest"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c1.(*net.TCPConn), c2.(*net.TCPConn)
}

// TestConn runs x/net's conformance suite for net.Conn on wrapped TCP and
// Unix stream connections: basic I/O, racing reads and writes, the
// three kinds of deadline, Close unblocking both directions, concurrent
// methods.
func TestConn(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			c1, c2 := tcpPair(t)
			w1, w2 := Wrap(c1), Wrap(c2)
			return w1, w2, func() { w1.Close(); w2.Close() }, nil
		})
	})
	t.Run("unix", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			path := filepath.Join(t.TempDir(), "s")
			ln, err := net.Listen("unix", path)
			if err != nil {
				return nil, nil, nil, err
			}
			defer ln.Close()
			c1, err := net.Dial("unix", path)
			if err != nil {
				return nil, nil, nil, err
			}
			c2, err := ln.Accept()
			if err != nil {
				return nil, nil, nil, err
			}
			w1, w2 := Wrap(c1), Wrap(c2)
			return w1, w2, func() { w1.Close(); w2.Close() }, nil
		})
	})
}

func TestWrapOnlyStreams(t *testing.T) {
	c1, c2 := tcpPair(t)
	defer c1.Close()
	defer c2.Close()
	if _, ok := Wrap(c1).(*Conn); !ok {
		t.Error("a TCP connection is not wrapped")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if Wrap(p1) != p1 {
		t.Error("net.Pipe is wrapped")
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if Wrap(u) != net.Conn(u) {
		t.Error("a UDP socket is wrapped")
	}
	path := filepath.Join(t.TempDir(), "g")
	g, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if Wrap(g) != net.Conn(g) {
		t.Error("a unixgram socket is wrapped")
	}
}

// TestLargeWrite writes more than the socket buffers hold to a reader
// that starts late: the write waits for room (EAGAIN, then the poller)
// and every byte arrives in order.
func TestLargeWrite(t *testing.T) {
	c1, c2 := tcpPair(t)
	w := Wrap(c1)
	defer w.Close()
	defer c2.Close()
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(1)).Read(data)
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(data)
		if err == nil && n != len(data) {
			err = fmt.Errorf("wrote %d of %d", n, len(data))
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the write fill the buffers
	got, err := io.ReadAll(io.LimitReader(c2, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes read differ from the bytes written")
	}
}

func TestPeek1(t *testing.T) {
	c1, c2 := tcpPair(t)
	defer c1.Close()
	rc, _ := c2.SyscallConn()
	peek := func() (n int, errno syscall.Errno) {
		rc.Control(func(fd uintptr) {
			var b [1]byte
			n, errno = Peek1(fd, &b)
		})
		return
	}
	if n, e := peek(); e != syscall.EAGAIN {
		t.Errorf("nothing sent: peek = %d, %v; want EAGAIN", n, e)
	}
	c1.Write([]byte("x"))
	time.Sleep(10 * time.Millisecond)
	if n, e := peek(); n != 1 || e != 0 {
		t.Errorf("a byte sent: peek = %d, %v", n, e)
	}
	if n, e := peek(); n != 1 || e != 0 {
		t.Errorf("a peek consumed the byte: peek = %d, %v", n, e)
	}
	c1.Close()
	b := make([]byte, 1)
	c2.Read(b)
	time.Sleep(10 * time.Millisecond)
	if n, e := peek(); n != 0 || e != 0 {
		t.Errorf("peer closed: peek = %d, %v; want 0, no error", n, e)
	}
	c2.Close()
}

// The differential: the same operations on a wrapped connection and on
// net's own, against a plain peer; every outcome (bytes, the error's
// layers, its cause) must be the same.

type outcome struct {
	Op    string
	N     int
	Data  bool // the bytes read are the bytes sent
	Error string
}

// describe renders err as its chain of types and, at the bottom, its
// cause: what a caller can observe with errors.Is, errors.As and ==.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var s string
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *net.OpError:
			s += fmt.Sprintf("OpError(%s %s)/", v.Op, v.Net)
		case *os.SyscallError:
			s += "SyscallError(" + v.Syscall + ")/"
		default:
			s += fmt.Sprintf("%T(%v)", e, e)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s += " timeout"
	}
	return s
}

// run applies the operations ops encodes to conn (wrapped by wrap) and
// its peer, and returns what each did.
func run(t *testing.T, ops []byte, wrap func(net.Conn) net.Conn) []outcome {
	c1, peer := tcpPair(t)
	c := wrap(c1)
	defer c.Close()
	defer peer.Close()
	var out []outcome
	arg := func(i int) int {
		if i+1 < len(ops) {
			return int(ops[i+1])
		}
		return 0
	}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		return b
	}
	for i := 0; i < len(ops) && i < 24; i += 2 {
		a := arg(i)
		switch ops[i] % 11 {
		case 0: // the peer sends n bytes, read in chunks of k
			n, k := 1+a*263, 1+a%5*977
			data := payload(n)
			go peer.Write(data)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, 0, n)
			buf := make([]byte, k)
			var err error
			for len(got) < n && err == nil {
				var m int
				m, err = c.Read(buf[:min(k, n-len(got))])
				got = append(got, buf[:m]...)
			}
			c.SetReadDeadline(time.Time{})
			out = append(out, outcome{"peer-write-read", len(got), bytes.Equal(got, data), describe(err)})
		case 1: // a write of n bytes, read by the peer as it goes
			n := 1 + a*a*61
			data := payload(n)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, n)
				peer.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, _ := io.ReadFull(peer, b)
				peer.SetReadDeadline(time.Time{})
				got <- b[:m]
			}()
			m, err := c.Write(data)
			var ok bool
			if err == nil {
				ok = bytes.Equal(<-got, data)
			}
			out = append(out, outcome{"write", m, ok, describe(err)})
		case 2:
			m, err := c.Read(nil)
			out = append(out, outcome{"read-empty", m, false, describe(err)})
		case 3:
			m, err := c.Write(nil)
			out = append(out, outcome{"write-empty", m, false, describe(err)})
		case 4: // a read past its deadline
			c.SetReadDeadline(time.Now().Add(-time.Second))
			m, err := c.Read(make([]byte, 8))
			c.SetReadDeadline(time.Time{})
			out = append(out, outcome{"read-past-deadline", m, false, describe(err)})
		case 5:
			c.SetWriteDeadline(time.Now().Add(-time.Second))
			m, err := c.Write([]byte("x"))
			c.SetWriteDeadline(time.Time{})
			out = append(out, outcome{"write-past-deadline", m, false, describe(err)})
		case 6: // nothing to read: the deadline expires while waiting
			c.SetReadDeadline(time.Now().Add(time.Duration(1+a%20) * time.Millisecond))
			m, err := c.Read(make([]byte, 8))
			c.SetReadDeadline(time.Time{})
			out = append(out, outcome{"read-wait-deadline", m, false, describe(err)})
		case 7: // the peer ends its side: end of stream
			peer.CloseWrite()
			m, err := c.Read(make([]byte, 1+a))
			out = append(out, outcome{"peer-closewrite-read", m, false, describe(err)})
		case 8: // the peer resets the connection
			peer.SetLinger(0)
			peer.Close()
			time.Sleep(5 * time.Millisecond)
			m, err := c.Read(make([]byte, 8))
			out = append(out, outcome{"peer-reset-read", m, false, describe(err)})
			m, err = c.Write([]byte("after reset"))
			out = append(out, outcome{"peer-reset-write", m, false, describe(err)})
		case 9:
			c.Close()
			m, err := c.Read(make([]byte, 8))
			out = append(out, outcome{"closed-read", m, false, describe(err)})
			m, err = c.Write([]byte("x"))
			out = append(out, outcome{"closed-write", m, false, describe(err)})
		case 10: // a read waiting when Close comes
			res := make(chan outcome, 1)
			go func() {
				m, err := c.Read(make([]byte, 8))
				res <- outcome{"read-then-close", m, false, describe(err)}
			}()
			time.Sleep(time.Duration(1+a%10) * time.Millisecond)
			c.Close()
			out = append(out, <-res)
		}
	}
	return out
}

func FuzzDifferential(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 3, 1, 200, 0, 255},
		{2, 0, 3, 0, 4, 0, 5, 0},
		{6, 5, 0, 1, 7, 9, 7, 0, 2, 0},
		{1, 40, 8, 0},
		{0, 10, 9, 0},
		{10, 3},
		{1, 255, 1, 128, 0, 200},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		want := run(t, ops, func(c net.Conn) net.Conn { return c })
		got := run(t, ops, Wrap)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ops %v: net's connection (-) and the wrapped one (+) differ:\n%s", ops, d)
		}
	})
}

// BenchmarkPingPong exchanges 1 KB messages over loopback TCP, wrapped
// and with net's own connections.
func BenchmarkPingPong(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{{"rawio", Wrap}, {"net", func(c net.Conn) net.Conn { return c }}} {
		b.Run(bc.name, func(b *testing.B) {
			c1, c2 := tcpPair(b)
			a, z := bc.wrap(c1), bc.wrap(c2)
			defer a.Close()
			defer z.Close()
			go func() {
				buf := make([]byte, 1024)
				for {
					if _, err := io.ReadFull(z, buf); err != nil {
						return
					}
					if _, err := z.Write(buf); err != nil {
						return
					}
				}
			}()
			msg := make([]byte, 1024)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				a.Write(msg)
				io.ReadFull(a, msg)
			}
		})
	}
}
