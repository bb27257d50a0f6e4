// Package tooltest finds the programs tests drive (curl, openssl, nginx,
// etcd): a test skips without one, except in CI, where make tools
// installs them all and a missing one fails the test.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of the program name: on PATH, or else the first
// of also that exists (Debian installs daemons in /usr/sbin, which is not
// on an ordinary user's PATH). Without one it skips t, or fails it when
// the environment variable CI is "true"; the message names debianPackage,
// the package that has the program.
func Path(t testing.TB, name, debianPackage string, also ...string) string {
	t.Helper()
	for _, p := range append([]string{name}, also...) {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	msg := name + " is not installed (apt-get install " + debianPackage + ", or make tools)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
