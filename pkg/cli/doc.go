// Package cli wires edgectl's verbs to cobra. Each verb has an Options
// struct that its flags bind to and a run function that takes injected
// streams, so that tests can call it without a terminal or a process.
package cli
