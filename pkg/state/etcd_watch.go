package state

import (
	"context"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

var _ Watcher = (*EtcdStore)(nil)

// Backoff between attempts to reach etcd while it does not answer.
const (
	watchMinBackoff = 250 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
)

// Watch follows the state key. It reads the key, then watches it from the
// revision after that read; every ProbeInterval it checks that etcd still
// answers (a watch alone does not notice a stopped etcd). When etcd stops
// answering it sends a disconnected event, then tries again with backoff;
// when etcd answers again it re-reads the key and resumes watching, sending
// the snapshot if it changed meanwhile. A cancelled or compacted watch is
// handled the same way, by re-reading the key.
func (e *EtcdStore) Watch(ctx context.Context) <-chan WatchEvent {
	out := make(chan WatchEvent)
	go e.watch(ctx, out)
	return out
}

func (e *EtcdStore) watch(ctx context.Context, out chan<- WatchEvent) {
	defer close(out)
	w := &etcdWatch{e: e, ctx: ctx, out: out, lastRev: -1, cancel: func() {}}
	defer func() { w.cancel() }()
	probe := time.NewTicker(e.opts.ProbeInterval)
	defer probe.Stop()
	delay := watchMinBackoff
	for {
		if w.ch == nil {
			if w.resync() {
				delay = watchMinBackoff
				continue
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, watchMaxBackoff)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case wr, ok := <-w.ch:
			if !ok || wr.Canceled || wr.Err() != nil {
				w.stopWatch() // re-read the key and watch again
				continue
			}
			for _, ev := range wr.Events {
				w.event(ev)
			}
		case <-probe.C:
			w.probe()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// etcdWatch is the state of one Watch.
type etcdWatch struct {
	e   *EtcdStore
	ctx context.Context
	out chan<- WatchEvent

	reported  bool  // a connection state was sent
	connected bool  // the last connection state sent
	lastRev   int64 // revision of the last content sent; -1 before the first
	ch        <-chan clientv3.WatchResponse
	cancel    context.CancelFunc
	streams   int64 // watch streams started
}

func (w *etcdWatch) send(ev WatchEvent) {
	select {
	case w.out <- ev:
	case <-w.ctx.Done():
	}
}

func (w *etcdWatch) probeTimeout() time.Duration {
	return min(max(w.e.opts.ProbeInterval, time.Second), w.e.opts.Timeout)
}

func (w *etcdWatch) stopWatch() {
	w.cancel()
	w.cancel = func() {}
	w.ch = nil
}

// disconnected records that etcd did not answer, sending an event if that
// is news.
func (w *etcdWatch) disconnected(err error) {
	w.stopWatch()
	if w.ctx.Err() != nil {
		return
	}
	if w.connected || !w.reported {
		w.connected, w.reported = false, true
		w.send(WatchEvent{Connected: false, Err: err})
	}
}

// resync reads the key, sends it if it changed (or the connection state if
// that changed), and starts watching after the read's revision. It reports
// whether etcd answered.
func (w *etcdWatch) resync() bool {
	var resp *clientv3.GetResponse
	var client *clientv3.Client
	err := w.e.do(w.ctx, w.probeTimeout(), func(ctx context.Context, c *clientv3.Client) (err error) {
		client = c
		resp, err = c.Get(ctx, w.e.Key())
		return err
	})
	if err != nil {
		w.disconnected(err)
		return false
	}
	wasConnected := w.reported && w.connected
	w.connected, w.reported = true, true
	seen, derr := w.e.decodeGet(resp)
	switch {
	case derr != nil:
		rev := resp.Kvs[0].ModRevision
		if rev != w.lastRev || !wasConnected {
			w.lastRev = rev
			w.send(WatchEvent{Connected: true, Revision: rev, Err: derr})
		}
	case seen.rev != w.lastRev:
		w.lastRev = seen.rev
		w.send(WatchEvent{Connected: true, Changed: true, Snapshot: seen.snap, Revision: seen.rev})
	case !wasConnected:
		w.send(WatchEvent{Connected: true, Revision: seen.rev})
	}
	w.startWatch(client, resp.Header.Revision+1)
	return true
}

// startWatch watches the key from rev on a gRPC stream of its own (a
// stream left from before an outage may still be reconnecting). The
// client's Watch blocks until its stream takes the request, so it runs in a
// goroutine that forwards the responses: the loop goes on probing, and
// stopWatch ends both.
func (w *etcdWatch) startWatch(client *clientv3.Client, rev int64) {
	w.streams++
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(
		clientv3.WithRequireLeader(w.ctx), "edgectl-watch-stream", strconv.FormatInt(w.streams, 10)))
	ch := make(chan clientv3.WatchResponse)
	go func() {
		defer close(ch)
		for wr := range client.Watch(wctx, w.e.Key(), clientv3.WithRev(rev)) {
			select {
			case ch <- wr:
			case <-wctx.Done():
				return
			}
		}
	}()
	w.cancel, w.ch = cancel, ch
}

// event sends one change of the key.
func (w *etcdWatch) event(ev *clientv3.Event) {
	switch ev.Type {
	case clientv3.EventTypeDelete:
		w.lastRev = 0
		w.send(WatchEvent{Connected: true, Changed: true})
	case clientv3.EventTypePut:
		w.lastRev = ev.Kv.ModRevision
		s, err := w.e.decodeValue(ev.Kv.Value)
		if err != nil {
			w.send(WatchEvent{Connected: true, Revision: ev.Kv.ModRevision, Err: err})
			return
		}
		w.send(WatchEvent{Connected: true, Changed: true, Snapshot: s, Revision: ev.Kv.ModRevision})
	}
}

// probe checks that etcd answers and that the watch has not missed a
// revision; if either fails, the key is read again.
func (w *etcdWatch) probe() {
	var resp *clientv3.GetResponse
	err := w.e.do(w.ctx, w.probeTimeout(), func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Get(ctx, w.e.Key(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		w.disconnected(err)
		return
	}
	var rev int64
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
	}
	if rev != w.lastRev {
		w.stopWatch()
	}
}
