package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

type idJSON struct {
	PeerID       string   `json:"peer_id"`
	Addrs        []string `json:"addrs"`
	Running      bool     `json:"running"`
	API          string   `json:"api"`
	APIError     string   `json:"api_error"`
	Reachability string   `json:"reachability"`
	RelayAddrs   []string `json:"relay_addrs"`
	RelayService bool     `json:"relay_service"`
}

func idOf(t *testing.T, args ...string) idJSON {
	t.Helper()
	code, out, stderr := cli(t, append([]string{"id", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("id %v: exit %d: %s", args, code, stderr)
	}
	var id idJSON
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("id --json output %q: %v", out, err)
	}
	return id
}

// Without a daemon, id knows the peer ID and the configured addresses and
// says that the reachability is unknown; with one it shows what the daemon
// reports, and it never shows another node's status as this node's.
func TestIDShowsReachability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	dataA, dataB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{dataA, dataB} {
		if code, _, stderr := cli(t, "init", "--data", d); code != 0 {
			t.Fatal(stderr)
		}
	}
	apiA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	off := idOf(t, "--data", dataA, "--api", apiA)
	if off.Running || off.Reachability != "unknown" || off.APIError == "" || len(off.Addrs) == 0 || !strings.HasPrefix(off.PeerID, "12D3KooW") {
		t.Fatalf("id without a daemon: %+v", off)
	}
	_, text, _ := cli(t, "id", "--data", dataA, "--api", apiA)
	if !strings.Contains(text, "reachability: unknown (no running daemon") {
		t.Fatalf("id text without a daemon:\n%s", text)
	}

	d := startDaemon(t, dataA, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", apiA)
	on := idOf(t, "--data", dataA, "--api", apiA)
	if !on.Running || on.PeerID != d.peerID || on.APIError != "" || on.Reachability != "unknown" || on.RelayAddrs == nil {
		t.Fatalf("id with a daemon: %+v", on)
	}
	if len(on.Addrs) == 0 || !strings.HasSuffix(on.Addrs[0], "/p2p/"+d.peerID) {
		t.Fatalf("id with a daemon shows addresses %v", on.Addrs)
	}
	_, text, _ = cli(t, "id", "--data", dataA, "--api", apiA)
	for _, want := range []string{d.peerID, "reachability: unknown\n", "addresses (announced):", "relay addresses: none"} {
		if !strings.Contains(text, want) {
			t.Fatalf("id text lacks %q:\n%s", want, text)
		}
	}

	other := idOf(t, "--data", dataB, "--api", apiA)
	if other.Running || !strings.Contains(other.APIError, "another node") {
		t.Fatalf("id of B against A's API: %+v", other)
	}
}
