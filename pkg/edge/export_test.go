package edge

// IdleOriginConns returns how many idle origin connections the application
// app of rt keeps, for the tests of package edge_test.
func IdleOriginConns(rt *Runtime, app string) int { return rt.apps[app].origin.Idle() }
