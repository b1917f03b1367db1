package simnet_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
	"github.com/synapse-p2p/synapse-p2p/node"
	"github.com/synapse-p2p/synapse-p2p/simnet"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// dashboardToken is node 0's API token in the browser test.
const dashboardToken = "s3cret-dashboard-token"

// browserTZ is the browser's time zone: away from UTC (and without
// daylight saving time), so the test sees the page turn a local date-time
// into the UTC time it sends.
const browserTZ = "Asia/Kolkata"

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
	var out testutil.SyncBuffer
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
		chromedp.Env("TZ="+browserTZ),
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

// consoleRecorder keeps the page's console errors and uncaught exceptions.
// The browser's own log lines for answers with an error status are
// counted apart, by status: the test provokes some (a wrong token, a
// proposal the API refuses) and checks their number.
type consoleRecorder struct {
	mu     sync.Mutex
	errs   []string
	failed map[string]int // "401" -> log lines of 401 answers
}

var failedStatus = regexp.MustCompile(`status of (\d{3})`)

func recordConsole(t *testing.T, ctx context.Context) *consoleRecorder {
	rec := &consoleRecorder{failed: map[string]int{}}
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
			if st := failedStatus.FindStringSubmatch(m.Text); m.Source == "network" && st != nil {
				rec.failed[st[1]]++
			} else {
				rec.errs = append(rec.errs, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
			}
			rec.mu.Unlock()
		}
	}()
	return rec
}

func (r *consoleRecorder) errors() (errs []string, failed map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	failed = map[string]int{}
	for k, v := range r.failed {
		failed[k] = v
	}
	return append([]string(nil), r.errs...), failed
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
// all five nodes' reports under one post-state hash. Then the life of an
// upgrade through the same page (lifeOfAnUpgrade): a scheduled upgrade
// with its countdown and activation, and a network rollback of it. The
// page logs no console error, every control has a label, and the layout
// fits a phone.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: a simnet and a real browser")
	}
	chrome := chromiumPath(t)
	pkg := example(t, "add-feature-flag")
	later := example(t, "command-feature-flag") // 1.3.0, scheduled in lifeOfAnUpgrade

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

	lifeOfAnUpgrade(t, ctx, net, later, id)

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
	// first try and the page's one retry after asking again) and the
	// rollback the API refused in lifeOfAnUpgrade.
	errs, failed := console.errors()
	if len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	if len(failed) != 2 || failed["401"] != 2 || failed["400"] != 1 {
		t.Fatalf("failed requests by status %v, want the 2 with the wrong token (401) and the refused rollback (400)", failed)
	}
}

// lifeOfAnUpgrade drives the life cycle through node 0's page. Its token
// is given and the first upgrade (proposal first) ran as entry 1. In the
// form, "at a date and time" shows the UTC time a local one is sent as,
// and a time in the past is refused before any request. The page then
// schedules pkg (version 1.3.0) to activate 5 s after its entry is final,
// with the keyboard; every node votes through its API; the page shows the
// countdown — on the card and under "This node" — and the readiness
// reports of entry 2, then the activation (entry 3) executed by all five
// nodes under the state hash the readiness reports predicted. "Cancel…" on
// the scheduled card fills the form with a cancel of it. "Roll back
// network…" on the executed card fills in a rollback to 1.4.0; proposed as
// 1.3.0 first, the API's refusal is shown next to the button; as 1.4.0 it
// is voted through the APIs and the page shows the rollback entry (4) with
// all five nodes under one state hash, node 0's.
func lifeOfAnUpgrade(t *testing.T, ctx context.Context, net *simnet.Net, pkg, first string) {
	t.Helper()
	// Every countdown text the page shows is recorded: the schedule is
	// short, so the test does not rely on catching one by polling.
	within(t, ctx, 5*time.Second, "record countdowns", chromedp.Evaluate[bool](`(() => {
		window.__countdowns = [];
		new MutationObserver(() => {
			for (const e of document.querySelectorAll('#scheduled-countdown, article .countdown')) {
				const s = (e.id ? 'node ' : 'card ') + e.textContent;
				if (/ in \d+:\d\d$/.test(s) && !window.__countdowns.includes(s)) window.__countdowns.push(s);
			}
		}).observe(document.body, { subtree: true, childList: true, characterData: true });
		return true;
	})()`))

	// Schedule through the form; the activation is picked with the
	// keyboard. "At a date and time" takes the browser's local time
	// (browserTZ, UTC+5:30) and shows the UTC time it sends; a time in the
	// past is refused by the page before any request.
	within(t, ctx, 20*time.Second, "fill the form for a scheduled upgrade", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("p-title"), "Command ABI, 5 s after final"),
		chromedp.SendKeys(chromedp.ID("p-version"), "1.3.0"),
		chromedp.SetUploadFiles(chromedp.ID("p-file"), []string{pkg}),
		chromedp.Focus(chromedp.ID("p-when")),
		chromedp.KeyEvent(kb.ArrowDown),
	))
	pageWaitFor(t, ctx, 5*time.Second, "the date-time field is shown",
		`document.querySelector('#p-when').value === 'at' && !document.querySelector('#p-at-group').hidden`)
	utc := within(t, ctx, 5*time.Second, "enter a local time", chromedp.Evaluate[string](`(() => {
		const e = document.querySelector('#p-activate-at');
		e.value = '2030-01-02T03:04:05';
		e.dispatchEvent(new Event('input', { bubbles: true }));
		return document.querySelector('#p-at-utc').textContent;
	})()`))
	if !strings.Contains(utc, "activate_at 2030-01-01T21:34:05Z") {
		t.Fatalf("local 2030-01-02 03:04:05 in %s shown as %q, want 2030-01-01T21:34:05Z", browserTZ, utc)
	}
	within(t, ctx, 10*time.Second, "a time in the past", chromedp.Steps(
		chromedp.SetValue(chromedp.ID("p-activate-at"), "2020-01-02T03:04:05"),
		chromedp.Focus(chromedp.ID("p-submit")), chromedp.KeyEvent("\r"),
	))
	pageWaitFor(t, ctx, 5*time.Second, "the page refuses a time in the past",
		`document.querySelector('#propose-result').classList.contains('error') && document.querySelector('#propose-result').textContent.includes('an activation time in the future')`)
	within(t, ctx, 10*time.Second, "pick a delay instead", chromedp.Steps(
		chromedp.Focus(chromedp.ID("p-when")), chromedp.KeyEvent(kb.ArrowDown)))
	pageWaitFor(t, ctx, 5*time.Second, "the delay field is shown",
		`document.querySelector('#p-when').value === 'after' && !document.querySelector('#p-after-group').hidden && document.querySelector('#p-at-group').hidden`)
	within(t, ctx, 20*time.Second, "enter the delay and propose", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("p-after"), "5"),
		chromedp.Focus(chromedp.ID("p-submit")), chromedp.KeyEvent("\r"),
	))
	sched := proposedFromPage(t, ctx, first)
	gov0, _, _ := net.Nodes[0].APIBackends()
	if p, err := gov0.Proposal(context.Background(), sched); err != nil || p.ActivateAfterSeconds != 5 || p.Version != "1.3.0" {
		t.Fatalf("the page proposed %+v (%v), want activate_after_seconds 5, version 1.3.0", p, err)
	}
	voteEverywhere(t, net, sched)

	card := `document.querySelector('article[data-id="` + sched + `"]')`
	// While it waits: the card and the node show the countdown, and
	// "Cancel…" fills in a cancel of it (one script run, so the upgrade
	// cannot activate between seeing the button and pressing it).
	pageWaitFor(t, ctx, 90*time.Second, "the upgrade is scheduled, counting down, and Cancel… fills the form", `(() => {
		const c = `+card+`;
		const cd = document.querySelector('#scheduled-countdown');
		if (!c || c.dataset.status !== 'scheduled' || !cd || !/^in \d/.test(cd.textContent)) return false;
		if (!c.querySelector('li[data-step="scheduled"].waiting .countdown')) return false;
		const b = c.querySelector('button.cancel-upgrade');
		if (!b) return false;
		b.click();
		window.__cancelForm = {
			kind: document.querySelector('#p-type').value, target: document.querySelector('#p-target').value,
			title: document.querySelector('#p-title').value, focus: document.activeElement.id,
			targetShown: String(!document.querySelector('#p-target-group').hidden),
			packageShown: String(!document.querySelector('#p-package-group').hidden),
		};
		return true;
	})()`)
	cancelForm := within(t, ctx, 5*time.Second, "read the cancel form", chromedp.Evaluate[map[string]string](`window.__cancelForm`))
	if cancelForm["kind"] != "cancel" || cancelForm["target"] != sched || !strings.HasPrefix(cancelForm["title"], "Cancel: ") ||
		cancelForm["focus"] != "p-title" || cancelForm["targetShown"] != "true" || cancelForm["packageShown"] != "false" {
		t.Fatalf("Cancel… filled the form as %v", cancelForm)
	}

	// The activation runs everywhere; the readiness reports of entry 2
	// named the state it produced.
	pageWaitFor(t, ctx, 90*time.Second, "activated and executed by all five nodes", `(() => {
		const c = `+card+`;
		if (!c || c.dataset.status !== 'executed') return false;
		const act = document.querySelector('#log tr[data-seq="3"][data-action="activate"]');
		const sch = document.querySelector('#log tr[data-seq="2"][data-action="schedule"]');
		if (!act || !sch) return false;
		const g = act.querySelectorAll('ul.reports > li');
		const r = sch.querySelector('.readiness');
		return g.length === 1 && g[0].dataset.count === '5' && !!r && r.dataset.ready === '5' && r.dataset.total === '5' &&
			document.querySelector('#current-version').textContent === '1.3.0';
	})()`)
	act := within(t, ctx, 5*time.Second, "read the activation", chromedp.Evaluate[map[string]string](`({
		hash: document.querySelector('#log tr[data-seq="3"] ul.reports > li').dataset.hash,
		readiness: document.querySelector('#log tr[data-seq="2"] .readiness ul.readiness > li').dataset.hash,
		summary: document.querySelector('#log tr[data-seq="2"] .readiness-summary').textContent,
		entry: document.querySelector('#log tr[data-seq="3"] td:nth-child(2)').textContent,
		scheduled: document.querySelector('#scheduled-upgrade').textContent,
		countdowns: window.__countdowns.join(' | '),
	})`))
	waitExecuted(t, net, 3)
	for i := range net.Nodes {
		h := historyOf(net, i, 3)
		if len(h) != 1 || h[0].Event != upgrade.EventUpgrade || !h[0].Success || h[0].PostStateSHA256 != act["hash"] {
			t.Fatalf("node %d entry 3: %+v, the page shows %s", i, h, act["hash"])
		}
	}
	switch {
	case act["readiness"] != act["hash"]:
		t.Fatalf("readiness reports under %s, the activation gave %s", act["readiness"], act["hash"])
	case !strings.HasPrefix(act["summary"], "5 of 5 reporting nodes ready"):
		t.Fatalf("readiness summary %q", act["summary"])
	case !strings.Contains(act["entry"], "activation of #2"):
		t.Fatalf("entry 3 shown as %q", act["entry"])
	case act["scheduled"] != "none":
		t.Fatalf("still scheduled on the page: %q", act["scheduled"])
	case !strings.Contains(act["countdowns"], "node in 0:0") || !strings.Contains(act["countdowns"], "card in 0:0"):
		t.Fatalf("countdowns seen: %q", act["countdowns"])
	}

	// A network rollback, filled in by "Roll back network…" (keyboard).
	within(t, ctx, 10*time.Second, "Roll back network…", chromedp.Steps(
		chromedp.Focus(chromedp.CSS(`article[data-id="`+sched+`"] button.rollback-network`)),
		chromedp.KeyEvent("\r"),
	))
	form := within(t, ctx, 5*time.Second, "read the rollback form", chromedp.Evaluate[map[string]string](`({
		kind: document.querySelector('#p-type').value, target: document.querySelector('#p-target').value,
		version: document.querySelector('#p-version').value, focus: document.activeElement.id,
		packageShown: String(!document.querySelector('#p-package-group').hidden),
	})`))
	if form["kind"] != "rollback" || form["target"] != sched || form["version"] != "1.4.0" || form["focus"] != "p-title" || form["packageShown"] != "false" {
		t.Fatalf("Roll back network… filled the form as %v", form)
	}
	// A version that does not raise the current one: the API refuses it
	// and the page shows its words next to the button.
	within(t, ctx, 10*time.Second, "propose the rollback as 1.3.0", chromedp.Steps(
		retype("p-version", "1.3.0"),
		chromedp.Focus(chromedp.ID("p-submit")), chromedp.KeyEvent("\r")))
	pageWaitFor(t, ctx, 20*time.Second, "the API's refusal is shown",
		`document.querySelector('#propose-result').classList.contains('error') && document.querySelector('#propose-result').textContent.includes('versions never go down')`)
	within(t, ctx, 10*time.Second, "propose the rollback as 1.4.0", chromedp.Steps(
		retype("p-version", "1.4.0"),
		chromedp.Focus(chromedp.ID("p-submit")), chromedp.KeyEvent("\r")))
	rb := proposedFromPage(t, ctx, sched)
	voteEverywhere(t, net, rb)
	pageWaitFor(t, ctx, 90*time.Second, "the rollback executed by all five nodes under one hash", `(() => {
		const c = document.querySelector('article[data-id="`+rb+`"]');
		const row = document.querySelector('#log tr[data-seq="4"][data-action="rollback"]');
		if (!c || c.dataset.status !== 'executed' || !row) return false;
		const g = row.querySelectorAll('ul.reports > li');
		return g.length === 1 && g[0].dataset.count === '5' && !g[0].classList.contains('divergent') &&
			document.querySelector('#current-version').textContent === '1.4.0';
	})()`)
	shown := within(t, ctx, 5*time.Second, "read the rollback", chromedp.Evaluate[map[string]string](`({
		hash: document.querySelector('#log tr[data-seq="4"] ul.reports > li').dataset.hash,
		entry: document.querySelector('#log tr[data-seq="4"] td:nth-child(2)').textContent,
		kind: document.querySelector('article[data-id="`+rb+`"] .badge.kind').textContent,
		undone: `+card+`.querySelector('.life-note').textContent,
	})`))
	waitExecuted(t, net, 4)
	for i := range net.Nodes {
		h := historyOf(net, i, 4)
		st := net.Nodes[i].Upgrades().Status()
		if len(h) != 1 || h[0].Event != upgrade.EventNetworkRollback || !h[0].Success || st.StateSHA256 != shown["hash"] || st.CurrentVersion != "1.4.0" {
			t.Fatalf("node %d entry 4: %+v, state %s %s; the page shows %s", i, h, st.CurrentVersion, st.StateSHA256, shown["hash"])
		}
	}
	switch {
	case !strings.Contains(shown["entry"], "rollback of #3 → v1.4.0"):
		t.Fatalf("entry 4 shown as %q", shown["entry"])
	case shown["kind"] != "rollback":
		t.Fatalf("the rollback's card is badged %q", shown["kind"])
	case !strings.HasPrefix(shown["undone"], "Rolled back by the network"):
		t.Fatalf("the rolled-back upgrade's card says %q", shown["undone"])
	}
}

// retype selects the text of input #id and types text over it.
func retype(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(document.getElementById('`+id+`').select(), true)`)(ctx, t)
			return err
		}),
		chromedp.KeyEvent(text))
}

// proposedFromPage waits for the propose form's answer and returns the
// new proposal's ID (previous is the one the form made before).
func proposedFromPage(t *testing.T, ctx context.Context, previous string) string {
	t.Helper()
	pageWaitFor(t, ctx, 30*time.Second, "the form's answer", `(() => {
		const out = document.querySelector('#propose-result');
		return (!!out.dataset.proposal && out.dataset.proposal !== '`+previous+`') || out.classList.contains('error');
	})()`)
	r := within(t, ctx, 5*time.Second, "read the result", chromedp.Evaluate[map[string]string](
		`({text: document.querySelector('#propose-result').textContent, id: document.querySelector('#propose-result').dataset.proposal || ''})`))
	if !strings.HasPrefix(r["id"], "upgrade_") {
		t.Fatalf("propose through the form: %q", r["text"])
	}
	return r["id"]
}

// voteEverywhere votes approval on every node through its API: node 0
// (which has a token) in process, the others over HTTP.
func voteEverywhere(t *testing.T, net *simnet.Net, id string) {
	t.Helper()
	gov0, _, _ := net.Nodes[0].APIBackends()
	if _, err := gov0.Vote(context.Background(), id, "approval"); err != nil {
		t.Fatalf("node 0 votes on %s: %v", id, err)
	}
	for i := 1; i < len(net.Nodes); i++ {
		voteOverHTTP(t, net.Nodes[i].APIAddr(), id)
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
