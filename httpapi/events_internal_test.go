package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/internal/testutil"
)

type stubNode struct{}

func (stubNode) ID() peer.ID {
	id, _ := peer.Decode("12D3KooWQS1x2b5u39Ua7ZXxcHFVSh5kX7Cz4MTG7mQG5ENn8rdC")
	return id
}
func (stubNode) Addrs() []ma.Multiaddr  { return nil }
func (stubNode) Peers() []peer.AddrInfo { return nil }

// fakeEvents is an event source whose subscriptions the test can count
// and feed.
type fakeEvents struct {
	mu   sync.Mutex
	subs map[chan Event]bool
}

func newFakeEvents() *fakeEvents { return &fakeEvents{subs: map[chan Event]bool{}} }

func (f *fakeEvents) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 4096)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		})
	}
}

func (f *fakeEvents) emit(es ...Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		for _, e := range es {
			ch <- e
		}
	}
}

// closeAll ends every subscription from the source's side.
func (f *fakeEvents) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		close(ch)
		delete(f.subs, ch)
	}
}

func (f *fakeEvents) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// sseMsg is one parsed Server-Sent Events message (or comment).
type sseMsg struct {
	event, data, id, comment string
	retry                    string
}

// openStream starts GET /events on a running server and parses messages
// into a channel, which closes when the stream ends.
func openStream(t *testing.T, addr string) (*http.Response, <-chan sseMsg, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out := make(chan sseMsg, 64)
	if resp.StatusCode != 200 {
		close(out)
		return resp, out, cancel
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				out <- m
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "event":
					m.event = v
				case "data":
					m.data += v
				case "id":
					m.id = v
				case "retry":
					m.retry = v
				}
			}
		}
	}()
	t.Cleanup(cancel)
	return resp, out, cancel
}

func next(t *testing.T, ch <-chan sseMsg, skipComments bool) sseMsg {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if skipComments && m.event == "" && m.comment != "" {
				continue
			}
			return m
		case <-deadline:
			t.Fatal("no message within 5 s")
		}
	}
}

func eventsOf(t *testing.T, m sseMsg) []Event {
	t.Helper()
	if m.event != "changes" {
		t.Fatalf("message %+v, want event changes", m)
	}
	var body struct{ Events []Event }
	if err := json.Unmarshal([]byte(m.data), &body); err != nil {
		t.Fatalf("changes data %q: %v", m.data, err)
	}
	return body.Events
}

func startEventServer(t *testing.T, maxClients int, src *fakeEvents, tune ...func(*Server)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.MaxEventClients = maxClients
	deps := Deps{Node: stubNode{}}
	if src != nil {
		deps.Events = src.subscribe
	}
	s, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.eventWindow = 100 * time.Millisecond
	s.keepAlive = time.Hour
	for _, f := range tune {
		f(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// A burst of events reaches the client as one message holding each
// distinct event once, in arrival order, after a hello.
func TestEventsCoalesceBursts(t *testing.T) {
	src := newFakeEvents()
	s := startEventServer(t, 4, src)
	resp, msgs, _ := openStream(t, s.Addr())
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	hello := next(t, msgs, true)
	if hello.event != "hello" || hello.retry != "2000" || !strings.Contains(hello.data, stubNode{}.ID().String()) {
		t.Fatalf("first message %+v", hello)
	}
	testutil.WaitFor(t, 5*time.Second, "the stream subscribed", func() bool { return src.count() == 1 })
	a := Event{Kind: EventProposalChanged, ProposalID: "upgrade_a"}
	b := Event{Kind: EventEntryFinal, Seq: 1}
	c := Event{Kind: EventReportAdded, Seq: 1}
	var burst []Event
	for i := 0; i < 200; i++ {
		burst = append(burst, a, b)
	}
	src.emit(append(burst, c, a)...)
	m := next(t, msgs, true)
	got := eventsOf(t, m)
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("coalesced events %+v, want [a b c]", got)
	}
	if m.id != "1" {
		t.Fatalf("first changes message id %q", m.id)
	}
	// The next window starts empty: the same event is sent again.
	src.emit(a)
	if got := eventsOf(t, next(t, msgs, true)); len(got) != 1 || got[0] != a {
		t.Fatalf("second window %+v", got)
	}
}

// More distinct events than one message holds, or a resync from the
// source, become a single resync.
func TestEventsOverflowIsResync(t *testing.T) {
	src := newFakeEvents()
	s := startEventServer(t, 4, src)
	_, msgs, _ := openStream(t, s.Addr())
	next(t, msgs, true) // hello
	testutil.WaitFor(t, 5*time.Second, "the stream subscribed", func() bool { return src.count() == 1 })
	var many []Event
	for i := 0; i < maxEventBatch+10; i++ {
		many = append(many, Event{Kind: EventRatifyAdded, Seq: uint64(i + 1)})
	}
	src.emit(many...)
	if got := eventsOf(t, next(t, msgs, true)); len(got) != 1 || got[0].Kind != EventResync {
		t.Fatalf("after %d distinct events: %+v, want one resync", len(many), got)
	}
	src.emit(Event{Kind: EventPeers}, Event{Kind: EventResync}, Event{Kind: EventFetch})
	if got := eventsOf(t, next(t, msgs, true)); len(got) != 1 || got[0].Kind != EventResync {
		t.Fatalf("with a resync from the source: %+v, want one resync", got)
	}
}

// An idle stream carries keep-alive comments.
func TestEventsKeepAlive(t *testing.T) {
	src := newFakeEvents()
	s := startEventServer(t, 4, src, func(s *Server) { s.keepAlive = 50 * time.Millisecond })
	_, msgs, _ := openStream(t, s.Addr())
	next(t, msgs, true) // hello
	for i := 0; i < 2; i++ {
		if m := next(t, msgs, false); m.comment != "keep-alive" || m.event != "" {
			t.Fatalf("idle stream sent %+v, want a keep-alive comment", m)
		}
	}
}

// At most MaxEventClients streams are open; a disconnected client frees
// its slot and its subscription.
func TestEventsClientBound(t *testing.T) {
	src := newFakeEvents()
	s := startEventServer(t, 2, src)
	_, m1, cancel1 := openStream(t, s.Addr())
	_, m2, _ := openStream(t, s.Addr())
	next(t, m1, true)
	next(t, m2, true)
	resp, _, _ := openStream(t, s.Addr())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var body errorBody
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if !strings.Contains(body.Error, "max_event_clients") {
		t.Fatalf("503 body %+v", body)
	}
	cancel1()
	testutil.WaitFor(t, 5*time.Second, "the closed stream is cleaned up", func() bool { return s.EventClients() == 1 && src.count() == 1 })
	_, m3, _ := openStream(t, s.Addr())
	if m := next(t, m3, true); m.event != "hello" {
		t.Fatalf("stream after a slot freed: %+v", m)
	}
}

// Streams end when the server closes (a graceful shutdown does not wait
// for them) and when the source ends the subscription.
func TestEventsEnd(t *testing.T) {
	src := newFakeEvents()
	s := startEventServer(t, 4, src)
	_, msgs, _ := openStream(t, s.Addr())
	next(t, msgs, true)
	testutil.WaitFor(t, 5*time.Second, "the stream subscribed", func() bool { return src.count() == 1 })
	src.closeAll()
	testutil.WaitFor(t, 5*time.Second, "the stream ended with its source", func() bool { return s.EventClients() == 0 })

	_, msgs, _ = openStream(t, s.Addr())
	next(t, msgs, true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close with an open stream: %v (after %s)", err, time.Since(start))
	}
	for range msgs { // drains until the stream ends
	}
	if src.count() != 0 {
		t.Fatalf("%d subscriptions left after close", src.count())
	}
}

// A stream outlives the server's read and write timeouts and still
// delivers events afterwards.
func TestEventsOutliveServerTimeouts(t *testing.T) {
	src := newFakeEvents()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, Deps{Node: stubNode{}, Events: src.subscribe}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.eventWindow = 20 * time.Millisecond
	s.srv.ReadTimeout = 200 * time.Millisecond
	s.srv.WriteTimeout = 200 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, msgs, _ := openStream(t, s.Addr())
	next(t, msgs, true)
	time.Sleep(600 * time.Millisecond) // three read and write timeouts
	src.emit(Event{Kind: EventPeers})
	if got := eventsOf(t, next(t, msgs, true)); len(got) != 1 || got[0].Kind != EventPeers {
		t.Fatalf("after the read timeout: %+v", got)
	}
}

func TestEventsUnavailable(t *testing.T) {
	s := startEventServer(t, 4, nil)
	resp, _, _ := openStream(t, s.Addr())
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("without an event source: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
