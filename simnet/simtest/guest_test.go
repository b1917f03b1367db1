package simtest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// guestPath is the committed set-version guest (hand-written WAT, see its
// .wat beside it).
const guestPath = "../testdata/set-version/set-version.wasm"

func runGuest(t *testing.T, state string) (upgrade.RunResult, error) {
	t.Helper()
	cfg := upgrade.DefaultConfig()
	cfg.Isolation = upgrade.IsolationInProcess
	cfg.CompilationCacheDir = t.TempDir()
	return upgrade.Run(context.Background(), cfg, guestPath, []byte(state))
}

// The guest sets global.version and nothing else: "version" keys and
// strings elsewhere (nested deeper, in other top-level objects, inside
// escaped strings) are left alone.
func TestSetVersionGuest(t *testing.T) {
	in := `{"a":{"version":"9.9.9"},"global":{"nodes":{"n1":{"version":"0.1.0","note":"say \"version\":\"x\""}},` +
		`"validators":["v"],"version":"1.0.0","z":[{"version":"2"}]},"version":"top"}`
	res, err := runGuest(t, in)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(res.Output, &got); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(strings.Replace(in, `"validators":["v"],"version":"1.0.0"`, `"validators":["v"],"version":"1.2.0"`, 1)), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("output\n %s\nwant\n %s", gb, wb)
	}
	if res.FuelUsed == 0 {
		t.Fatal("no fuel used")
	}
	info, err := upgrade.Inspect(context.Background(), upgrade.Config{Isolation: upgrade.IsolationInProcess, CompilationCacheDir: t.TempDir()}, guestPath)
	if err != nil {
		t.Fatal(err)
	}
	var ui struct {
		Version string `json:"version"`
	}
	if info.ABI != upgrade.ABIReactor || json.Unmarshal(info.UpgradeInfo, &ui) != nil || ui.Version != "1.2.0" {
		t.Fatalf("module info %+v (%s)", info, info.UpgradeInfo)
	}
}

// A state without a string global.version traps: a deterministic failure,
// never a state the executor would commit.
func TestSetVersionGuestTrapsWithoutVersion(t *testing.T) {
	for _, in := range []string{
		`{"global":{"nodes":{}}}`,
		`{"global":{"version":1}}`,
		`{"other":{"version":"1.0.0"}}`,
	} {
		if _, err := runGuest(t, in); err == nil || !strings.Contains(err.Error(), "trap") {
			t.Errorf("%s: err = %v, want a trap", in, err)
		}
	}
}

// The committed .wasm is what the committed .wat assembles to (checked
// where wabt's wat2wasm is installed; tests never need it otherwise).
func TestSetVersionGuestMatchesSource(t *testing.T) {
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed")
	}
	out := filepath.Join(t.TempDir(), "g.wasm")
	if b, err := exec.Command(w2w, strings.TrimSuffix(guestPath, ".wasm")+".wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v: %s", err, b)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(guestPath)
	if string(a) != string(b) {
		t.Fatal("set-version.wasm is stale: run wat2wasm set-version.wat -o set-version.wasm")
	}
}
