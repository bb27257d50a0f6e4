package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultPath is the file store used when neither --state nor EDGECTL_STATE is set.
const DefaultPath = ".edgectl/state.json"

// EnvVar names the environment variable that selects the state store.
const EnvVar = "EDGECTL_STATE"

// Errors that callers tell apart with errors.Is. The errors returned by a
// Store wrap them with the details a person needs.
var (
	// ErrStale means the store's lineage or serial moved since the caller read
	// it (or made a plan from it).
	ErrStale = errors.New("plan is stale")
	// ErrLocked means another writer holds the store's lock.
	ErrLocked = errors.New("state is locked")
	// ErrCorrupt means the stored state cannot be read as an edgectl state of
	// a format this build understands. A store never overwrites it.
	ErrCorrupt = errors.New("state is unreadable")
)

// Store holds one snapshot and the history of its serials. Implementations
// (FileStore and EtcdStore) keep these promises:
//   - Read never sees a partly written snapshot;
//   - Write replaces the snapshot only when the stored lineage and serial are
//     still the expected ones (compare-and-swap), and leaves the store
//     unchanged on any failure;
//   - Lock excludes other writers until unlock is called, and fails fast,
//     naming the holder, when another writer holds it.
type Store interface {
	// Read returns the current snapshot, or nil and no error for an empty
	// store. An unreadable state gives an error wrapping ErrCorrupt.
	Read(ctx context.Context) (*Snapshot, error)
	// Write stores next if the store still holds the snapshot of lineage
	// expectLineage and serial expectSerial ("" and 0 for an empty store),
	// else it fails with an error wrapping ErrStale. next must continue that
	// history: the same lineage (any new one for an empty store) and the
	// serial plus one.
	Write(ctx context.Context, next *Snapshot, expectLineage string, expectSerial int64) error
	// Lock takes the store's exclusive writer lock for command (such as
	// "edgectl apply"), recorded so that others can name the holder. It
	// fails with an error wrapping ErrLocked while another writer holds it.
	Lock(ctx context.Context, command string) (unlock func() error, err error)
	// String describes the store for messages, such as its file path.
	String() string
}

// Open returns the store at location: a file path, or an etcd:// URL
// (etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?cacert=FILE&cert=FILE&key=FILE]).
// A store that holds a connection, such as the etcd store, implements
// io.Closer.
func Open(location string) (Store, error) {
	return OpenWith(location, OpenOptions{})
}

// OpenOptions are the options of OpenWith.
type OpenOptions struct {
	// Etcd tunes an etcd:// store; its TLS files win over the location's
	// query parameters. Setting TLS files for a file store is an error.
	Etcd EtcdOptions
	// HistoryLimit is how many snapshots the store's history keeps
	// (DefaultHistoryLimit when zero); it wins over Etcd.HistoryLimit.
	HistoryLimit int
}

// OpenWith is Open with options.
func OpenWith(location string, opts OpenOptions) (Store, error) {
	if opts.HistoryLimit != 0 {
		opts.Etcd.HistoryLimit = opts.HistoryLimit
	}
	if IsEtcdLocation(location) {
		return NewEtcdStore(location, opts.Etcd)
	}
	if scheme, _, ok := strings.Cut(location, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		return nil, fmt.Errorf("state store %q: %s:// stores are not supported; use a file path or etcd://HOST:PORT/PREFIX", location, scheme)
	}
	if opts.Etcd.tlsSet() {
		return nil, fmt.Errorf("state store %s: --etcd-cacert, --etcd-cert and --etcd-key apply only to an etcd:// state store", location)
	}
	fs := NewFileStore(location)
	fs.HistoryLimit = opts.HistoryLimit
	return fs, nil
}

// Location picks the state store location: the flag value when set, else the
// EDGECTL_STATE value when set, else DefaultPath.
func Location(flag, env string) string {
	switch {
	case flag != "":
		return flag
	case env != "":
		return env
	}
	return DefaultPath
}

// CheckVersion returns nil when cur (nil for an empty store) has lineage
// expectLineage and serial expectSerial, else an error wrapping ErrStale that
// says what moved.
func CheckVersion(cur *Snapshot, expectLineage string, expectSerial int64) error {
	lineage, serial := cur.Version()
	if lineage == expectLineage && serial == expectSerial {
		return nil
	}
	return fmt.Errorf("%w: it was made against %s, but the state is now %s; make a new plan",
		ErrStale, describeVersion(expectLineage, expectSerial), describeVersion(lineage, serial))
}

func describeVersion(lineage string, serial int64) string {
	if lineage == "" && serial == 0 {
		return "an empty state"
	}
	return fmt.Sprintf("serial %d of lineage %s", serial, lineage)
}

// checkNext verifies that next continues the history at (lineage, serial).
func checkNext(next *Snapshot, lineage string, serial int64) error {
	switch {
	case next == nil:
		return errors.New("no snapshot to write")
	case next.FormatVersion != FormatVersion:
		return fmt.Errorf("snapshot has format version %d, want %d", next.FormatVersion, FormatVersion)
	case next.Lineage == "":
		return errors.New("snapshot has no lineage")
	case lineage != "" && next.Lineage != lineage:
		return fmt.Errorf("snapshot lineage %s does not continue lineage %s", next.Lineage, lineage)
	case next.Serial != serial+1:
		return fmt.Errorf("snapshot serial %d does not follow serial %d", next.Serial, serial)
	}
	return nil
}

// LockInfo names the holder of a lock.
type LockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Time    time.Time `json:"time"`
	Command string    `json:"command"`
}

// String describes the holder: "pid 1234 on host x since 2006-01-02T15:04:05Z (edgectl apply)".
func (l LockInfo) String() string {
	s := fmt.Sprintf("pid %d on host %s since %s", l.PID, l.Host, l.Time.UTC().Format(time.RFC3339))
	if l.Command != "" {
		s += " (" + l.Command + ")"
	}
	return s
}
