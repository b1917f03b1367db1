package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	badger "github.com/ipfs/go-ds-badger"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
)

func init() {
	commands["package"] = command{"import a package file: package add [--data DIR] [--api ADDR] FILE", cmdPackage}
}

// daemonProbeTimeout bounds the check whether a daemon answers on --api.
const daemonProbeTimeout = 2 * time.Second

func cmdPackage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: synapse-p2p package add [--data DIR] [--api ADDR] FILE")
			return flag.ErrHelp
		}
		return usagef("want: package add [--data DIR] [--api ADDR] FILE")
	}
	fset := newFlags("package add", "[--data DIR] [--api ADDR] FILE", stderr)
	data := dataFlag(fset)
	api, token := apiFlags(fset)
	if err := parse(fset, args[1:]); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		return usagef("want exactly one FILE")
	}
	path := fset.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory; a package is one file", path)
	}

	var info httpapi.PackageInfo
	c := newClient(*api, *token)
	if daemonAnswers(ctx, c) {
		if err := c.do(ctx, http.MethodPost, "/packages", "application/octet-stream", f, &info); err != nil {
			return fmt.Errorf("import %s through the daemon at %s: %w", path, c.base, err)
		}
		fmt.Fprintf(stderr, "imported %s through the daemon at %s; it is kept and announced\n", path, c.base)
	} else {
		res, err := importOffline(ctx, *data, f)
		if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
		info = httpapi.PackageInfo{CID: res.CID.String(), URL: "ipfs://" + res.CID.String(), SHA256: "sha256:" + res.SHA256, Size: res.Size}
		fmt.Fprintf(stderr, "imported %s into %s (no daemon answered on %s); it is announced when the daemon starts\n", path, *data, c.base)
	}
	raw, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return printJSON(stdout, raw)
}

// daemonAnswers reports whether a synapse-p2p API answers GET /healthz.
func daemonAnswers(ctx context.Context, c *apiClient) bool {
	pctx, cancel := context.WithTimeout(ctx, daemonProbeTimeout)
	defer cancel()
	return c.do(pctx, http.MethodGet, "/healthz", "", nil, nil) == nil
}

// importOffline opens the data directory's datastore (only possible while
// no daemon holds it) and imports r.
func importOffline(ctx context.Context, dataDir string, r io.Reader) (bitswap.AddResult, error) {
	if _, err := os.Stat(filepath.Join(dataDir, node.ConfigFile)); errors.Is(err, fs.ErrNotExist) {
		return bitswap.AddResult{}, fmt.Errorf("%s: %w (run synapse-p2p init)", dataDir, node.ErrNotInitialised)
	}
	opts := badger.DefaultOptions
	ds, err := badger.NewDatastore(filepath.Join(dataDir, node.DatastoreDir), &opts)
	if err != nil {
		return bitswap.AddResult{}, fmt.Errorf("open datastore (is a synapse-p2p daemon using %s? point --api at it): %w", dataDir, err)
	}
	res, err := bitswap.Import(ctx, ds, r)
	if cerr := ds.Close(); err == nil && cerr != nil {
		return bitswap.AddResult{}, fmt.Errorf("close datastore: %w", cerr)
	}
	return res, err
}
