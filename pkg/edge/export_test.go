package edge

// IdleOriginConns returns how many idle origin connections the application
// app of rt keeps, for the tests of package edge_test.
func IdleOriginConns(rt *Runtime, app string) int { return rt.apps[app].origin.Idle() }

// OpenOriginConns returns how many connections the application's origin
// pool holds open (idle, in use or being dialed).
func OpenOriginConns(rt *Runtime, app string) int { return rt.apps[app].origin.Open() }

// QueuedRequests returns how many requests wait for one of the
// application's origin connections.
func QueuedRequests(rt *Runtime, app string) int { return rt.apps[app].origin.Queued() }
