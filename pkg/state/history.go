package state

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"sort"
)

// DefaultHistoryLimit is how many snapshots a store keeps when its limit is
// not set: the current one and the 19 before it.
const DefaultHistoryLimit = 20

// Historian is implemented by stores that keep the last snapshots written,
// each stored with the state in the same atomic write (FileStore and
// EtcdStore).
type Historian interface {
	// History returns the kept snapshots of the current lineage, newest
	// (the current snapshot) first; nil for an empty store.
	History(ctx context.Context) ([]*Snapshot, error)
}

var (
	_ Historian = (*FileStore)(nil)
	_ Historian = (*EtcdStore)(nil)
)

// FindSerial returns the snapshot of serial in history (as History returns
// it), or an error that says which serials are kept.
func FindSerial(history []*Snapshot, serial int64, store fmt.Stringer) (*Snapshot, error) {
	for _, s := range history {
		if s.Serial == serial {
			return s, nil
		}
	}
	if len(history) == 0 {
		return nil, fmt.Errorf("serial %d is not in the history of %s: nothing has been applied yet", serial, store)
	}
	newest, oldest := history[0].Serial, history[len(history)-1].Serial
	if serial > newest || serial < 1 {
		return nil, fmt.Errorf("serial %d is not in the history of %s: the current serial is %d", serial, store, newest)
	}
	return nil, fmt.Errorf("serial %d is not in the history of %s any more: it keeps serials %d to %d", serial, store, oldest, newest)
}

// historyOf orders the kept snapshots for History: those of cur's lineage
// with a serial up to cur's (a snapshot written to the history whose state
// write then failed, or one of an older lineage, is left out), newest
// first, with cur itself first even when it was written before edgectl
// kept a history.
func historyOf(cur *Snapshot, kept []*Snapshot) []*Snapshot {
	if cur == nil {
		return nil
	}
	out := []*Snapshot{cur}
	for _, s := range kept {
		if s.Lineage == cur.Lineage && s.Serial < cur.Serial {
			out = append(out, s)
		}
	}
	sort.SliceStable(out[1:], func(i, j int) bool { return out[1+i].Serial > out[1+j].Serial })
	dedup := out[:1]
	for _, s := range out[1:] {
		if s.Serial != dedup[len(dedup)-1].Serial {
			dedup = append(dedup, s)
		}
	}
	return dedup
}

func historyLimit(n int) int {
	if n <= 0 {
		return DefaultHistoryLimit
	}
	return n
}

// CurrentUser names who runs this process as user@host, for AppliedBy.
func CurrentUser() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = fmt.Sprintf("uid-%d", os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return name + "@" + host
}
