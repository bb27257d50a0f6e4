package server

import (
	"context"
	"errors"

	"github.com/edgectl/edgectl/pkg/state"
)

// FixedState returns a read-only state store that holds snap, named name
// in messages: the source of an edge that serves one snapshot and never
// reloads, such as edgectl test's in-process edge or an end-to-end test.
// Give it to a Server with a negative Config.PollInterval.
func FixedState(name string, snap *state.Snapshot) state.Store {
	return fixedStore{name: name, snap: snap}
}

// fixedStore is FixedState's store.
type fixedStore struct {
	name string
	snap *state.Snapshot
}

var _ state.Store = fixedStore{}

func (f fixedStore) Read(ctx context.Context) (*state.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.snap, nil
}

func (f fixedStore) Write(context.Context, *state.Snapshot, string, int64) error {
	return errors.New("the state " + f.name + " is fixed: it cannot be written")
}

func (f fixedStore) Lock(context.Context, string) (func() error, error) {
	return nil, errors.New("the state " + f.name + " is fixed: it cannot be locked")
}

func (f fixedStore) String() string { return f.name }
