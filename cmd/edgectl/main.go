// Command edgectl is a self-hosted mTLS edge configured as code.
package main

import (
	"os"

	"github.com/edgectl/edgectl/pkg/cli"
)

func main() {
	os.Exit(cli.Main())
}
