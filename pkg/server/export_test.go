package server

import "github.com/edgectl/edgectl/pkg/state"

// OnEventHandled makes the server call f after it has handled each event of
// its watched store, so that a test can wait for an event instead of
// sleeping.
func OnEventHandled(cfg *Config, f func(state.WatchEvent)) { cfg.handled = f }
