// Package state holds the deployed state: the Snapshot type, the Store
// interface with its two stores, and the Watcher interface that both of
// them implement.
//
// A Store holds one snapshot and the history of its serials; it writes by
// compare-and-swap on the lineage and serial, under a writer lock that names
// its holder. There are two: the file store (a JSON file, written by
// renaming a complete temporary file into place) and the etcd store (a key
// under a prefix). Open picks one from a location: a path or an etcd:// URL.
//
// A Watcher follows the state as others write it and sends a WatchEvent
// for each change: the etcd store watches its key (reconnecting by itself),
// the file store watches its file's directory for change notifications
// (fsnotify) and polls the file's size and modification time in case
// notifications are missed. A server follows any store through this one
// interface; a store that is not a Watcher is polled. WriteCache and
// ReadCache keep the last snapshot a node served, so that it can start
// while its store cannot be reached.
//
// A snapshot is decoded in one pass (decode.go): a scan splits the state
// into its top-level members and its resources, and each resource is
// decoded once, straight into the typed spec of its kind. A store keeps
// what its last read decoded and reuses the resources whose bytes did not
// change, so that a server re-reading a state of 10,000 domains after one
// changed decodes one resource; the snapshots a store reads therefore
// share unchanged specs and are read-only. Anything unusual is decoded
// again by the reference decoding, which words the errors.
//
// It is one of the four packages that touch the outside world (with
// manifest, server and proxy): it reads, writes and watches the state store
// and nothing else.
package state
