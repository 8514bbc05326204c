// Command planrun runs database migrations described as plan files.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/planrun/planrun/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
