package h1

// Sweeping reports whether the server's watch sweeper is running.
func (s *Server) Sweeping() bool {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.sweeping
}
