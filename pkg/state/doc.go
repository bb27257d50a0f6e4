// Package state holds the deployed state: the Snapshot type, the Store
// interface, and its two stores, the file store and the etcd store (with
// the Watcher that follows it). It is one of the three packages that touch
// the outside world: it reads and writes the state store and nothing else.
package state
