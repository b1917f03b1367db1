package nattest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// buildBinary builds synapse-p2p with the synapse_docnet tag once per test
// binary run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func synapseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "synapse-nattest-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "synapse-p2p")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "synapse_docnet", "-o", buildOnce.path, "./cmd/synapse-p2p")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// daemon is one synapse-p2p daemon running inside a namespace.
type daemon struct {
	t      *testing.T
	name   string // a, b or pub
	ns     string
	data   string
	bin    string
	peerID string
	log    *testutil.SyncBuffer
	cmd    *exec.Cmd
	api    *http.Client
}

// network is a devnet of three data directories: node0 and node1 (the
// validators, run as A and B behind the NATs) and node2 (a member, run as
// the public bootstrap node).
type network struct {
	dir, genesis, bin string
	data              [3]string
	ids               [3]string
}

func newNetwork(t *testing.T) *network {
	t.Helper()
	nw := &network{dir: t.TempDir(), bin: synapseBinary(t)}
	nw.genesis = filepath.Join(nw.dir, "genesis.json")
	out := sh(t, nw.bin, "genesis", "new", "--validators", "2", "--nodes", "3", "--out", nw.genesis, "--voting-period", "600")
	for i := range nw.data {
		nw.data[i] = filepath.Join(nw.dir, "keys", fmt.Sprintf("node%d", i))
		sh(t, nw.bin, "init", "--data", nw.data[i], "--genesis", nw.genesis)
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == fmt.Sprintf("node%d", i) {
				nw.ids[i] = f[2]
			}
		}
		if nw.ids[i] == "" {
			t.Fatalf("genesis new did not name node%d:\n%s", i, out)
		}
	}
	return nw
}

// listenAddrs are the listen multiaddrs for transport tcp, quic or both.
func listenAddrs(transport string) []string {
	tcp, quic := "/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"
	switch transport {
	case "tcp":
		return []string{tcp}
	case "quic":
		return []string{quic}
	}
	return []string{tcp, quic}
}

// startDaemon starts node i of nw in namespace ns with the API on the
// namespace's own 127.0.0.1:8000. env adds SYNAPSE_* settings.
func startDaemon(t *testing.T, nw *network, i int, name, ns string, listen []string, env ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, ns: ns, data: nw.data[i], bin: nw.bin, peerID: nw.ids[i], log: &testutil.SyncBuffer{}}
	args := []string{"netns", "exec", ns, nw.bin, "daemon", "--data", d.data, "--api", "127.0.0.1:8000", "--mdns=false"}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	cmd := exec.Command("ip", args...)
	logs := d.log
	cmd.Stdout, cmd.Stderr = logs, logs
	// The daemon dies with the test process even when a timeout kills it
	// before the cleanup runs (ip netns exec execs the daemon in place).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "SYNAPSE_LOG_LEVEL=debug")
	cmd.Env = append(cmd.Env, env...)
	// Pdeathsig fires when the thread that started the process ends, so
	// the process is started and waited for by a goroutine locked to its
	// thread for the daemon's whole life.
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		switch {
		case os.Getenv("SYNAPSE_NATTEST_LOGS") != "":
			t.Logf("---- log of %s (%s) ----\n%s", name, d.peerID, logs.String())
		case t.Failed():
			t.Logf("---- log of %s (%s), last 200 lines ----\n%s", name, d.peerID, tail(logs.String(), 200))
		}
	})
	d.api = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsDialer(ns), DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h struct {
			PeerID string `json:"peer_id"`
		}
		if err := d.get("/healthz", &h); err == nil && h.PeerID == d.peerID {
			return d
		}
		select {
		case <-done:
			t.Fatalf("daemon %s exited early:\n%s", name, tail(logs.String(), 50))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s did not serve its API within 30s:\n%s", name, tail(logs.String(), 50))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// get GETs an API path into out.
func (d *daemon) get(path string, out any) error {
	return d.call(http.MethodGet, path, nil, out)
}

func (d *daemon) call(method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:8000"+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// cli runs the synapse-p2p CLI inside the daemon's namespace.
func (d *daemon) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", d.ns, d.bin}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("synapse-p2p %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// p2pAddrs are the node's multiaddrs on the internet with its peer ID.
func p2pAddrs(ip, peerID string, listen []string) []string {
	var out []string
	for _, l := range listen {
		out = append(out, strings.Replace(l, "0.0.0.0", ip, 1)+"/p2p/"+peerID)
	}
	return out
}

// editP2PConfig changes the p2p section of the config.json in data.
func editP2PConfig(t *testing.T, data string, edit func(*p2p.Config)) {
	t.Helper()
	cfg, err := node.LoadConfig(data, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	edit(&cfg.P2P)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Write(); err != nil {
		t.Fatal(err)
	}
}
