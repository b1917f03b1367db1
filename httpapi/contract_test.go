package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// fakeGov is an in-memory governance backend with the real rules the API
// relies on: unknown IDs are ErrNotFound, the same vote twice is
// ErrConflict.
type fakeGov struct {
	mu        sync.Mutex
	proposals map[string]*httpapi.Proposal
	votes     map[string]string
	// maxPackage is the network's package size limit it reports.
	maxPackage int64
}

func newFakeGov() *fakeGov {
	return &fakeGov{proposals: map[string]*httpapi.Proposal{}, votes: map[string]string{}, maxPackage: 64 << 20}
}

func (g *fakeGov) ProposalLimits(ctx context.Context) (httpapi.ProposalLimits, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return httpapi.ProposalLimits{MaxPackageBytes: g.maxPackage}, nil
}

func (g *fakeGov) Propose(ctx context.Context, req httpapi.ProposeRequest) (httpapi.Proposal, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if req.Version == "0.0.1" {
		return httpapi.Proposal{}, fmt.Errorf("%w: version 0.0.1 does not raise 1.0.0", httpapi.ErrInvalid)
	}
	id := fmt.Sprintf("upgrade_20260101_000000_%08d", len(g.proposals))
	p := &httpapi.Proposal{ProposalID: id, Type: "code_upgrade", Title: req.Title, Version: req.Version,
		PackageURL: req.PackageURL, PackageHash: req.PackageHash, PackageSize: req.PackageSize,
		Proposer: testPeer, CreatedAt: "2026-01-01T00:00:00Z", Status: "voting", Votes: []httpapi.Vote{}}
	g.proposals[id] = p
	return *p, nil
}

func (g *fakeGov) Vote(ctx context.Context, id, choice string) (httpapi.VoteResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.proposals[id]
	if !ok {
		return httpapi.VoteResult{}, fmt.Errorf("%w: proposal %s", httpapi.ErrNotFound, id)
	}
	prev := g.votes[id]
	if prev == choice {
		return httpapi.VoteResult{}, fmt.Errorf("%w: already voted %s", httpapi.ErrConflict, choice)
	}
	g.votes[id] = choice
	return httpapi.VoteResult{ProposalID: id, Vote: choice, Changed: prev != "", Status: p.Status}, nil
}

func (g *fakeGov) Proposals(ctx context.Context) ([]httpapi.Proposal, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []httpapi.Proposal
	for _, p := range g.proposals {
		out = append(out, *p)
	}
	return out, nil
}

func (g *fakeGov) Proposal(ctx context.Context, id string) (httpapi.Proposal, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.proposals[id]
	if !ok {
		return httpapi.Proposal{}, fmt.Errorf("%w: proposal %s", httpapi.ErrNotFound, id)
	}
	return *p, nil
}

func (g *fakeGov) ExecutionLog(ctx context.Context) ([]httpapi.LogEntry, error) { return nil, nil }
func (g *fakeGov) Validators(ctx context.Context) (httpapi.ValidatorSet, error) {
	return httpapi.ValidatorSet{Validators: []httpapi.Validator{{PeerID: testPeer, Leader: true, Connected: true}}, Leader: testPeer, Self: true}, nil
}

type fakeUpgrades struct{ gov *fakeGov }

func (u fakeUpgrades) Test(ctx context.Context, id string) (httpapi.TestResult, error) {
	if _, err := u.gov.Proposal(ctx, id); err != nil {
		return httpapi.TestResult{}, err
	}
	return httpapi.TestResult{ProposalID: id, Success: true, Version: "1.2.0", StateHash: "ab"}, nil
}
func (u fakeUpgrades) Status(ctx context.Context) (httpapi.Status, error) {
	return httpapi.Status{SystemAvailable: true, CurrentVersion: "1.0.0", WasmAvailable: true}, nil
}
func (u fakeUpgrades) History(ctx context.Context) ([]httpapi.HistoryEntry, error) { return nil, nil }
func (u fakeUpgrades) Rollback(ctx context.Context, id string) (httpapi.RollbackResult, error) {
	if _, err := u.gov.Proposal(ctx, id); err != nil {
		return httpapi.RollbackResult{}, err
	}
	return httpapi.RollbackResult{}, fmt.Errorf("%w: %s was never executed here", httpapi.ErrConflict, id)
}
func (u fakeUpgrades) Resume(ctx context.Context) (httpapi.Status, error) {
	return httpapi.Status{}, fmt.Errorf("%w: executor is not paused", httpapi.ErrConflict)
}
func (u fakeUpgrades) State(ctx context.Context) (httpapi.StateView, error) {
	return httpapi.StateView{Version: "1.0.0", StateHash: "ab", State: json.RawMessage(`{"global":{}}`)}, nil
}

type fakePackages struct{}

func (fakePackages) AddPackage(ctx context.Context, r io.Reader) (httpapi.PackageInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return httpapi.PackageInfo{}, err
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	return httpapi.PackageInfo{CID: "Qm" + h[:16], URL: "ipfs://Qm" + h[:16], SHA256: "sha256:" + h, Size: int64(len(b))}, nil
}

// openAPI is the part of docs/openapi.yaml the contract test reads.
type openAPI struct {
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		Schemas map[string]schema `yaml:"schemas"`
	} `yaml:"components"`
}

type operation struct {
	Responses map[string]struct {
		Ref     string `yaml:"$ref"`
		Content map[string]struct {
			Schema schema `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"responses"`
}

type schema struct {
	Ref      string   `yaml:"$ref"`
	Required []string `yaml:"required"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	seen := map[string]bool{}
	for _, r := range httpapi.Routes() {
		key := strings.ToLower(r.Method) + " " + r.Path
		seen[key] = true
		if _, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s missing from docs/openapi.yaml", r.Method, r.Path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !seen[method+" "+path] {
				t.Errorf("docs/openapi.yaml documents %s %s, which the server does not handle", method, path)
			}
		}
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// check asserts that the response status is documented for the route that
// matched, and that a 2xx JSON body has the schema's required fields.
func check(t *testing.T, doc openAPI, method, path string, code int, body []byte) {
	t.Helper()
	var op operation
	found := false
	for p, ops := range doc.Paths {
		re := regexp.MustCompile("^" + pathParam.ReplaceAllString(p, "[^/]+") + "$")
		if o, ok := ops[strings.ToLower(method)]; ok && re.MatchString(path) {
			op, found = o, true
			if !strings.Contains(p, "{") { // exact paths win over templates
				break
			}
		}
	}
	if !found {
		t.Fatalf("%s %s: not in docs/openapi.yaml", method, path)
	}
	resp, ok := op.Responses[fmt.Sprint(code)]
	if !ok {
		t.Fatalf("%s %s answered %d, not documented: %s", method, path, code, body)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %q", method, path, body)
	}
	if code >= 300 {
		if _, ok := obj["error"].(string); !ok {
			t.Fatalf("%s %s: error body without error string: %s", method, path, body)
		}
		if id, _ := obj["request_id"].(string); id == "" {
			t.Fatalf("%s %s: error body without request_id: %s", method, path, body)
		}
		return
	}
	c, ok := resp.Content["application/json"]
	if !ok {
		return
	}
	s := c.Schema
	if s.Ref != "" {
		s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	for _, f := range s.Required {
		if _, ok := obj[f]; !ok {
			t.Errorf("%s %s: response lacks required field %q: %s", method, path, f, body)
		}
	}
}

func newTestServer(t *testing.T, token string) (*httptest.Server, *fakeGov) {
	gov := newFakeGov()
	cfg := httpapi.DefaultConfig()
	cfg.Token = token
	cfg.MaxBodyBytes = 4 << 10
	cfg.MaxPackageBytes = 64 << 10
	s, err := httpapi.New(cfg, httpapi.Deps{Node: fakeBackend{}, Governance: gov, Upgrades: fakeUpgrades{gov}, Packages: fakePackages{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, gov
}

func do(t *testing.T, ts *httptest.Server, method, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const goodProposal = `{"title":"Add flag","description":"d","version":"1.2.0","package_url":"ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o","package_hash":"sha256:AB","package_size":12}`

func TestContract(t *testing.T) {
	doc := loadOpenAPI(t)
	ts, _ := newTestServer(t, "")
	code, body := do(t, ts, "POST", "/upgrades/propose", "", "application/json", []byte(goodProposal))
	check(t, doc, "POST", "/upgrades/propose", code, body)
	if code != 201 {
		t.Fatalf("propose: %d %s", code, body)
	}
	var pr httpapi.ProposeResponse
	json.Unmarshal(body, &pr)
	if pr.Status != "voting" || len(pr.NextSteps) == 0 {
		t.Fatalf("propose response %+v", pr)
	}
	id := pr.ProposalID
	big := `{"title":"` + strings.Repeat("x", 8<<10) + `"}`
	cases := []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/id", "", "", 200},
		{"GET", "/peers", "", "", 200},
		{"GET", "/metrics", "", "", 503},
		{"GET", "/proposals", "", "", 200},
		{"GET", "/proposals/" + id, "", "", 200},
		{"GET", "/proposals/upgrade_nope", "", "", 404},
		{"POST", "/proposals/" + id + "/vote", "application/json", `{"vote":"yes"}`, 200},
		{"POST", "/proposals/" + id + "/vote", "application/json", `{"vote":"approval"}`, 409}, // double vote
		{"POST", "/proposals/" + id + "/vote", "application/json", `{"vote":"NO"}`, 200},       // vote change
		{"POST", "/proposals/" + id + "/vote", "application/json", `{"vote":"maybe"}`, 400},
		{"POST", "/proposals/" + id + "/vote", "application/json", `{"vote":"yes","extra":1}`, 400},
		{"POST", "/proposals/" + id + "/vote", "application/json", ``, 400},
		{"POST", "/proposals/" + id + "/vote", "text/plain", `{"vote":"yes"}`, 400},
		{"POST", "/proposals/" + id + "/vote", "application/x-www-form-urlencoded", `{"vote":"yes"}`, 200}, // curl -d, as in the seed`s examples
		{"POST", "/proposals/upgrade_nope/vote", "application/json", `{"vote":"yes"}`, 404},
		{"POST", "/upgrades/propose", "application/json", `{"title":"x"}`, 400},
		{"POST", "/upgrades/propose", "application/json", `not json`, 400},
		{"POST", "/upgrades/propose", "application/json", goodProposal + `{}`, 400},
		{"POST", "/upgrades/propose", "application/json", goodProposal + `}`, 400},
		{"POST", "/upgrades/propose", "application/json", goodProposal + `]`, 400},
		{"POST", "/upgrades/propose", "application/json", strings.Replace(goodProposal, `"package_size":12`, `"package_size":-1`, 1), 400},
		{"POST", "/upgrades/propose", "application/json", strings.Replace(goodProposal, "1.2.0", "0.0.1", 1), 400},
		{"POST", "/upgrades/propose", "application/json", big, 413},
		{"POST", "/upgrades/" + id + "/test", "", "", 200},
		{"POST", "/upgrades/upgrade_nope/test", "", "", 404},
		{"GET", "/upgrades/status", "", "", 200},
		{"GET", "/upgrades/history", "", "", 200},
		{"POST", "/upgrades/" + id + "/rollback", "", "", 409},
		{"POST", "/upgrades/upgrade_nope/rollback", "", "", 404},
		{"POST", "/upgrades/resume", "", "", 409},
		{"GET", "/execution-log", "", "", 200},
		{"GET", "/validators", "", "", 200},
		{"GET", "/state", "", "", 200},
		{"POST", "/packages", "application/octet-stream", "\x00asm", 201},
		{"POST", "/packages", "application/octet-stream", strings.Repeat("x", 65<<10), 413},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+fmt.Sprint(tc.want), func(t *testing.T) {
			code, body := do(t, ts, tc.method, tc.path, "", tc.ctype, []byte(tc.body))
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			check(t, doc, tc.method, tc.path, code, body)
		})
	}
	// An unknown endpoint is a JSON 404 too.
	if code, body := do(t, ts, "GET", "/nope", "", "", nil); code != 404 || !strings.Contains(string(body), "error") {
		t.Fatalf("unknown endpoint: %d %s", code, body)
	}
}

func TestMutatingEndpointsNeedToken(t *testing.T) {
	doc := loadOpenAPI(t)
	ts, _ := newTestServer(t, "s3cret")
	for _, r := range httpapi.Routes() {
		path := pathParam.ReplaceAllString(r.Path, "upgrade_x")
		for _, tok := range []string{"", "wrong"} {
			code, body := do(t, ts, r.Method, path, tok, "application/json", []byte(`{}`))
			if r.Mutating && code != 401 {
				t.Errorf("%s %s with token %q: %d, want 401", r.Method, r.Path, tok, code)
			}
			if !r.Mutating && code == 401 {
				t.Errorf("%s %s: read-only endpoint asked for a token", r.Method, r.Path)
			}
			if r.Mutating {
				check(t, doc, r.Method, path, code, body)
			}
		}
	}
	code, body := do(t, ts, "POST", "/upgrades/propose", "s3cret", "application/json", []byte(goodProposal))
	if code != 201 {
		t.Fatalf("with the right token: %d %s", code, body)
	}
}

func TestCapabilitiesOff(t *testing.T) {
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, p := range []string{"/proposals", "/upgrades/status", "/state", "/validators"} {
		if code, _ := do(t, ts, "GET", p, "", "", nil); code != 503 {
			t.Errorf("%s without backend: %d, want 503", p, code)
		}
	}
}

// A web page must not be able to drive a node through its visitor's
// browser: mutating requests with an Origin header are refused, reads are
// not affected.
func TestBrowserRequestsRefused(t *testing.T) {
	doc := loadOpenAPI(t)
	ts, _ := newTestServer(t, "")
	req, _ := http.NewRequest("POST", ts.URL+"/upgrades/propose", strings.NewReader(goodProposal))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check(t, doc, "POST", "/upgrades/propose", resp.StatusCode, body)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("propose with Origin: %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/proposals", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("read with Origin: %d", resp.StatusCode)
	}
}
