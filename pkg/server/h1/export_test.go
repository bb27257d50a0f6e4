package h1

// Sweeping reports whether the server's watch sweeper is running.
func (s *Server) Sweeping() bool {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.sweeping
}

// HoldingBuffers reports how many of the server's connections hold read
// and write buffers.
func (s *Server) HoldingBuffers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.holding.Load() {
			n++
		}
	}
	return n
}
