package simnet_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
)

// dashboardToken is node 0's API token in the browser test.
const dashboardToken = "s3cret-dashboard-token"

// Environment of the browser test.
const (
	// envChromium names the browser binary (default: chromium,
	// chromium-browser, google-chrome or headless-shell on PATH).
	envChromium = "SYNAPSE_CHROMIUM"
	// envBrowserTest=require turns "no browser found" into a failure (CI
	// installs Chromium and sets it).
	envBrowserTest = "SYNAPSE_BROWSER_TEST"
	// envScreenshot is where to write the final page as PNG (the README's
	// docs/dashboard.png); a phone-sized one goes beside it with -phone.
	envScreenshot = "SYNAPSE_DASHBOARD_SCREENSHOT"
)

// chromiumPath finds a Chromium to drive, or skips the test saying how to
// get one (fails instead when SYNAPSE_BROWSER_TEST=require).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found on PATH (chromium, chromium-browser, google-chrome, headless-shell) and " + envChromium +
		" is not set: install one (Debian: apt-get install chromium; .ci/run does) to run the dashboard's browser test"
	if os.Getenv(envBrowserTest) == "require" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// context for one tab. The browser stops when the test ends.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "synapse-chromium-*")
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium dials out (updates, sync, field trials),
		// which this machine refuses and tests must not do.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1366, 900),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
		// Chromium's helpers may still write in the profile for a moment.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// consoleRecorder keeps the page's console errors and uncaught exceptions.
// The browser's own log entries for 401 answers are counted apart: the
// test provokes them with a wrong token.
type consoleRecorder struct {
	mu           sync.Mutex
	errs         []string
	unauthorized int
}

func recordConsole(t *testing.T, ctx context.Context) *consoleRecorder {
	rec := &consoleRecorder{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			rec.mu.Lock()
			if m.Source == "network" && strings.Contains(m.Text, "status of 401") {
				rec.unauthorized++
			} else {
				rec.errs = append(rec.errs, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
			}
			rec.mu.Unlock()
		}
	}()
	return rec
}

func (r *consoleRecorder) errors() (errs []string, unauthorized int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...), r.unauthorized
}

// within runs one browser action with its own timeout.
func within[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
	}
	return v
}

// pageWaitFor polls a JavaScript predicate in the page.
func pageWaitFor(t *testing.T, ctx context.Context, d time.Duration, what, js string) {
	t.Helper()
	within(t, ctx, d+5*time.Second, "wait until "+what, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(d)))
}

// The dashboard of node 0 in a real browser, against a running 5-node
// network (4 validators): an operator proposes the example package through
// the form (keyboard only), votes on it from the page, the other nodes vote
// through their APIs, and the page — never reloaded, updated by its event
// stream — shows the proposal approved and executed, the entry final, and
// all five nodes' reports under one post-state hash. The page logs no
// console error, every control has a label, and the layout fits a phone.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: a simnet and a real browser")
	}
	chrome := chromiumPath(t)
	pkg := example(t, "add-feature-flag")

	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net, err := simnet.Start(sctx, simnet.Config{Nodes: 5, Validators: 4, APIBasePort: 0, VotingPeriod: 300,
		Tune: func(i int, c *node.Config) {
			c.Raft.StallTimeout = 10 * time.Second
			if i == 0 {
				c.API.Token = dashboardToken // the page must ask for it
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		net.Close(ctx)
	})
	if err := net.WaitConnected(sctx); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, chrome)
	console := recordConsole(t, ctx)
	page := "http://" + net.Nodes[0].APIAddr() + "/"
	within(t, ctx, 30*time.Second, "open "+page, chromedp.Navigate(page))
	pageWaitFor(t, ctx, 30*time.Second, "the event stream is live", `document.querySelector('#live').dataset.state === 'live'`)
	within(t, ctx, 5*time.Second, "mark the page", chromedp.Evaluate[bool](`window.__sameLoad = true`))
	pageWaitFor(t, ctx, 20*time.Second, "the node facts and validators are shown",
		`!!document.querySelector('#current-version') && document.querySelectorAll('#validators tr[data-peer]').length === 4`)

	// Every control has a label, and the form is reachable by keyboard.
	unlabelled := within(t, ctx, 5*time.Second, "check labels", chromedp.Evaluate[[]string](`
		[...document.querySelectorAll('input, textarea, select, button')]
			.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
			.map(e => e.outerHTML.slice(0, 80))`))
	if len(unlabelled) > 0 {
		t.Fatalf("controls without a label: %v", unlabelled)
	}
	within(t, ctx, 5*time.Second, "tab from the title field", chromedp.Steps(
		chromedp.Focus(chromedp.ID("p-title")), chromedp.KeyEvent("\t")))
	if id := within(t, ctx, 5*time.Second, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); id != "p-description" {
		t.Fatalf("Tab from the title went to %q, want the description", id)
	}

	// Propose through the form: the page uploads the package to node 0 and
	// proposes it as ipfs://CID. Submitted with the keyboard. Node 0 has a
	// token: the page asks for it; a wrong one gets the API's error text.
	within(t, ctx, 20*time.Second, "fill the form", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("p-title"), "Add feature flag"),
		chromedp.SendKeys(chromedp.ID("p-description"), "Sets new_feature_enabled on every node (the seed's example)."),
		chromedp.SendKeys(chromedp.ID("p-version"), "1.2.0"),
		chromedp.SetUploadFiles(chromedp.ID("p-file"), []string{pkg}),
		chromedp.Focus(chromedp.ID("p-submit")),
		chromedp.KeyEvent("\r"),
	))
	dialogOpen := `document.querySelector('#token-dialog').open && document.activeElement.id === 'token-input'`
	pageWaitFor(t, ctx, 10*time.Second, "the page asks for the token", dialogOpen)
	within(t, ctx, 10*time.Second, "give a wrong token", chromedp.Steps(
		chromedp.KeyEvent("wrong-token"), chromedp.KeyEvent("\r")))
	pageWaitFor(t, ctx, 20*time.Second, "the page asks again after a 401", dialogOpen)
	within(t, ctx, 10*time.Second, "cancel", chromedp.KeyEvent("\x1b")) // Escape closes the dialog
	pageWaitFor(t, ctx, 20*time.Second, "the API's error is shown",
		`document.querySelector('#propose-result').classList.contains('error') && document.querySelector('#propose-result').textContent.includes('missing or wrong bearer token')`)
	within(t, ctx, 10*time.Second, "submit again", chromedp.Steps(
		chromedp.Focus(chromedp.ID("p-submit")), chromedp.KeyEvent("\r")))
	pageWaitFor(t, ctx, 10*time.Second, "the page asks for the token again", dialogOpen)
	within(t, ctx, 10*time.Second, "give the token", chromedp.Steps(
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector('#token-input').select(), true`)(ctx, t)
			return err
		}),
		chromedp.KeyEvent(dashboardToken), chromedp.KeyEvent("\r")))
	pageWaitFor(t, ctx, 30*time.Second, "the proposal is accepted",
		`document.querySelector('#propose-result').classList.contains('ok') || document.querySelector('#propose-result').classList.contains('error')`)
	result := within(t, ctx, 5*time.Second, "read the result", chromedp.Evaluate[map[string]string](
		`({text: document.querySelector('#propose-result').textContent, id: document.querySelector('#propose-result').dataset.proposal || ''})`))
	id := result["id"]
	if !strings.HasPrefix(id, "upgrade_") {
		t.Fatalf("propose through the form: %q", result["text"])
	}
	card := `document.querySelector('article[data-id="` + id + `"]')`
	pageWaitFor(t, ctx, 20*time.Second, "the proposal appears", `!!`+card)

	// Vote from the page (keyboard), then on every other node through its
	// API, as curl would.
	within(t, ctx, 20*time.Second, "vote from the page", chromedp.Steps(
		chromedp.Focus(chromedp.CSS(`article[data-id="`+id+`"] button.vote-approve`)),
		chromedp.KeyEvent("\r"),
	))
	pageWaitFor(t, ctx, 20*time.Second, "the page's vote is accepted",
		`(`+card+`.querySelector('output.result') || {}).textContent.startsWith('Voted approval')`)
	for i := 1; i < len(net.Nodes); i++ {
		voteOverHTTP(t, net.Nodes[i].APIAddr(), id)
	}

	// Without a reload, the page follows the upgrade to the end.
	pageWaitFor(t, ctx, 3*time.Minute, "approved, executed, final, five reports under one hash", `(() => {
		const c = `+card+`;
		if (!c || c.dataset.status !== 'executed' || !c.querySelector('li[data-step="approved"].done')) return false;
		const row = document.querySelector('#log tr[data-seq="1"][data-final="true"]');
		if (!row) return false;
		const groups = row.querySelectorAll('ul.reports > li');
		return groups.length === 1 && groups[0].dataset.count === '5' && !groups[0].classList.contains('divergent');
	})()`)
	facts := within(t, ctx, 5*time.Second, "read the page", chromedp.Evaluate[map[string]string](`({
		same: String(window.__sameLoad === true),
		version: document.querySelector('#current-version').textContent,
		hash: document.querySelector('#log tr[data-seq="1"] ul.reports > li').dataset.hash,
		sigs: `+card+`.querySelector('.sig-count').textContent,
		final: `+card+`.querySelector('.ratification').dataset.final,
		votes: String(`+card+`.querySelectorAll('table.votes tbody tr').length),
	})`))
	_, upg, _ := net.Nodes[0].APIBackends()
	sv, err := upg.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	need := net.Nodes[0].Rules().Governance.FinalityNeeded(4)
	switch {
	case facts["same"] != "true":
		t.Fatalf("the page was reloaded")
	case facts["version"] != "1.2.0":
		t.Fatalf("page shows version %q", facts["version"])
	case facts["hash"] != sv.StateHash:
		t.Fatalf("reports under %q, node 0's state is %q", facts["hash"], sv.StateHash)
	case facts["final"] != "true" || !strings.HasSuffix(facts["sigs"], fmt.Sprintf(" / %d", need)):
		t.Fatalf("ratification shown as %q (final %q), want n / %d", facts["sigs"], facts["final"], need)
	case facts["votes"] != "5":
		t.Fatalf("%s votes shown, want 5", facts["votes"])
	}

	within(t, ctx, 5*time.Second, "scroll to the top", chromedp.Evaluate[bool](
		`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); true`))
	shot := within(t, ctx, 30*time.Second, "screenshot", chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG")
	}
	// On a phone-sized screen the page is one column without sideways
	// scrolling.
	within(t, ctx, 10*time.Second, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	pageWaitFor(t, ctx, 10*time.Second, "the layout fits a phone",
		`document.documentElement.scrollWidth <= window.innerWidth && getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length === 1`)
	within(t, ctx, 5*time.Second, "scroll to the top", chromedp.Evaluate[bool](`window.scrollTo(0, 0); true`))
	phone := within(t, ctx, 30*time.Second, "phone screenshot", chromedp.FullScreenshot(100))
	if out := os.Getenv(envScreenshot); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		phoneOut := strings.TrimSuffix(out, filepath.Ext(out)) + "-phone" + filepath.Ext(out)
		if err := os.WriteFile(phoneOut, phone, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshots written to %s and %s", out, phoneOut)
	}

	// The only failed requests are the two the wrong token provoked (the
	// first try and the page's one retry after asking again).
	errs, unauthorized := console.errors()
	if len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	if unauthorized != 2 {
		t.Fatalf("%d requests answered 401, want the 2 with the wrong token", unauthorized)
	}
}

// voteOverHTTP votes approval on node addr, retrying while the proposal
// has not reached it yet.
func voteOverHTTP(t *testing.T, addr, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/proposals/"+id+"/vote", "application/json", strings.NewReader(`{"vote":"approval"}`))
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("vote on %s: %d %s", addr, resp.StatusCode, body.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
