package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

func init() {
	commands["propose"] = command{"propose a code upgrade to a running daemon", cmdPropose}
	commands["vote"] = command{"vote on a proposal: vote ID approval|rejection", cmdVote}
	commands["proposals"] = command{"list proposals", simpleGet("proposals", "/proposals")}
	commands["proposal"] = command{"show one proposal: proposal ID", idCommand("proposal", "ID", func(ctx context.Context, c *apiClient, id string, rest []string) (json.RawMessage, error) {
		if len(rest) > 0 {
			return nil, usagef("unexpected argument %q", rest[0])
		}
		var raw json.RawMessage
		err := c.do(ctx, http.MethodGet, "/proposals/"+url.PathEscape(id), "", nil, &raw)
		return raw, err
	})}
	commands["status"] = command{"show the upgrade executor's status", simpleGet("status", "/upgrades/status")}
	commands["history"] = command{"show the upgrade history", simpleGet("history", "/upgrades/history")}
	commands["log"] = command{"show the execution log", simpleGet("log", "/execution-log")}
	commands["rollback"] = command{"roll this node back to before an upgrade: rollback ID", idCommand("rollback", "ID", func(ctx context.Context, c *apiClient, id string, rest []string) (json.RawMessage, error) {
		if len(rest) > 0 {
			return nil, usagef("unexpected argument %q", rest[0])
		}
		var raw json.RawMessage
		err := c.postJSON(ctx, "/upgrades/"+url.PathEscape(id)+"/rollback", nil, &raw)
		return raw, err
	})}
	commands["resume"] = command{"let a paused executor continue", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags("resume", "[--api ADDR]", stderr)
		api, token := apiFlags(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := newClient(*api, *token).postJSON(ctx, "/upgrades/resume", nil, &raw); err != nil {
			return err
		}
		return printJSON(stdout, raw)
	}}
	commands["test"] = command{"dry-run a proposal's package on this node: test ID", idCommand("test", "ID", func(ctx context.Context, c *apiClient, id string, rest []string) (json.RawMessage, error) {
		var raw json.RawMessage
		err := c.postJSON(ctx, "/upgrades/"+url.PathEscape(id)+"/test", nil, &raw)
		return raw, err
	})}
}

func cmdPropose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("propose", "--title T --version V (--package FILE | --url URL --hash H --size N) [--activate-at TIME | --activate-after DURATION]\n"+
		"       synapse-p2p propose --cancel ID --title T\n"+
		"       synapse-p2p propose --rollback ID --version V --title T  [--description D] [--api ADDR]", stderr)
	api, token := apiFlags(fs)
	title := fs.String("title", "", "proposal title")
	desc := fs.String("description", "", "what the proposal changes and why")
	version := fs.String("version", "", "the version the upgrade (or rollback) moves the network to (semantic version, above the current one)")
	pkg := fs.String("package", "", "a local .wasm file: imported into the daemon and proposed as ipfs://<CID>")
	pkgURL := fs.String("url", "", "package URL (ipfs://CID, https://…)")
	hash := fs.String("hash", "", "package SHA-256 (sha256:<hex> or hex)")
	size := fs.Int64("size", 0, "package size in bytes")
	activateAt := fs.String("activate-at", "", "schedule the upgrade for this time (RFC 3339, at most 30 days ahead)")
	activateAfter := fs.Duration("activate-after", 0, "schedule the upgrade this long after its entry is final (e.g. 10m, at most 720h)")
	cancel := fs.String("cancel", "", "propose to cancel this approved or scheduled upgrade (proposal ID or alias)")
	rollback := fs.String("rollback", "", "propose a network-wide rollback of this upgrade (the latest that ran)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	req := httpapi.ProposeRequest{Title: *title, Description: *desc, Version: *version, PackageURL: *pkgURL, PackageHash: *hash,
		PackageSize: *size, ActivateAt: *activateAt, ActivateAfterSeconds: int64(activateAfter.Seconds())}
	hasPackage := *pkg != "" || *pkgURL != "" || *hash != "" || *size != 0
	scheduled := *activateAt != "" || *activateAfter != 0
	switch {
	case *cancel != "" && *rollback != "":
		return usagef("give --cancel or --rollback, not both")
	case (*cancel != "" || *rollback != "") && (hasPackage || scheduled):
		return usagef("a cancel or rollback proposal takes no package and no schedule")
	case *cancel != "":
		if *title == "" || *version != "" {
			return usagef("--cancel needs --title and takes no --version")
		}
		req.Type, req.Target = httpapi.TypeCancel, *cancel
	case *rollback != "":
		if *title == "" || *version == "" {
			return usagef("--rollback needs --title and --version (a version above the current one: versions never go down)")
		}
		req.Type, req.Target = httpapi.TypeRollback, *rollback
	default:
		if *title == "" || *version == "" {
			return usagef("--title and --version are required")
		}
		switch {
		case *pkg != "" && (*pkgURL != "" || *hash != "" || *size != 0):
			return usagef("give either --package or --url/--hash/--size, not both")
		case *pkg == "" && (*pkgURL == "" || *hash == "" || *size <= 0):
			return usagef("give --package FILE, or all of --url, --hash and --size")
		case *activateAt != "" && *activateAfter != 0:
			return usagef("give --activate-at or --activate-after, not both")
		case *activateAfter < 0 || (*activateAfter > 0 && *activateAfter < time.Second):
			return usagef("--activate-after must be at least 1s")
		}
	}
	c := newClient(*api, *token)
	if *pkg != "" {
		f, err := os.Open(*pkg)
		if err != nil {
			return err
		}
		defer f.Close()
		var info httpapi.PackageInfo
		if err := c.do(ctx, http.MethodPost, "/packages", "application/octet-stream", f, &info); err != nil {
			return fmt.Errorf("import %s: %w", *pkg, err)
		}
		fmt.Fprintf(stderr, "imported %s: %s %s (%d bytes)\n", *pkg, info.URL, info.SHA256, info.Size)
		req.PackageURL, req.PackageHash, req.PackageSize = info.URL, info.SHA256, info.Size
	}
	var raw json.RawMessage
	if err := c.postJSON(ctx, "/upgrades/propose", req, &raw); err != nil {
		return err
	}
	return printJSON(stdout, raw)
}

func cmdVote(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("vote", "ID approval|rejection [--api ADDR]", stderr)
	api, token := apiFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("want: vote ID approval|rejection")
	}
	choice, err := httpapi.NormalizeChoice(fs.Arg(1))
	if err != nil {
		return usagef("%v", err)
	}
	var raw json.RawMessage
	if err := newClient(*api, *token).postJSON(ctx, "/proposals/"+url.PathEscape(fs.Arg(0))+"/vote", httpapi.VoteRequest{Vote: choice}, &raw); err != nil {
		return err
	}
	return printJSON(stdout, raw)
}
