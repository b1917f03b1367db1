package main

import (
	"flag"
	"os"
	"path/filepath"

	"github.com/synapse-p2p/synapse-p2p/node"
)

// defaultDataDir is $SYNAPSE_DATA, else ~/.synapse-p2p.
func defaultDataDir() string {
	if d := os.Getenv(node.EnvPrefix + "DATA"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".synapse-p2p"
	}
	return filepath.Join(home, ".synapse-p2p")
}

func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", defaultDataDir(), "data directory (env SYNAPSE_DATA)")
}

// flagsSet reports which flags were given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
