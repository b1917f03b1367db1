package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func doOrigin(t *testing.T, ts *httptest.Server, method, path, token string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The dashboard's own requests pass the CSRF rule; a foreign page's do
// not, whatever it adds, and the server never grants a CORS preflight.
func TestSameOriginRule(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, token := range []string{"", "s3cret"} {
		ts, _ := newTestServer(t, token)
		own := ts.URL // http://127.0.0.1:port
		cases := []struct {
			name string
			hdr  map[string]string
			want int
		}{
			{"dashboard", map[string]string{"Origin": own, "X-Synapse-Request": "1", "Sec-Fetch-Site": "same-origin"}, 201},
			{"dashboard without Sec-Fetch-Site", map[string]string{"Origin": own, "X-Synapse-Request": "1"}, 201},
			{"own origin without the header", map[string]string{"Origin": own}, 403},
			{"own origin, header not 1", map[string]string{"Origin": own, "X-Synapse-Request": "yes"}, 403},
			{"own origin, cross-site fetch metadata", map[string]string{"Origin": own, "X-Synapse-Request": "1", "Sec-Fetch-Site": "cross-site"}, 403},
			{"own origin, same-site fetch metadata", map[string]string{"Origin": own, "X-Synapse-Request": "1", "Sec-Fetch-Site": "same-site"}, 403},
			{"foreign origin", map[string]string{"Origin": "https://evil.example"}, 403},
			{"foreign origin with the header", map[string]string{"Origin": "https://evil.example", "X-Synapse-Request": "1"}, 403},
			{"other port of this host", map[string]string{"Origin": "http://127.0.0.1:1", "X-Synapse-Request": "1"}, 403},
			{"localhost is another origin", map[string]string{"Origin": strings.Replace(own, "127.0.0.1", "localhost", 1), "X-Synapse-Request": "1"}, 403},
			{"null origin", map[string]string{"Origin": "null", "X-Synapse-Request": "1"}, 403},
			{"origin with a path", map[string]string{"Origin": own + "/x", "X-Synapse-Request": "1"}, 403},
			{"file origin", map[string]string{"Origin": "file://", "X-Synapse-Request": "1"}, 403},
		}
		for _, tc := range cases {
			t.Run(tc.name+" token="+token, func(t *testing.T) {
				code, _, body := doOrigin(t, ts, "POST", "/upgrades/propose", token, tc.hdr, goodProposal)
				if code != tc.want {
					t.Fatalf("status %d, want %d: %s", code, tc.want, body)
				}
				check(t, doc, "POST", "/upgrades/propose", code, []byte(body))
				if code == 403 && !strings.Contains(body, "refused") {
					t.Fatalf("403 without a reason: %s", body)
				}
			})
		}
		if token != "" {
			// Same origin is not a token: the dashboard still needs it.
			code, _, body := doOrigin(t, ts, "POST", "/upgrades/propose", "",
				map[string]string{"Origin": own, "X-Synapse-Request": "1"}, goodProposal)
			if code != 401 {
				t.Fatalf("dashboard request without the token: %d %s", code, body)
			}
		}
		// A preflight for the custom header is never granted.
		code, hdr, _ := doOrigin(t, ts, "OPTIONS", "/upgrades/propose", "", map[string]string{
			"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "x-synapse-request,content-type"}, "")
		for k := range hdr {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("preflight answered with %s (status %d)", k, code)
			}
		}
		if code < 400 {
			t.Errorf("preflight answered %d", code)
		}
	}
}
