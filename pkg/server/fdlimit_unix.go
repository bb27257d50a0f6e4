//go:build unix

package server

import "syscall"

// checkFileLimit warns when the process may open fewer files than
// MaxConnections needs: a client connection and an origin connection
// each, and some to spare.
func (s *Server) checkFileLimit() {
	var lim syscall.Rlimit
	if s.cfg.MaxConnections <= 0 || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if need := uint64(2*s.cfg.MaxConnections + 256); uint64(lim.Cur) < need {
		s.log.Warn("the process may open fewer files than --max-connections needs (two per connection: the client's and the origin's); raise the limit (ulimit -n, LimitNOFILE=) or lower --max-connections",
			"open_files_limit", lim.Cur, "needed", need, "max_connections", s.cfg.MaxConnections)
	}
}
