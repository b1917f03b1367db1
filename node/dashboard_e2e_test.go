package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pageClient sends requests the way the dashboard does: from the node's
// own origin, with the CSRF header and the bearer token.
type pageClient struct {
	t      *testing.T
	base   string
	origin string
	token  string
}

func (c pageClient) do(method, path, ctype string, body []byte) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Origin", c.origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-Synapse-Request", "1")
	req.Header.Set("Content-Type", ctype)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d %.200s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// The node feeds the dashboard: GET /events carries gossip and executor
// events while an upgrade goes through, GET /fetches shows the package's
// download, the views carry what the page draws, and the page's own
// requests pass the CSRF rule while a foreign origin's do not.
func TestDashboardBackends(t *testing.T) {
	cfg := initDir(t)
	cfg.API.Token = "s3cret"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startNode(t, cfg)
	base := "http://" + n.APIAddr()

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /events: %d", resp.StatusCode)
	}
	kinds := make(chan string, 1024)
	go func() {
		defer close(kinds)
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "hello":
				kinds <- "hello"
			case strings.HasPrefix(line, "data: ") && event == "changes":
				var body struct{ Events []struct{ Kind string } }
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &body) == nil {
					for _, e := range body.Events {
						kinds <- e.Kind
					}
				}
			}
		}
	}()
	if k := <-kinds; k != "hello" {
		t.Fatalf("first event %q", k)
	}

	page := pageClient{t, base, base, "s3cret"}
	foreign := pageClient{t, base, "http://evil.example", "s3cret"}
	if code, body := foreign.do("POST", "/packages", "application/octet-stream", []byte("\x00asm\x01\x00\x00\x00")); code != 403 {
		t.Fatalf("upload from a foreign origin: %d %v", code, body)
	}
	code, info := page.do("POST", "/packages", "application/octet-stream", []byte("\x00asm\x01\x00\x00\x00"))
	if code != 201 {
		t.Fatalf("upload from the page: %d %v", code, info)
	}
	prop, _ := json.Marshal(map[string]any{"title": "Tiny", "version": "1.0.1",
		"package_url": info["url"], "package_hash": info["sha256"], "package_size": info["size"]})
	code, p := page.do("POST", "/upgrades/propose", "application/json", prop)
	if code != 201 {
		t.Fatalf("propose from the page: %d %v", code, p)
	}
	id, _ := p["proposal_id"].(string)
	if code, v := page.do("POST", "/proposals/"+id+"/vote", "application/json", []byte(`{"vote":"approval"}`)); code != 200 {
		t.Fatalf("vote from the page: %d %v", code, v)
	}

	want := map[string]bool{"proposal_changed": false, "entry_final": false, "ratify_added": false,
		"report_added": false, "executed": false, "fetch": false}
	missing := func() []string {
		var m []string
		for k, seen := range want {
			if !seen {
				m = append(m, k)
			}
		}
		return m
	}
	timeout := time.After(90 * time.Second)
	for len(missing()) > 0 {
		select {
		case k, ok := <-kinds:
			if !ok {
				t.Fatalf("event stream ended; never saw %v", missing())
			}
			if _, tracked := want[k]; tracked {
				want[k] = true
			}
		case <-timeout:
			t.Fatalf("no %v events within 90 s", missing())
		}
	}

	anon := apiClient{t, base, ""}
	pv := anon.want(200, "GET", "/proposals/"+id, nil)
	if pv["status"] != "failed" || pv["voting_ends_at"] == nil {
		t.Fatalf("proposal view %v", pv)
	}
	votes, _ := pv["votes"].([]any)
	if len(votes) != 1 || votes[0].(map[string]any)["op_id"] == "" {
		t.Fatalf("votes %v", votes)
	}
	rat, _ := pv["ratification"].(map[string]any)
	if signers, _ := rat["signers"].([]any); rat["final"] != true || len(signers) != 1 || signers[0] != n.ID().String() {
		t.Fatalf("ratification %v", rat)
	}
	tally, _ := pv["tally"].(map[string]any)
	if tally["early_approval"] != true || tally["voted_share"] != float64(1) {
		t.Fatalf("tally %v", tally)
	}
	// The report reaches the log once the node has its own report op.
	deadline := time.Now().Add(30 * time.Second)
	for {
		lg := anon.want(200, "GET", "/execution-log", nil)
		entries, _ := lg["entries"].([]any)
		if len(entries) == 1 {
			e := entries[0].(map[string]any)
			reps, _ := e["reporters"].(map[string]any)
			if who, _ := reps[e["post_state_sha256"].(string)].([]any); len(who) == 1 && who[0] == n.ID().String() {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("log without this node's report: %v", lg)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fs := anon.want(200, "GET", "/fetches", nil)
	list, _ := fs["fetches"].([]any)
	found := false
	for _, f := range list {
		m := f.(map[string]any)
		if m["package"] == info["url"] && m["complete"] == true && m["done"] == info["size"] && m["total"] == info["size"] {
			found = true
		}
	}
	if !found {
		t.Fatalf("no complete download of %v in %v", info["url"], fs)
	}
	peers := anon.want(200, "GET", "/peers", nil)
	if peers["count"] != float64(0) {
		t.Fatalf("peers %v", peers)
	}

	// Closing the node ends the stream.
	n.Close(context.Background())
	for range kinds {
	}
}
