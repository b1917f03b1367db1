package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// blockingUpgrades counts dry runs in flight and holds each one until
// release is closed.
type blockingUpgrades struct {
	fakeUpgrades
	release  chan struct{}
	once     sync.Once
	started  chan struct{}
	cur, max atomic.Int32
	total    atomic.Int32
}

// open releases every dry run, now and later.
func (u *blockingUpgrades) open() { u.once.Do(func() { close(u.release) }) }

func (u *blockingUpgrades) Test(ctx context.Context, id string) (httpapi.TestResult, error) {
	n := u.cur.Add(1)
	defer u.cur.Add(-1)
	u.total.Add(1)
	for {
		m := u.max.Load()
		if n <= m || u.max.CompareAndSwap(m, n) {
			break
		}
	}
	u.started <- struct{}{}
	select {
	case <-u.release:
	case <-ctx.Done():
		return httpapi.TestResult{}, ctx.Err()
	}
	return httpapi.TestResult{ProposalID: id, Success: true, Version: "1.2.0"}, nil
}

func newDryRunServer(t *testing.T, running, queue int, wait time.Duration) (*httptest.Server, *blockingUpgrades) {
	t.Helper()
	cfg := httpapi.DefaultConfig()
	cfg.MaxDryRuns, cfg.DryRunQueue, cfg.DryRunQueueTimeout = running, queue, wait
	u := &blockingUpgrades{release: make(chan struct{}), started: make(chan struct{}, 64)}
	s, err := httpapi.New(cfg, httpapi.Deps{Node: fakeBackend{}, Upgrades: u}, slog.New(slog.NewTextHandler(tlog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	t.Cleanup(u.open) // before ts.Close, which waits for the handlers
	return ts, u
}

type result struct {
	code       int
	retryAfter string
	body       []byte
}

// 20 dry runs at once against max_dry_runs 2 and a queue of 8: two run,
// eight wait, ten are told 429 with Retry-After; after the release every
// waiting one runs, and never more than two at once.
func TestDryRunLimiter(t *testing.T) {
	const running, queue, total = 2, 8, 20
	doc := loadOpenAPI(t)
	ts, u := newDryRunServer(t, running, queue, time.Minute)
	results := make(chan result, total)
	var wg sync.WaitGroup
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", ts.URL+"/upgrades/upgrade_x/test", nil)
			resp, err := ts.Client().Do(req)
			if err != nil {
				results <- result{code: -1, body: []byte(err.Error())}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), b}
		}()
	}
	deadline := time.After(30 * time.Second) // a bound on a hang, not a timing assertion
	var got []result
	started := 0
	// Until the release nothing finishes, so exactly `running` start and
	// total-running-queue are refused at once.
	for started < running || len(got) < total-running-queue {
		select {
		case <-u.started:
			started++
		case r := <-results:
			if r.code != http.StatusTooManyRequests {
				t.Fatalf("before release: %d %s", r.code, r.body)
			}
			got = append(got, r)
		case <-deadline:
			t.Fatalf("stuck: %d started, %d answered", started, len(got))
		}
	}
	u.open()
	wg.Wait()
	close(results)
	for r := range results {
		got = append(got, r)
	}
	count := map[int]int{}
	for _, r := range got {
		count[r.code]++
		check(t, doc, "POST", "/upgrades/upgrade_x/test", r.code, r.body)
		if r.code == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 1 {
				t.Errorf("429 with Retry-After %q", r.retryAfter)
			}
		}
	}
	if count[200] != running+queue || count[429] != total-running-queue || len(count) != 2 {
		t.Fatalf("answers by status %v, want %d×200 and %d×429", count, running+queue, total-running-queue)
	}
	if m := u.max.Load(); m > running {
		t.Fatalf("%d dry runs ran at once, limit %d", m, running)
	}
	if n := u.total.Load(); n != running+queue {
		t.Fatalf("backend ran %d dry runs, want %d", n, running+queue)
	}
}

// A dry run that waits longer than dry_run_queue_timeout is answered 429.
func TestDryRunQueueTimeout(t *testing.T) {
	ts, u := newDryRunServer(t, 1, 1, 20*time.Millisecond)
	first := make(chan int, 1)
	go func() {
		resp, err := ts.Client().Post(ts.URL+"/upgrades/upgrade_a/test", "", nil)
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-u.started
	code, body := do(t, ts, "POST", "/upgrades/upgrade_b/test", "", "", nil)
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), "within") {
		t.Fatalf("queued past the timeout: %d %s", code, body)
	}
	u.open()
	if code := <-first; code != 200 {
		t.Fatalf("running dry run: %d", code)
	}
}

// tlog routes a server's log lines to t.Log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
