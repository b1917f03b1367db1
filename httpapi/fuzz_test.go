package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// fuzzGov accepts every proposal the API lets through without keeping it,
// so a long fuzz run does not grow memory.
type fuzzGov struct{ *fakeGov }

func (fuzzGov) Propose(ctx context.Context, req httpapi.ProposeRequest) (httpapi.Proposal, error) {
	return httpapi.Proposal{ProposalID: "upgrade_20260101_000000_00000000", Status: "voting"}, nil
}

func fuzzServer(f *testing.F, gov httpapi.Governance) *httpapi.Server {
	cfg := httpapi.DefaultConfig()
	cfg.MaxBodyBytes = 4 << 10
	s, err := httpapi.New(cfg, httpapi.Deps{Node: fakeBackend{}, Governance: gov}, nil)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// serveBody posts body to path through the whole handler chain and checks
// what any body must get: no panic, no 5xx, a JSON error object on 4xx.
func serveBody(t *testing.T, s http.Handler, path string, body []byte, ok int) {
	for _, ct := range []string{"application/json", "application/x-www-form-urlencoded"} {
		req := httptest.NewRequest("POST", "http://127.0.0.1:8000"+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch {
		case rec.Code == ok:
		case rec.Code >= 400 && rec.Code < 500:
			var e struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.RequestID == "" {
				t.Fatalf("%d with a body that is not a JSON error: %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
	}
}

// FuzzProposeBody feeds arbitrary bytes to POST /upgrades/propose: the
// same decode and validation as every request, only 201 or 4xx.
func FuzzProposeBody(f *testing.F) {
	for _, seed := range []string{
		goodProposal,
		`{"title":"x"}`,
		`{}`,
		``,
		`null`,
		`[]`,
		`"str"`,
		`{"package_size":99000000000,"title":"t","version":"1.2.0","package_url":"https://x/p.wasm","package_hash":"ab"}`,
		`{"package_size":-1}`,
		`{"package_size":1e3}`,
		`{"package_size":9223372036854775808}`,
		`{"title":"\u0000","version":"\ud800","package_url":" ","package_hash":"sha256:","package_size":1}`,
		goodProposal + `{}`,
		goodProposal + `}`,
		`{"title":"a","title":"b"}`,
		`{"unknown":1}`,
		`{"title":` + "\xff" + `}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(f, fuzzGov{newFakeGov()})
	f.Fuzz(func(t *testing.T, body []byte) {
		serveBody(t, s, "/upgrades/propose", body, http.StatusCreated)
	})
}

// FuzzVoteBody feeds arbitrary bytes to POST /proposals/{id}/vote on an
// existing proposal: only 200, 409 (the same vote again) or another 4xx.
func FuzzVoteBody(f *testing.F) {
	for _, seed := range []string{
		`{"vote":"yes"}`, `{"vote":"NO"}`, `{"vote":" approval "}`, `{"vote":"maybe"}`,
		`{"vote":1}`, `{"vote":null}`, `{}`, ``, `{"vote":"yes","extra":1}`, `{"vote":"yes"} x`,
		`{"vote":"` + "\xff\xfe" + `"}`,
	} {
		f.Add([]byte(seed))
	}
	gov := newFakeGov()
	p, err := gov.Propose(context.Background(), httpapi.ProposeRequest{Title: "t", Version: "1.2.0", PackageURL: "https://x/p.wasm", PackageHash: "ab", PackageSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	s := fuzzServer(f, gov)
	f.Fuzz(func(t *testing.T, body []byte) {
		serveBody(t, s, "/proposals/"+p.ProposalID+"/vote", body, http.StatusOK)
	})
}
