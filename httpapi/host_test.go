package httpapi_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// doHost is do with a chosen Host header.
func doHost(t *testing.T, ts *httptest.Server, method, path, host string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// A DNS-rebinding page reaches the node with "Host: evil.example": every
// endpoint refuses it, reads included, and says how to allow a host.
// Loopback names and literals work with any port.
func TestHostAllowList(t *testing.T) {
	doc := loadOpenAPI(t)
	ts, _ := newTestServer(t, "")
	for _, r := range httpapi.Routes() {
		path := pathParam.ReplaceAllString(r.Path, "upgrade_x")
		for _, host := range []string{"evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.evil.example:8000", "0.0.0.0:8000"} {
			code, _, body := doHost(t, ts, r.Method, path, host, []byte(`{}`))
			if code != http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host %q: %d, want 421: %s", r.Method, r.Path, host, code, body)
				continue
			}
			check(t, doc, r.Method, path, code, body)
			if !strings.Contains(string(body), "api.allowed_hosts") || !strings.Contains(string(body), "SYNAPSE_API_ALLOWED_HOSTS") {
				t.Errorf("421 does not say how to allow the host: %s", body)
			}
		}
	}
	for _, host := range []string{"localhost:8000", "127.0.0.1:8000", "127.8.9.10", "[::1]:8000", "LOCALHOST", "localhost.:8000"} {
		if code, _, body := doHost(t, ts, "GET", "/state", host, nil); code != 200 {
			t.Errorf("GET /state with Host %q: %d %s", host, code, body)
		}
	}
	code, _, _ := doHost(t, ts, "POST", "/upgrades/propose", "localhost:8000", []byte(goodProposal))
	if code != 201 {
		t.Errorf("propose with Host localhost:8000: %d", code)
	}
}

// Hosts named in api.allowed_hosts are answered to, with the port the
// entry names (or any).
func TestAllowedHostsConfig(t *testing.T) {
	cfg := httpapi.DefaultConfig()
	cfg.AllowedHosts = []string{"node.example", "proxy.example:8443", "[fd00::5]"}
	s, err := httpapi.New(cfg, httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{
		"node.example":       200,
		"NODE.example:1234":  200,
		"proxy.example:8443": 200,
		"proxy.example:8000": 421,
		"proxy.example":      421,
		"[fd00::5]:8000":     200,
		"other.example":      421,
		"":                   421, // HTTP/1.0 without Host
		"[::1":               421,
	} {
		t.Run(host, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/healthz", nil)
			req.Host = host
			s.ServeHTTP(rec, req)
			if rec.Code != want {
				t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
			}
		})
	}
	bad := httpapi.DefaultConfig()
	bad.AllowedHosts = []string{"https://node.example/"}
	if err := bad.Validate(); !errors.Is(err, httpapi.ErrInvalidConfig) {
		t.Fatalf("allowed host with scheme: err = %v", err)
	}
}
