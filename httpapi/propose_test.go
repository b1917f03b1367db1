package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

func proposal(size int64, url, hash string) []byte {
	b, _ := json.Marshal(httpapi.ProposeRequest{Title: "t", Version: "1.2.0", PackageURL: url, PackageHash: hash, PackageSize: size})
	return b
}

// A proposal asking for a package above the network's limit, or a size
// that is not positive, is refused with 400 naming the limit; so is one
// whose size or hash contradicts a package uploaded through POST /packages.
func TestProposePackageSize(t *testing.T) {
	doc := loadOpenAPI(t)
	ts, gov := newTestServer(t, "")
	const url = "ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	const hash = "sha256:ab"
	for _, tc := range []struct {
		size int64
		want int
		msg  string
	}{
		{99_000_000_000, 400, "limit of 67108864 bytes (64 MiB"},
		{64<<20 + 1, 400, "limit of 67108864 bytes"},
		{64 << 20, 201, ""},
		{0, 400, "positive"},
		{-5, 400, "positive"},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			code, body := do(t, ts, "POST", "/upgrades/propose", "", "application/json", proposal(tc.size, url, hash))
			check(t, doc, "POST", "/upgrades/propose", code, body)
			if code != tc.want || !strings.Contains(string(body), tc.msg) {
				t.Errorf("package_size %d: %d %s, want %d with %q", tc.size, code, body, tc.want, tc.msg)
			}
		})
	}
	// The limit is the backend's (the network's current rules).
	gov.mu.Lock()
	gov.maxPackage = 1000
	gov.mu.Unlock()
	if code, body := do(t, ts, "POST", "/upgrades/propose", "", "", proposal(1001, url, hash)); code != 400 || !strings.Contains(string(body), "limit of 1000 bytes") {
		t.Fatalf("lowered limit: %d %s", code, body)
	}

	pkg := []byte("\x00asm\x01\x00\x00\x00 a package")
	code, body := do(t, ts, "POST", "/packages", "", "application/octet-stream", pkg)
	if code != 201 {
		t.Fatalf("upload: %d %s", code, body)
	}
	var info httpapi.PackageInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	n := int64(len(pkg))
	bareUpper := strings.ToUpper(strings.TrimPrefix(info.SHA256, "sha256:"))
	for _, tc := range []struct {
		name      string
		url, hash string
		size      int64
		want      int
		msg       string
	}{
		{"size differs from the upload", info.URL, info.SHA256, n + 1, 400, "does not match the package uploaded"},
		{"same hash elsewhere, size differs", "https://example.org/p.wasm", bareUpper, n - 1, 400, "does not match the uploaded package"},
		{"url of the upload, other hash", info.URL, "sha256:" + strings.Repeat("0", 64), n, 400, "package_hash"},
		{"matches", info.URL, info.SHA256, n, 201, ""},
		{"matches, bare upper-case hash", info.URL, bareUpper, n, 201, ""},
		{"unknown package", "https://example.org/q.wasm", "sha256:" + strings.Repeat("1", 64), 7, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, ts, "POST", "/upgrades/propose", "", "", proposal(tc.size, tc.url, tc.hash))
			check(t, doc, "POST", "/upgrades/propose", code, body)
			if code != tc.want || !strings.Contains(string(body), tc.msg) {
				t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.want, tc.msg)
			}
		})
	}
}

func TestProposeRequestValidate(t *testing.T) {
	lim := httpapi.ProposalLimits{MaxPackageBytes: 100}
	ok := httpapi.ProposeRequest{Title: "t", Version: "1.2.0", PackageURL: "https://x/y", PackageHash: "ab", PackageSize: 100}
	if err := ok.Validate(lim); err != nil {
		t.Fatal(err)
	}
	missing := ok
	missing.Title, missing.PackageHash = " ", ""
	if err := missing.Validate(lim); !errors.Is(err, httpapi.ErrInvalid) || !strings.Contains(err.Error(), "missing package_hash, title") {
		t.Fatalf("missing fields: %v", err)
	}
	over := ok
	over.PackageSize = 101
	if err := over.Validate(lim); !errors.Is(err, httpapi.ErrInvalid) {
		t.Fatalf("over the limit: %v", err)
	}
	// A backend that does not know the limit is a server fault, not the
	// client's: no ErrInvalid, so the API answers a generic 500.
	if err := ok.Validate(httpapi.ProposalLimits{}); err == nil || errors.Is(err, httpapi.ErrInvalid) {
		t.Fatalf("unknown limit: %v", err)
	}
}

func TestProposeRequestValidateLifecycle(t *testing.T) {
	lim := httpapi.ProposalLimits{MaxPackageBytes: 100}
	up := httpapi.ProposeRequest{Title: "t", Version: "1.2.0", PackageURL: "https://x/y", PackageHash: "ab", PackageSize: 100}
	at := up
	at.ActivateAt = "2030-01-02T03:04:05Z"
	after := up
	after.ActivateAfterSeconds = 60
	good := []httpapi.ProposeRequest{
		at, after,
		{Type: httpapi.TypeCancel, Title: "stop", Target: "upgrade_20260101_000000_0123456789abcdef0123456789abcdef"},
		{Type: httpapi.TypeRollback, Title: "undo", Target: "abc", Version: "1.3.0"},
	}
	for _, req := range good {
		if err := req.Validate(lim); err != nil {
			t.Errorf("%+v: %v", req, err)
		}
	}
	both := at
	both.ActivateAfterSeconds = 60
	badTime := up
	badTime.ActivateAt = "tomorrow"
	targeted := up
	targeted.Target = "abc"
	bad := map[string]httpapi.ProposeRequest{
		"not both":               both,
		"not an RFC 3339 time":   badTime,
		"has no target":          targeted,
		"missing target":         {Type: httpapi.TypeCancel, Title: "stop"},
		"missing title, version": {Type: httpapi.TypeRollback, Target: "abc"},
		"no package and no schedule": {Type: httpapi.TypeCancel, Title: "stop", Target: "abc",
			PackageURL: "https://x/y", PackageHash: "ab", PackageSize: 1},
		"want code_upgrade, cancel or rollback": {Type: "revert", Title: "t", Target: "abc"},
	}
	for want, req := range bad {
		if err := req.Validate(lim); !errors.Is(err, httpapi.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", req, err, want)
		}
	}
}

// ExampleProposeRequest_Validate shows the message a proposer gets for a
// package no node would fetch.
func ExampleProposeRequest_Validate() {
	req := httpapi.ProposeRequest{Title: "Huge", Version: "2.0.0", PackageURL: "https://example.org/p.wasm",
		PackageHash: "sha256:ab", PackageSize: 99_000_000_000}
	fmt.Println(req.Validate(httpapi.ProposalLimits{MaxPackageBytes: 64 << 20}))
	// Output: invalid request: package_size 99000000000 exceeds the network's limit of 67108864 bytes (64 MiB, global.governance.limits.max_package_bytes): no node would fetch it
}
