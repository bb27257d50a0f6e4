//go:build !unix

package server

// checkFileLimit has no open-files limit to check on this system.
func (s *Server) checkFileLimit() {}
