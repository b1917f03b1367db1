// Command synapse-p2p is the synapse-p2p node, its CLI and the local
// multi-node simulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// command is one subcommand: it parses its own flags from args and writes
// to stdout/stderr. A usageError makes main print the command's usage.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"init":    {"create identity, config and genesis in a data directory", cmdInit},
	"config":  {"show the effective config and where each value came from (config show)", cmdConfig},
	"daemon":  {"run a node", cmdDaemon},
	"id":      {"print the node's peer ID and addresses", cmdID},
	"genesis": {"create a devnet genesis (genesis new)", cmdGenesis},
	"simnet":  {"run many nodes on 127.0.0.1 in one process", cmdSimnet},
	"version": {"print the version", cmdVersion},
	"wasm":    {"inspect, run and build upgrade packages (wasm info|run|build)", cmdWasm},
}

func main() {
	// In the sandbox child mode (the executor runs packages in a child
	// process of this binary) this runs the package and exits.
	upgrade.MaybeRunSandboxChild()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code: 0 on success,
// 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "synapse-p2p: unknown command %q (see synapse-p2p --help)\n", args[0])
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "synapse-p2p %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "synapse-p2p %s: %s\n", args[0], oneLine(err))
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "synapse-p2p: a peer-to-peer node for a network that upgrades itself")
	fmt.Fprintln(w, "\nUsage: synapse-p2p <command> [flags]   (synapse-p2p <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}

// usageError marks errors in the command line itself (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// newFlags returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlags(name, argsUsage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("synapse-p2p "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: synapse-p2p %s %s\n\nFlags:\n", name, argsUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, turning flag errors into usage errors. The flag
// package has already printed the details and the usage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "synapse-p2p", version)
	return nil
}
