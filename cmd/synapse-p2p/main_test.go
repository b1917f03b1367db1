package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/examplebuild"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// TestMain lets tests run this test binary as the synapse-p2p command:
// with SYNAPSE_TEST_MAIN=1 it behaves exactly like main.
func TestMain(m *testing.M) {
	upgrade.MaybeRunSandboxChild()
	if os.Getenv("SYNAPSE_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cli runs one command line in-process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"daemon", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"daemon", "--data", missing}, 1, "not initialised"},
		{[]string{"id", "--data", missing}, 1, "not initialised"},
		{[]string{"genesis"}, 2, "genesis new"},
		{[]string{"genesis", "new", "--validators", "2"}, 2, "--out is required"},
		{[]string{"simnet", "--nodes", "0"}, 1, "at least 1 node"},
		{[]string{"init", "--data", missing, "extra"}, 2, "unexpected argument"},
		{[]string{"wasm", "build"}, 2, "want one example name"},
		{[]string{"wasm", "build", "no-such-example"}, 1, "unknown example"},
		{[]string{"propose", "--cancel", "x", "--rollback", "y", "--title", "t"}, 2, "not both"},
		{[]string{"propose", "--cancel", "x", "--title", "t", "--url", "https://a"}, 2, "takes no package"},
		{[]string{"propose", "--rollback", "x", "--title", "t"}, 2, "--rollback needs --title and --version"},
		{[]string{"propose", "--title", "t", "--version", "1.2.0", "--package", "p.wasm", "--activate-at", "2030-01-01T00:00:00Z", "--activate-after", "1m"}, 2, "not both"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tc.want)
			}
			// Errors (not usage texts) are one line.
			if tc.code == 1 && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("error is not one line: %q", stderr)
			}
		})
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := cli(t, name, "--help")
			if code != 0 || !strings.Contains(stderr, "Usage: synapse-p2p "+name) {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestInitIDVersion(t *testing.T) {
	data := t.TempDir()
	code, out, stderr := cli(t, "init", "--data", data)
	if code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	if !strings.Contains(out, "created") {
		t.Fatalf("init output %q", out)
	}
	code, out, _ = cli(t, "id", "--data", data, "--json")
	if code != 0 {
		t.Fatal("id failed")
	}
	var id struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(out), &id); err != nil || !strings.HasPrefix(id.PeerID, "12D3KooW") {
		t.Fatalf("id output %q (%v)", out, err)
	}
	if code, out, _ = cli(t, "version"); code != 0 || !strings.Contains(out, version) {
		t.Fatalf("version: %q", out)
	}
}

func TestGenesisNew(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "genesis.json")
	code, stdout, stderr := cli(t, "genesis", "new", "--validators", "2", "--nodes", "3", "--out", out)
	if code != 0 {
		t.Fatalf("genesis new: %s", stderr)
	}
	if strings.Count(stdout, "validator") != 2 || strings.Count(stdout, "member") != 1 {
		t.Fatalf("output %q", stdout)
	}
	// A node initialised from a generated identity joins that network.
	data := filepath.Join(dir, "keys", "node1")
	if code, _, stderr := cli(t, "init", "--data", data, "--genesis", out); code != 0 {
		t.Fatalf("init with generated identity: %s", stderr)
	}
	if code, _, _ := cli(t, "genesis", "new", "--validators", "1", "--out", out); code != 1 {
		t.Fatal("overwrote an existing genesis")
	}
}

// daemon runs the binary as a separate process and returns its peer ID and
// API address once it is up.
type daemonProc struct {
	cmd    *exec.Cmd
	peerID string
	listen []string
	api    string
}

func startDaemon(t *testing.T, data string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"daemon", "--data", data, "--mdns=false"}, args...)...)
	cmd.Env = append(os.Environ(), "SYNAPSE_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon exit: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("daemon did not stop on SIGINT")
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for d.api == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited early: %s", stderr.String())
			}
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "peer id":
				d.peerID = v
			case "listen":
				d.listen = append(d.listen, v)
			case "api":
				d.api = v
			}
		case <-timeout:
			t.Fatalf("daemon did not start: %s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return d
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func peersOf(t *testing.T, api string) []string {
	resp, err := http.Get(api + "/peers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Peers []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range body.Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

func TestTwoDaemonsFindEachOther(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "genesis.json")
	if code, _, stderr := cli(t, "genesis", "new", "--validators", "2", "--out", gen); code != 0 {
		t.Fatal(stderr)
	}
	dataA, dataB := filepath.Join(dir, "keys", "node0"), filepath.Join(dir, "keys", "node1")
	for _, d := range []string{dataA, dataB} {
		if code, _, stderr := cli(t, "init", "--data", d, "--genesis", gen); code != 0 {
			t.Fatal(stderr)
		}
	}
	listen := "/ip4/127.0.0.1/tcp/0"
	a := startDaemon(t, dataA, "--listen", listen, "--api", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	// B gets its API address from the environment and its bootstrap from
	// the flag: both must apply.
	t.Setenv("SYNAPSE_API", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	b := startDaemon(t, dataB, "--listen", listen, "--bootstrap", a.listen[0])
	os.Unsetenv("SYNAPSE_API")

	deadline := time.Now().Add(30 * time.Second)
	for {
		pa, pb := peersOf(t, a.api), peersOf(t, b.api)
		if contains(pa, b.peerID) && contains(pb, a.peerID) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemons did not find each other: a sees %v, b sees %v", pa, pb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestFlagBeatsEnv(t *testing.T) {
	data := t.TempDir()
	if code, _, stderr := cli(t, "init", "--data", data); code != 0 {
		t.Fatal(stderr)
	}
	port := freePort(t)
	t.Setenv("SYNAPSE_API", "127.0.0.1:1") // would fail to serve /peers
	d := startDaemon(t, data, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", fmt.Sprintf("127.0.0.1:%d", port))
	if d.api != fmt.Sprintf("http://127.0.0.1:%d", port) {
		t.Fatalf("api %s: flag did not win over env", d.api)
	}
}

func TestSimnetDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	code, out, stderr := cli(t, "simnet", "--nodes", "4", "--validators", "2", "--api-base-port", "-1", "--demo", "--json")
	if code != 0 {
		t.Fatalf("simnet --demo: exit %d: %s\n%s", code, stderr, out)
	}
	var res struct {
		Package string `json:"package"`
		Nodes   []struct {
			PeerID    string `json:"peer_id"`
			Version   string `json:"version"`
			StateHash string `json:"state_hash"`
			Executed  bool   `json:"executed"`
		} `json:"nodes"`
		Timeline map[string]int64 `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not one JSON document: %v\n%s", err, out)
	}
	if len(res.Nodes) != 4 {
		t.Fatalf("nodes: %+v", res.Nodes)
	}
	if res.Package != "add-feature-flag-rs" {
		t.Fatalf("the demo proposed %q, want the Rust package by default", res.Package)
	}
	for _, n := range res.Nodes {
		if !n.Executed || n.Version != "1.2.0" || n.StateHash != res.Nodes[0].StateHash || n.PeerID == "" {
			t.Fatalf("node outcome %+v", n)
		}
	}
	for _, stage := range []string{"proposed", "visible_everywhere", "approved", "ratified", "final", "fetched", "executed_all"} {
		if _, ok := res.Timeline[stage]; !ok {
			t.Fatalf("timeline lacks %s: %v", stage, res.Timeline)
		}
	}
	if code, _, stderr := cli(t, "simnet", "--json"); code != 2 || !strings.Contains(stderr, "need --demo") {
		t.Fatalf("--json without --demo: exit %d %s", code, stderr)
	}
	if code, _, stderr := cli(t, "simnet", "--package", "go"); code != 2 || !strings.Contains(stderr, "need --demo") {
		t.Fatalf("--package without --demo: exit %d %s", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "missing.wasm")
	code, _, stderr = cli(t, "simnet", "--nodes", "1", "--validators", "1", "--api-base-port", "-1", "--demo", "--package", missing)
	if code != 1 || !strings.Contains(stderr, "missing.wasm") {
		t.Fatalf("--package of a missing file: exit %d %s", code, stderr)
	}
}

// The CLI drives a real daemon through a whole upgrade: the package file is
// imported into the daemon's content store and proposed as ipfs://, the
// vote approves it (the dev genesis makes the node the only validator and
// voter), raft ratifies it and the executor runs it; then a local rollback
// and resume.
func TestCLIUpgradeFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	data := filepath.Join(t.TempDir(), "node")
	if code, _, stderr := cli(t, "init", "--data", data); code != 0 {
		t.Fatal(stderr)
	}
	d := startDaemon(t, data, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	api := strings.TrimPrefix(d.api, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pkg, err := examplebuild.Build(ctx, "add-feature-flag", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "propose", "--api", api, "--title", "Add feature flag", "--version", "1.2.0", "--package", pkg)
	if code != 0 {
		t.Fatalf("propose: %s", stderr)
	}
	var prop struct {
		ProposalID string `json:"proposal_id"`
	}
	if err := json.Unmarshal([]byte(out), &prop); err != nil || prop.ProposalID == "" {
		t.Fatalf("propose output %q: %v", out, err)
	}
	if code, _, stderr := cli(t, "vote", "--api", api, prop.ProposalID, "yes"); code != 0 {
		t.Fatalf("vote: %s", stderr)
	}
	var st struct {
		CurrentVersion string `json:"current_version"`
		Paused         bool   `json:"paused"`
	}
	for deadline := time.Now().Add(90 * time.Second); st.CurrentVersion != "1.2.0"; {
		if time.Now().After(deadline) {
			t.Fatalf("not upgraded: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
		_, out, _ := cli(t, "status", "--api", api)
		json.Unmarshal([]byte(out), &st)
	}
	if code, out, stderr := cli(t, "history", "--api", api); code != 0 || !strings.Contains(out, prop.ProposalID) {
		t.Fatalf("history: %s %s", out, stderr)
	}
	if code, out, stderr := cli(t, "rollback", "--api", api, prop.ProposalID); code != 0 || !strings.Contains(out, `"restored_version": "1.0.0"`) {
		t.Fatalf("rollback: %s %s", out, stderr)
	}
	_, out, _ = cli(t, "status", "--api", api)
	json.Unmarshal([]byte(out), &st)
	if st.CurrentVersion != "1.0.0" || !st.Paused {
		t.Fatalf("after rollback: %+v", st)
	}
	if code, _, stderr := cli(t, "resume", "--api", api); code != 0 {
		t.Fatalf("resume: %s", stderr)
	}
	if code, _, _ := cli(t, "resume", "--api", api); code == 0 {
		t.Fatal("second resume succeeded; want a conflict")
	}

	// A network-wide rollback of the upgrade, through governance.
	if code, _, stderr := cli(t, "propose", "--api", api, "--rollback", prop.ProposalID, "--title", "undo", "--version", "0.9.0"); code == 0 ||
		!strings.Contains(stderr, "higher than the current") && !strings.Contains(stderr, "not newer") {
		t.Fatalf("rollback to a lower version: exit %d %s", code, stderr)
	}
	code, out, stderr = cli(t, "propose", "--api", api, "--rollback", prop.ProposalID, "--title", "undo", "--version", "1.3.0")
	if code != 0 {
		t.Fatalf("propose --rollback: %s", stderr)
	}
	var rb struct {
		ProposalID string `json:"proposal_id"`
		Type       string `json:"type"`
		Target     string `json:"target"`
	}
	if err := json.Unmarshal([]byte(out), &rb); err != nil || rb.Type != "rollback" || rb.Target != prop.ProposalID {
		t.Fatalf("propose --rollback output %q: %v", out, err)
	}
	if code, _, stderr := cli(t, "vote", "--api", api, rb.ProposalID, "yes"); code != 0 {
		t.Fatalf("vote: %s", stderr)
	}
	for deadline := time.Now().Add(90 * time.Second); st.CurrentVersion != "1.3.0"; {
		if time.Now().After(deadline) {
			t.Fatalf("not rolled back: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
		_, out, _ := cli(t, "status", "--api", api)
		json.Unmarshal([]byte(out), &st)
	}
	if code, _, stderr := cli(t, "propose", "--api", api, "--cancel", prop.ProposalID, "--title", "late"); code == 0 || !strings.Contains(stderr, "too late") {
		t.Fatalf("cancel after the run: exit %d %s", code, stderr)
	}
}

// simnet without --demo prints every node's dashboard URL, and each one
// serves the page.
func TestSimnetPrintsDashboards(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- cmdSimnet(ctx, []string{"--nodes", "3", "--validators", "1"}, &out, &errb) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C stops") {
		select {
		case err := <-done:
			t.Fatalf("simnet ended: %v\n%s\n%s", err, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("simnet did not get ready:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	urls := regexp.MustCompile(`(?m)^  node (\d+) +(http://127\.0\.0\.1:\d+/)$`).FindAllStringSubmatch(out.String(), -1)
	if len(urls) != 3 {
		t.Fatalf("want 3 dashboard URLs:\n%s", out.String())
	}
	for i, m := range urls {
		if m[1] != fmt.Sprint(i) {
			t.Fatalf("dashboard lines out of order:\n%s", out.String())
		}
		resp, err := http.Get(m[2])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", m[2], resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("simnet after interrupt: %v", err)
	}
}
