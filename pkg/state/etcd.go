package state

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

var (
	_ Store     = (*EtcdStore)(nil)
	_ io.Closer = (*EtcdStore)(nil)
)

// EtcdScheme is the URL scheme of an etcd state store location.
const EtcdScheme = "etcd"

// Defaults of the etcd store.
const (
	// DefaultEtcdTimeout bounds each request to etcd, connecting included.
	DefaultEtcdTimeout = 5 * time.Second
	// DefaultEtcdLockTTL is the lease of the lock key: a crashed applier's
	// lock expires at most this long after its last keep-alive.
	DefaultEtcdLockTTL = 15 * time.Second
	// DefaultEtcdProbeInterval is how often a watch checks that etcd still
	// answers.
	DefaultEtcdProbeInterval = 2 * time.Second
	// EtcdCompressThreshold is the encoded size above which the snapshot is
	// stored gzip-compressed.
	EtcdCompressThreshold = 64 << 10
	// maxSnapshotSize bounds a decompressed snapshot.
	maxSnapshotSize = 256 << 20
)

// EtcdOptions tune an etcd store. The zero value is the defaults.
type EtcdOptions struct {
	// CACert is a PEM file of the CAs that verify etcd's certificate. It
	// overrides the location's cacert query parameter.
	CACert string
	// Cert and Key are the PEM files of the client certificate presented to
	// etcd. They override the location's cert and key query parameters.
	Cert, Key string
	// Timeout bounds each request to etcd (DefaultEtcdTimeout when zero).
	Timeout time.Duration
	// LockTTL is the lease of the lock key (DefaultEtcdLockTTL when zero;
	// etcd rounds it up to whole seconds and to its minimum lease).
	LockTTL time.Duration
	// ProbeInterval is how often Watch checks that etcd answers
	// (DefaultEtcdProbeInterval when zero).
	ProbeInterval time.Duration
	// HistoryLimit is how many snapshots the history keeps, the current one
	// included (DefaultHistoryLimit when zero).
	HistoryLimit int
}

func (o EtcdOptions) tlsSet() bool { return o.CACert != "" || o.Cert != "" || o.Key != "" }

// EtcdLocation is a parsed etcd:// state store location:
// etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?cacert=FILE&cert=FILE&key=FILE].
type EtcdLocation struct {
	// Endpoints are the HOST:PORT of the etcd members.
	Endpoints []string
	// Prefix is the key prefix, starting with "/" and without a trailing
	// one; the snapshot is PREFIX/state.
	Prefix string
	// CACert, Cert and Key are the query parameters of the same names.
	CACert, Cert, Key string
}

// IsEtcdLocation reports whether location names an etcd store.
func IsEtcdLocation(location string) bool {
	return strings.HasPrefix(location, EtcdScheme+"://")
}

// ParseEtcdLocation parses an etcd:// location.
func ParseEtcdLocation(location string) (EtcdLocation, error) {
	var loc EtcdLocation
	bad := func(format string, args ...any) (EtcdLocation, error) {
		return loc, fmt.Errorf("state store %q: %s; the form is etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?cacert=FILE&cert=FILE&key=FILE]",
			location, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(location, EtcdScheme+"://")
	if !ok {
		return bad("not an etcd:// location")
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, prefix, _ := strings.Cut(rest, "/")
	if hosts == "" {
		return bad("no etcd endpoint")
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return bad("endpoint %q is not HOST:PORT", h)
		}
		loc.Endpoints = append(loc.Endpoints, h)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return bad("no key prefix")
	}
	loc.Prefix = "/" + prefix
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad("bad query: %v", err)
	}
	for k, v := range q {
		switch k {
		case "cacert":
			loc.CACert = v[len(v)-1]
		case "cert":
			loc.Cert = v[len(v)-1]
		case "key":
			loc.Key = v[len(v)-1]
		default:
			return bad("unknown query parameter %q (known: cacert, cert, key)", k)
		}
	}
	return loc, nil
}

// String is the location without its query.
func (l EtcdLocation) String() string {
	return EtcdScheme + "://" + strings.Join(l.Endpoints, ",") + l.Prefix
}

// EtcdStore keeps the state in etcd: the snapshot is the one key
// PREFIX/state (gzip-compressed above EtcdCompressThreshold), the previous
// snapshot is PREFIX/state.backup, the last snapshots are the keys
// PREFIX/history/SERIAL (SERIAL zero-padded to 20 digits, so that keys sort
// by serial), and the writer lock is PREFIX/lock, a key bound to a lease
// that its holder keeps alive. A write is a transaction that succeeds only
// if the state key still has the revision this store last read, so
// concurrent or stale writers never overwrite each other; the same
// transaction puts the history key and deletes those that fall out of the
// history.
type EtcdStore struct {
	loc  EtcdLocation
	opts EtcdOptions
	// Logf receives notes for a person, such as a lost lock; nil drops them.
	Logf func(format string, args ...any)

	clientOnce sync.Once
	client     *clientv3.Client
	clientErr  error
	reached    atomic.Bool // etcd answered a request

	// decoder keeps what the last read decoded: the next read reuses its
	// resources whose bytes did not change (see decode.go).
	decoder reuseDecoder

	mu   sync.Mutex
	seen *seenState // what the last Read or Write saw
	lock *heldLock  // the lock this store holds, nil when not held
}

// seenState is the state key as this store last saw it.
type seenState struct {
	rev   int64 // ModRevision of the state key; 0 when absent
	snap  *Snapshot
	value []byte // raw value, kept as the backup by the next write
}

type heldLock struct {
	lease     clientv3.LeaseID
	createRev int64
	stop      context.CancelFunc
	done      chan struct{}
}

// NewEtcdStore returns the store at an etcd:// location. TLS files in opts
// win over the location's query parameters. No connection is made until a
// method is called.
func NewEtcdStore(location string, opts EtcdOptions) (*EtcdStore, error) {
	loc, err := ParseEtcdLocation(location)
	if err != nil {
		return nil, err
	}
	if opts.CACert == "" {
		opts.CACert = loc.CACert
	}
	if opts.Cert == "" {
		opts.Cert = loc.Cert
	}
	if opts.Key == "" {
		opts.Key = loc.Key
	}
	if (opts.Cert == "") != (opts.Key == "") {
		return nil, fmt.Errorf("state store %s: a client certificate needs both a certificate and a key (--etcd-cert and --etcd-key, or cert= and key=)", loc)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultEtcdTimeout
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = DefaultEtcdLockTTL
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultEtcdProbeInterval
	}
	return &EtcdStore{loc: loc, opts: opts}, nil
}

// String returns the location without its query, such as etcd://127.0.0.1:2379/edgectl.
func (e *EtcdStore) String() string { return e.loc.String() }

// Key returns the key that holds the snapshot.
func (e *EtcdStore) Key() string { return e.loc.Prefix + "/state" }

// BackupKey returns the key that holds the previous snapshot.
func (e *EtcdStore) BackupKey() string { return e.loc.Prefix + "/state.backup" }

// HistoryPrefix returns the prefix of the history keys.
func (e *EtcdStore) HistoryPrefix() string { return e.loc.Prefix + "/history/" }

// historyKey is the history key of serial.
func (e *EtcdStore) historyKey(serial int64) string {
	return fmt.Sprintf("%s%020d", e.HistoryPrefix(), serial)
}

// LockKey returns the lock key.
func (e *EtcdStore) LockKey() string { return e.loc.Prefix + "/lock" }

func (e *EtcdStore) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// Close releases the connection to etcd. A lock still held is released.
func (e *EtcdStore) Close() error {
	e.mu.Lock()
	held := e.lock
	e.mu.Unlock()
	if held != nil {
		_ = e.releaseLock(held)
	}
	if e.client != nil {
		return e.client.Close()
	}
	return nil
}

// conn returns the client, made on first use. Making it does not wait for
// etcd: requests do, each for at most the store's timeout.
func (e *EtcdStore) conn() (*clientv3.Client, error) {
	e.clientOnce.Do(func() {
		cfg := clientv3.Config{
			Endpoints:            e.loc.Endpoints,
			DialTimeout:          e.opts.Timeout,
			DialKeepAliveTime:    10 * time.Second,
			DialKeepAliveTimeout: 3 * time.Second,
			Logger:               zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
				// Reconnect within seconds after an etcd restart (gRPC's
				// default backoff grows to two minutes).
				Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
				MinConnectTimeout: 2 * time.Second,
			})},
		}
		if e.opts.tlsSet() {
			tc, err := e.tlsConfig()
			if err != nil {
				e.clientErr = fmt.Errorf("state store %s: %w", e.loc, err)
				return
			}
			cfg.TLS = tc
		}
		e.client, e.clientErr = clientv3.New(cfg)
		if e.clientErr != nil {
			e.clientErr = e.unreachable(e.clientErr)
		}
	})
	return e.client, e.clientErr
}

// tlsConfig loads the TLS files. Without a CA file, etcd's certificate is
// verified against the system roots.
func (e *EtcdStore) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.opts.CACert != "" {
		pem, err := os.ReadFile(e.opts.CACert)
		if err != nil {
			return nil, fmt.Errorf("reading the etcd CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA file %s holds no PEM certificate", e.opts.CACert)
		}
		tc.RootCAs = pool
	}
	if e.opts.Cert != "" {
		cert, err := tls.LoadX509KeyPair(e.opts.Cert, e.opts.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// unreachable wraps err, an error of a request to etcd, so that it names
// the endpoints. When the request ran out of time it says why etcd did not
// answer when it can tell (such as a refused TCP connection).
func (e *EtcdStore) unreachable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	endpoints := strings.Join(e.loc.Endpoints, ",")
	if msg := err.Error(); errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "DeadlineExceeded") || strings.Contains(msg, "Unavailable") {
		for _, ep := range e.loc.Endpoints {
			if derr := e.diagnose(ep); derr != nil {
				return fmt.Errorf("cannot reach etcd at %s: %v", endpoints, derr)
			}
		}
		return fmt.Errorf("cannot reach etcd at %s: no answer within %s (%v); check that it is an etcd client URL and the TLS options (--etcd-cacert, --etcd-cert, --etcd-key)", endpoints, e.opts.Timeout, err)
	}
	return fmt.Errorf("etcd at %s: %w", endpoints, err)
}

// diagnose connects to endpoint as the client would, to tell why etcd did
// not answer: a refused connection, a TLS server reached without TLS, or a
// failed TLS handshake. It returns nil when it finds nothing wrong.
func (e *EtcdStore) diagnose(endpoint string) error {
	c, err := net.DialTimeout("tcp", endpoint, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	host, _, _ := net.SplitHostPort(endpoint)
	if !e.opts.tlsSet() {
		// Only a TLS server completes a handshake or sends a certificate
		// to verify; nothing is sent over the connection.
		err := tls.Client(c, &tls.Config{ServerName: host}).Handshake()
		var verr *tls.CertificateVerificationError
		if err == nil || errors.As(err, &verr) {
			return errors.New("it serves TLS: give its CA with --etcd-cacert (and --etcd-cert and --etcd-key if it requires client certificates)")
		}
		return nil
	}
	cfg, err := e.tlsConfig()
	if err != nil {
		return err
	}
	cfg.ServerName = host
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %v (check --etcd-cacert, --etcd-cert, --etcd-key)", err)
	}
	// With TLS 1.3 a refused client certificate shows on the first read.
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if _, err := tc.Read(make([]byte, 1)); err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("TLS: %v (check --etcd-cert and --etcd-key)", err)
	}
	return nil
}

// do runs one request to etcd within the store's timeout.
func (e *EtcdStore) do(ctx context.Context, timeout time.Duration, f func(ctx context.Context, c *clientv3.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := e.conn()
	if err != nil {
		return err
	}
	if !e.reached.Load() {
		// Until etcd has answered once, fail at once when no endpoint
		// accepts a connection, rather than after the timeout.
		if err := e.anyAccepts(); err != nil {
			return fmt.Errorf("cannot reach etcd at %s: %v", strings.Join(e.loc.Endpoints, ","), err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := f(rctx, c); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.unreachable(err)
	}
	e.reached.Store(true)
	return nil
}

// anyAccepts returns nil when an endpoint accepts a TCP connection, else
// the error of the first one.
func (e *EtcdStore) anyAccepts() error {
	var first error
	for _, ep := range e.loc.Endpoints {
		c, err := net.DialTimeout("tcp", ep, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Read returns the stored snapshot, or nil when the key does not exist. It
// remembers the key's revision: the next Write succeeds only if the key
// still has it. The snapshots one store reads (and watches) share the
// decoded specs and labels of the resources that did not change between
// reads: treat a read snapshot's specs as read-only.
func (e *EtcdStore) Read(ctx context.Context) (*Snapshot, error) {
	var resp *clientv3.GetResponse
	err := e.do(ctx, e.opts.Timeout, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Get(ctx, e.Key())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	seen, err := e.decodeGet(resp)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.seen = seen
	e.mu.Unlock()
	return seen.snap, nil
}

func (e *EtcdStore) decodeGet(resp *clientv3.GetResponse) (*seenState, error) {
	if len(resp.Kvs) == 0 {
		return &seenState{}, nil
	}
	kv := resp.Kvs[0]
	s, err := e.decodeValue(kv.Value)
	if err != nil {
		return nil, err
	}
	return &seenState{rev: kv.ModRevision, snap: s, value: kv.Value}, nil
}

func (e *EtcdStore) decodeValue(value []byte) (*Snapshot, error) {
	data, err := decodeEtcdValue(value)
	if err == nil {
		var s *Snapshot
		if s, err = e.decoder.decode(data); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: etcd key %s at %s: %v; edgectl leaves it unchanged: fix it, or restore the previous snapshot from the key %s",
		ErrCorrupt, e.Key(), e.loc, err, e.BackupKey())
}

// gzipMagic starts a gzip stream; a JSON document never starts with it.
var gzipMagic = []byte{0x1f, 0x8b}

// encodeEtcdValue returns the stored form of a state file's content: data
// itself, or its gzip compression when it is larger than
// EtcdCompressThreshold. Readers tell them apart by gzip's magic bytes.
func encodeEtcdValue(data []byte) ([]byte, error) {
	if len(data) <= EtcdCompressThreshold {
		return data, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeEtcdValue reverses encodeEtcdValue.
func decodeEtcdValue(value []byte) ([]byte, error) {
	if !bytes.HasPrefix(value, gzipMagic) {
		return value, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(value))
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	zr.Multistream(false) // ignore what follows, such as a newline added by a shell pipe
	data, err := io.ReadAll(io.LimitReader(zr, maxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	if len(data) > maxSnapshotSize {
		return nil, fmt.Errorf("decompresses to more than %d MiB", maxSnapshotSize>>20)
	}
	return data, nil
}

// Write stores next in one transaction that succeeds only if the state key
// still has the revision this store last read (a store that has not read
// reads first) and, while this store holds the lock, the lock is still its
// own; without the lock, only if no one else holds it. The previous value
// is kept as the backup key in the same transaction.
func (e *EtcdStore) Write(ctx context.Context, next *Snapshot, expectLineage string, expectSerial int64) error {
	if err := checkNext(next, expectLineage, expectSerial); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	data, err := EncodeSnapshot(next)
	if err != nil {
		return err
	}
	value, err := encodeEtcdValue(data)
	if err != nil {
		return fmt.Errorf("compressing state: %w", err)
	}
	e.mu.Lock()
	seen, held := e.seen, e.lock
	e.mu.Unlock()
	if seen == nil {
		if _, err := e.Read(ctx); err != nil {
			return err
		}
		e.mu.Lock()
		seen = e.seen
		e.mu.Unlock()
	}
	if err := CheckVersion(seen.snap, expectLineage, expectSerial); err != nil {
		return err
	}
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(e.Key()), "=", seen.rev)}
	if held != nil {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(e.LockKey()), "=", held.createRev))
	} else {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(e.LockKey()), "=", 0))
	}
	ops := []clientv3.Op{clientv3.OpPut(e.Key(), string(value)), clientv3.OpPut(e.historyKey(next.Serial), string(value))}
	if seen.value != nil {
		ops = append(ops, clientv3.OpPut(e.BackupKey(), string(seen.value)))
	}
	// Drop what falls out of the history, and anything above the new serial
	// (left by an older lineage); the new key lies between the two ranges.
	if keepFrom := next.Serial - int64(historyLimit(e.opts.HistoryLimit)) + 1; keepFrom > 1 {
		ops = append(ops, clientv3.OpDelete(e.HistoryPrefix(), clientv3.WithRange(e.historyKey(keepFrom))))
	}
	ops = append(ops, clientv3.OpDelete(e.historyKey(next.Serial+1), clientv3.WithRange(clientv3.GetPrefixRangeEnd(e.HistoryPrefix()))))
	var resp *clientv3.TxnResponse
	err = e.do(ctx, e.opts.Timeout, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Txn(ctx).If(conds...).Then(ops...).
			Else(clientv3.OpGet(e.Key()), clientv3.OpGet(e.LockKey())).Commit()
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "request is too large") {
			return fmt.Errorf("writing state %s: the snapshot is %d bytes stored (%d before compression), more than etcd accepts; raise etcd's --max-request-bytes: %w",
				e.loc, len(value), len(data), err)
		}
		return fmt.Errorf("writing state: %w", err)
	}
	if !resp.Succeeded {
		return e.writeRefused(resp, seen, held, expectLineage, expectSerial)
	}
	e.mu.Lock()
	e.seen = &seenState{rev: resp.Header.Revision, snap: next, value: value}
	e.mu.Unlock()
	return nil
}

// writeRefused explains a failed write transaction from its Else results:
// the current state key and lock key.
func (e *EtcdStore) writeRefused(resp *clientv3.TxnResponse, seen *seenState, held *heldLock, expectLineage string, expectSerial int64) error {
	stateResp := (*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())
	lockResp := (*clientv3.GetResponse)(resp.Responses[1].GetResponseRange())
	var lockCreate int64
	if len(lockResp.Kvs) > 0 {
		lockCreate = lockResp.Kvs[0].CreateRevision
	}
	if held != nil && lockCreate != held.createRev {
		return fmt.Errorf("%w: this store's lock %s expired while held (was edgectl paused for longer than its lease of %s?); nothing was written, run it again",
			ErrLocked, e.LockKey(), e.opts.LockTTL)
	}
	if held == nil && lockCreate != 0 {
		return e.lockedError(lockResp.Kvs[0].Value, lockResp.Kvs[0].Lease)
	}
	cur, err := e.decodeGet(stateResp)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.seen = cur
	e.mu.Unlock()
	if err := CheckVersion(cur.snap, expectLineage, expectSerial); err != nil {
		return err
	}
	return fmt.Errorf("%w: the etcd key %s was rewritten since it was read (revision %d, now %d); make a new plan",
		ErrStale, e.Key(), seen.rev, cur.rev)
}

// Lock puts the lock key if it is absent, bound to a new lease of the
// store's lock TTL that is kept alive until unlock is called. If edgectl
// stops without unlocking, the lease (and the lock) expires by itself.
func (e *EtcdStore) Lock(ctx context.Context, command string) (func() error, error) {
	e.mu.Lock()
	if e.lock != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("state lock %s is already held by this store", e.LockKey())
	}
	e.mu.Unlock()
	host, _ := os.Hostname()
	me := LockInfo{Host: host, PID: os.Getpid(), Time: time.Now().UTC().Truncate(time.Second), Command: command}
	info, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	ttl := int64((e.opts.LockTTL + time.Second - 1) / time.Second)
	var lease *clientv3.LeaseGrantResponse
	var resp *clientv3.TxnResponse
	err = e.do(ctx, e.opts.Timeout, func(ctx context.Context, c *clientv3.Client) (err error) {
		if lease, err = c.Grant(ctx, ttl); err != nil {
			return err
		}
		resp, err = c.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(e.LockKey()), "=", 0)).
			Then(clientv3.OpPut(e.LockKey(), string(info), clientv3.WithLease(lease.ID))).
			Else(clientv3.OpGet(e.LockKey())).Commit()
		return err
	})
	if err != nil {
		if lease != nil {
			e.revoke(lease.ID)
		}
		return nil, fmt.Errorf("taking the state lock: %w", err)
	}
	if !resp.Succeeded {
		e.revoke(lease.ID)
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, fmt.Errorf("%w: the lock %s was held a moment ago; try again", ErrLocked, e.LockKey())
		}
		return nil, e.lockedError(kvs[0].Value, kvs[0].Lease)
	}
	kctx, stop := context.WithCancel(context.Background())
	held := &heldLock{lease: lease.ID, createRev: resp.Header.Revision, stop: stop, done: make(chan struct{})}
	alive, err := e.client.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		e.revoke(lease.ID)
		return nil, fmt.Errorf("taking the state lock: keeping its lease alive: %w", err)
	}
	go func() {
		defer close(held.done)
		for range alive {
		}
		if kctx.Err() == nil {
			e.logf("edgectl: lost the keep-alive of the state lock %s; a write will be refused if the lock expired", e.LockKey())
		}
	}()
	e.mu.Lock()
	e.lock = held
	e.mu.Unlock()
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() { uerr = e.releaseLock(held) })
		return uerr
	}, nil
}

// lockedError describes a lock held by someone else from the lock key's
// value and lease.
func (e *EtcdStore) lockedError(value []byte, lease int64) error {
	var holder LockInfo
	if err := json.Unmarshal(value, &holder); err != nil || holder.PID == 0 {
		return fmt.Errorf("%w: the lock key %s names no holder; if no edgectl is writing this state, delete it (etcdctl del %s)", ErrLocked, e.LockKey(), e.LockKey())
	}
	expiry := "its lock expires by itself when its lease runs out"
	if lease != 0 && e.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
		defer cancel()
		if ttl, err := e.client.TimeToLive(ctx, clientv3.LeaseID(lease)); err == nil && ttl.GrantedTTL > 0 {
			expiry = fmt.Sprintf("its lock expires by itself at most %ds after it stopped", ttl.GrantedTTL)
		}
	}
	return fmt.Errorf("%w by %s; if that process is gone, %s (etcd key %s)", ErrLocked, holder, expiry, e.LockKey())
}

// releaseLock stops the keep-alive and revokes the lease, which deletes the
// lock key.
func (e *EtcdStore) releaseLock(held *heldLock) error {
	e.mu.Lock()
	if e.lock == held {
		e.lock = nil
	}
	e.mu.Unlock()
	held.stop()
	<-held.done
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	_, err := e.client.Revoke(ctx, held.lease)
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "requested lease not found"):
		return fmt.Errorf("state lock %s expired while held", e.LockKey())
	}
	return fmt.Errorf("releasing the state lock %s: %w", e.LockKey(), e.unreachable(err))
}

func (e *EtcdStore) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	_, _ = e.client.Revoke(ctx, id)
}

// History returns the kept snapshots of the current lineage, newest first,
// read with the state key in one transaction.
func (e *EtcdStore) History(ctx context.Context) ([]*Snapshot, error) {
	var resp *clientv3.TxnResponse
	err := e.do(ctx, e.opts.Timeout, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Txn(ctx).Then(clientv3.OpGet(e.Key()), clientv3.OpGet(e.HistoryPrefix(), clientv3.WithPrefix())).Commit()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the state history: %w", err)
	}
	cur, err := e.decodeGet((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange()))
	if err != nil || cur.snap == nil {
		return nil, err
	}
	var kept []*Snapshot
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		data, err := decodeEtcdValue(kv.Value)
		var s *Snapshot
		if err == nil {
			s, err = DecodeSnapshot(data)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: etcd history key %s at %s: %v", ErrCorrupt, kv.Key, e.loc, err)
		}
		kept = append(kept, s)
	}
	return historyOf(cur.snap, kept), nil
}
