package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/node"
)

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "pkg.wasm")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// No daemon: the file goes into the data directory's datastore and the CID
// is the one `ipfs add` prints.
func TestPackageAddOffline(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, node.ConfigFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "hello world\n")
	code, stdout, stderr := cli(t, "package", "add", "--data", data, "--api", closedAddr(t), file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var info httpapi.PackageInfo
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	want := "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	if info.CID != want || info.URL != "ipfs://"+want || info.Size != 12 ||
		info.SHA256 != "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447" {
		t.Fatalf("info %+v", info)
	}
	if _, err := os.Stat(filepath.Join(data, node.DatastoreDir)); err != nil {
		t.Fatalf("datastore not created: %v", err)
	}
	if !strings.Contains(stderr, "announced when the daemon starts") {
		t.Fatalf("stderr %q", stderr)
	}
}

// A daemon answers: the file is posted to POST /packages.
func TestPackageAddThroughDaemon(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /healthz":
			w.Write([]byte(`{"status":"ok"}`))
		case "POST /packages":
			b, _ := io.ReadAll(r.Body)
			got = string(b)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(httpapi.PackageInfo{CID: "QmX", URL: "ipfs://QmX", SHA256: "ab", Size: int64(len(b))})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	file := writeFile(t, "\x00asm")
	code, stdout, stderr := cli(t, "package", "add", "--data", filepath.Join(t.TempDir(), "none"), "--api", srv.URL, file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got != "\x00asm" || !strings.Contains(stdout, `"url": "ipfs://QmX"`) {
		t.Fatalf("posted %q, output %s", got, stdout)
	}
}

func TestPackageAddErrors(t *testing.T) {
	api := closedAddr(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"package"}, 2, "package add"},
		{[]string{"package", "add", "--api", api}, 2, "exactly one FILE"},
		{[]string{"package", "add", "--api", api, "--data", filepath.Join(t.TempDir(), "none"), writeFile(t, "x")}, 1, "not initialised"},
		{[]string{"package", "add", "--api", api, filepath.Join(t.TempDir(), "missing.wasm")}, 1, "no such file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
}
