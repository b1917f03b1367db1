package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

// failingGov fails in ways the API does not know (an internal error) or
// panics.
type failingGov struct {
	*fakeGov
}

func (failingGov) Proposals(ctx context.Context) ([]httpapi.Proposal, error) {
	return nil, errors.New("open /var/lib/synapse/secret.db: permission denied")
}

func (failingGov) ExecutionLog(ctx context.Context) ([]httpapi.LogEntry, error) {
	panic("index out of range in /home/dev/internal.go")
}

// A 500 tells the client "internal error" and a request ID, nothing more;
// the log has the details under that ID. A panic is a 500 the same way.
// Known error classes keep their messages.
func TestInternalErrorsAreGeneric(t *testing.T) {
	doc := loadOpenAPI(t)
	var logs testutil.SyncBuffer
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: fakeBackend{}, Governance: failingGov{newFakeGov()}},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, secret string }{
		{"/proposals", "secret.db"},
		{"/execution-log", "internal.go"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8000"+tc.path, nil))
			check(t, doc, "GET", tc.path, rec.Code, rec.Body.Bytes())
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			id, _ := body["request_id"].(string)
			if rec.Code != 500 || body["error"] != "internal error" || id == "" || len(body) != 2 {
				t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), tc.secret) {
				t.Fatalf("%s: internal detail leaked: %s", tc.path, rec.Body)
			}
			if h := rec.Header().Get(httpapi.RequestIDHeader); h != id {
				t.Fatalf("%s: header request ID %q, body %q", tc.path, h, id)
			}
			var logged bool
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, tc.secret) && strings.Contains(line, `"level":"ERROR"`) {
					logged = true
				}
			}
			if !logged {
				t.Fatalf("%s: no ERROR log line with request ID %s and the detail: %s", tc.path, id, logs.String())
			}
		})
	}
	// A known class keeps its message (and has a request ID too).
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8000/proposals/upgrade_nope", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "proposal upgrade_nope") || !strings.Contains(rec.Body.String(), "request_id") {
		t.Fatalf("404: %d %s", rec.Code, rec.Body)
	}
	// Every response carries a fresh request ID.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	s.ServeHTTP(a, httptest.NewRequest("GET", "http://127.0.0.1:8000/healthz", nil))
	s.ServeHTTP(b, httptest.NewRequest("GET", "http://127.0.0.1:8000/healthz", nil))
	if ia, ib := a.Header().Get(httpapi.RequestIDHeader), b.Header().Get(httpapi.RequestIDHeader); ia == "" || ia == ib {
		t.Fatalf("request IDs %q and %q", ia, ib)
	}
}
