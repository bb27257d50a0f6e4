// Package nginxtest runs Debian's nginx for a test, as the peer whose
// behaviour edgectl is compared with: in the foreground, on a loopback
// port of its own, with a prefix directory of its own, stopped when the
// test ends. It needs the nginx binary (Debian's nginx package; make tools
// installs it). Without it, a test is skipped, or fails when CI is "true".
package nginxtest
