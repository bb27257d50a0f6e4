package h2

// Parked reports how many of the server's connections wait for their
// client's next frame without a read buffer (waitIdle).
func (s *Server) Parked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.parked.Load() {
			n++
		}
	}
	return n
}

// TimerRuns reports how many times the connections' timers ran.
func (s *Server) TimerRuns() int64 { return s.timerRuns.Load() }

// ReadFramers reports how many read framers the server's connections
// hold (none while they wait idle: dropReadFramer).
func (s *Server) ReadFramers() int64 { return s.readFramers.Load() }
