package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Event kinds sent on GET /events. Events are hints: a client re-reads the
// views they name (GET /proposals, /execution-log, …) instead of applying
// them as deltas, so losing or merging some never leaves it wrong.
const (
	// EventProposalChanged: a proposal arrived or its votes or status changed.
	EventProposalChanged = "proposal_changed"
	// EventEntryFinal: execution-log entry Seq became final.
	EventEntryFinal = "entry_final"
	// EventReportAdded: a node's execution report on entry Seq arrived.
	EventReportAdded = "report_added"
	// EventRatifyAdded: a validator's signature on entry Seq arrived.
	EventRatifyAdded = "ratify_added"
	// EventAttestAdded: a validator announced it is ready to sign entry Seq.
	EventAttestAdded = "attest_added"
	// EventExecuted: this node's executor finished entry Seq (any outcome).
	EventExecuted = "executed"
	// EventExecutor: the executor paused, resumed, rolled back, halted, or
	// started or stopped failing transiently on an entry.
	EventExecutor = "executor"
	// EventValidators: the raft leader, a ban or the membership changed.
	EventValidators = "validators"
	// EventPeers: a peer connected or disconnected.
	EventPeers = "peers"
	// EventFetch: a package download started, progressed or ended.
	EventFetch = "fetch"
	// EventResync: events were dropped; re-read every view.
	EventResync = "resync"
)

// Event is one change notification of the node.
type Event struct {
	Kind       string `json:"kind"`
	ProposalID string `json:"proposal_id,omitempty"`
	Seq        uint64 `json:"seq,omitempty"`
}

// Timing of event streams; tests shorten them.
const (
	// defaultEventWindow is how long a stream collects events before it
	// sends them as one message: a burst of gossip becomes one update.
	defaultEventWindow = 250 * time.Millisecond
	// defaultKeepAlive is the interval of comment lines that keep proxies
	// and the browser from timing the stream out.
	defaultKeepAlive = 15 * time.Second
	// eventWriteTimeout drops a client that does not read for this long.
	eventWriteTimeout = 10 * time.Second
	// maxEventBatch bounds the distinct events of one message; beyond it
	// the message is a single resync.
	maxEventBatch = 64
	// eventRetryMS is the reconnect delay the stream asks browsers for.
	eventRetryMS = 2000
)

// clientLimit counts open event streams against Config.MaxEventClients.
type clientLimit struct {
	mu   sync.Mutex
	open int
	max  int
}

func (l *clientLimit) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return false
	}
	l.open++
	return true
}

func (l *clientLimit) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
}

// count is the number of open streams.
func (l *clientLimit) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// EventClients is how many GET /events streams are open.
func (s *Server) EventClients() int { return s.streams.count() }

// handleEvents streams the node's change notifications as Server-Sent
// Events: "hello" once, then "changes" messages, each holding the distinct
// events of one collection window ({"events": [...]}), and keep-alive
// comments. The stream ends when the client goes away, stops reading, or
// the server closes.
func (s *Server) handleEvents() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Events == nil {
			writeError(w, r, http.StatusServiceUnavailable, "events are not available on this node")
			return
		}
		if !s.streams.acquire() {
			w.Header().Set("Retry-After", "10")
			writeError(w, r, http.StatusServiceUnavailable, fmt.Sprintf(
				"too many event streams are open (api.max_event_clients = %d); try again later", s.cfg.MaxEventClients))
			return
		}
		defer s.streams.release()
		events, cancel := s.deps.Events()
		defer cancel()

		rc := http.NewResponseController(w)
		// A stream outlives the server's WriteTimeout: every write gets its
		// own deadline instead (net/http already lifts the read deadline
		// once the request is read).
		h := w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer
		w.WriteHeader(http.StatusOK)
		send := func(b []byte) error {
			_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			if _, err := w.Write(b); err != nil {
				return err
			}
			return rc.Flush()
		}
		hello, _ := json.Marshal(map[string]any{"peer_id": s.deps.Node.ID().String(), "window_ms": s.eventWindow.Milliseconds()})
		if err := send([]byte("retry: " + strconv.Itoa(eventRetryMS) + "\nevent: hello\ndata: " + string(hello) + "\n\n")); err != nil {
			return
		}

		keepAlive := time.NewTicker(s.keepAlive)
		defer keepAlive.Stop()
		flush := time.NewTimer(time.Hour)
		flush.Stop()
		var (
			batch  []Event
			seen   = map[Event]bool{}
			resync bool
			id     uint64
		)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-s.quit:
				return
			case e, ok := <-events:
				if !ok { // the node stopped its notifications
					return
				}
				if len(batch) == 0 && !resync {
					flush.Reset(s.eventWindow)
				}
				switch {
				case e.Kind == EventResync || len(batch) >= maxEventBatch:
					resync, batch, seen = true, nil, map[Event]bool{}
				case resync || seen[e]:
				default:
					seen[e] = true
					batch = append(batch, e)
				}
			case <-flush.C:
				if resync {
					batch = []Event{{Kind: EventResync}}
				}
				id++
				data, _ := json.Marshal(map[string]any{"events": batch})
				if err := send([]byte("id: " + strconv.FormatUint(id, 10) + "\nevent: changes\ndata: " + string(data) + "\n\n")); err != nil {
					s.log.Debug("event stream ended", "request_id", requestID(r.Context()), "err", err)
					return
				}
				batch, seen, resync = nil, map[Event]bool{}, false
			case <-keepAlive.C:
				if err := send([]byte(": keep-alive\n\n")); err != nil {
					s.log.Debug("event stream ended", "request_id", requestID(r.Context()), "err", err)
					return
				}
			}
		}
	}
}

// handleFetches lists the package downloads this node runs or recently
// finished.
func (s *Server) handleFetches() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Fetches == nil {
			writeError(w, r, http.StatusServiceUnavailable, "fetch progress is not available on this node")
			return
		}
		fs, err := s.deps.Fetches(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if fs == nil {
			fs = []Fetch{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"fetches": fs})
	}
}
