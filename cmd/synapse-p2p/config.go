package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/synapse-p2p/synapse-p2p/node"
)

// configFlags are the daemon's flags that override config.json keys (over
// the SYNAPSE_* environment, which overrides the file).
type configFlags struct {
	fs                      *flag.FlagSet
	listen, bootstrap       listFlag
	api, apiToken, logLevel *string
	mdns                    *bool
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	f := &configFlags{fs: fs}
	fs.Var(&f.listen, "listen", "multiaddr to listen on, repeatable (env SYNAPSE_LISTEN, comma-separated)")
	fs.Var(&f.bootstrap, "bootstrap", "bootstrap peer multiaddr with /p2p/ID, repeatable (env SYNAPSE_BOOTSTRAP)")
	f.api = fs.String("api", "", "REST API address host:port, \"off\" to disable (env SYNAPSE_API; default 127.0.0.1:8000)")
	f.apiToken = fs.String("api-token", "", "bearer token for mutating API calls (env SYNAPSE_API_TOKEN)")
	f.mdns = fs.Bool("mdns", true, "discover peers on the local network (env SYNAPSE_MDNS)")
	f.logLevel = fs.String("log-level", "", "debug, info, warn or error (env SYNAPSE_LOG_LEVEL)")
	return f
}

// apply overrides cfg with the flags given on the command line and records
// their keys in src.
func (f *configFlags) apply(cfg *node.Config, src node.ConfigSources) {
	set := flagsSet(f.fs)
	for _, o := range []struct {
		flag, key string
		apply     func()
	}{
		{"listen", "p2p.listen_addrs", func() { cfg.P2P.ListenAddrs = f.listen }},
		{"bootstrap", "p2p.bootstrap", func() { cfg.P2P.Bootstrap = f.bootstrap }},
		{"api", "api.addr", func() {
			if cfg.API.Addr = *f.api; *f.api == "off" {
				cfg.API.Addr = ""
			}
		}},
		{"api-token", "api.token", func() { cfg.API.Token = *f.apiToken }},
		{"mdns", "p2p.mdns", func() { cfg.P2P.MDNS = *f.mdns }},
		{"log-level", "log_level", func() { cfg.LogLevel = *f.logLevel }},
	} {
		if set[o.flag] {
			o.apply()
			src[o.key] = node.SourceFlag
		}
	}
}

// loadConfig is the configuration the daemon runs with: defaults,
// config.json, SYNAPSE_* and the flags, and where each value came from.
func (f *configFlags) loadConfig(dataDir string) (node.Config, node.ConfigSources, error) {
	cfg, src, err := node.LoadConfigSources(dataDir, nil)
	if err != nil {
		return cfg, nil, err
	}
	f.apply(&cfg, src)
	return cfg, src, nil
}

func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "[--data DIR] [--listen MA]... [--bootstrap MA]... [--api ADDR] [--api-token T] [--mdns] [--log-level L]"
	if len(args) == 0 || args[0] != "show" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: synapse-p2p config show "+usage)
			fmt.Fprintln(stderr, "\nPrints the config the daemon would run with (the same flags, SYNAPSE_* variables,\nconfig.json and defaults) as JSON, with the source of every value.")
			return nil
		}
		return usagef("want: config show [--data DIR] [daemon flags]")
	}
	fs := newFlags("config show", usage, stderr)
	data := dataFlag(fs)
	flags := addConfigFlags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, src, err := flags.loadConfig(*data)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := node.ShowConfig(cfg, src)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
