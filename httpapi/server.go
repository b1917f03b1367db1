// Package httpapi serves a node's REST API: JSON in, JSON out, errors as
// {"error": "...", "request_id": "..."} with a fitting status. It is a
// secondary interface; the node works without it. The same server serves
// the governance dashboard at / (dashboard.go, embedded assets) and its
// live updates as Server-Sent Events at /events (events.go).
//
// Every request passes the same gate (ServeHTTP): a request ID, a Host
// allow-list against DNS rebinding (hostPolicy), and panic recovery. Mutating
// requests also pass mutating (CSRF and bearer token); dry runs pass a
// concurrency limiter. Backend errors meet status codes in one place,
// statusOf, and unknown errors leave the server only as a generic 500.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/internal/lifecycle"
)

// Server is the REST API server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	mux  *http.ServeMux
	srv  *http.Server

	hosts   *hostPolicy
	dryRuns *limiter
	uploads *uploads
	streams *clientLimit
	page    *dashboard

	// eventWindow and keepAlive time the event streams (tests shorten them).
	eventWindow, keepAlive time.Duration
	// quit closes when the server closes, ending the event streams, which
	// would otherwise keep a graceful shutdown waiting.
	quit chan struct{}

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	done   chan struct{}
	closer lifecycle.Once
}

// New validates cfg and builds the server; Start listens.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Node == nil {
		return nil, fmt.Errorf("%w: no node backend", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg: cfg, deps: deps, log: log, mux: http.NewServeMux(), done: make(chan struct{}),
		hosts:   newHostPolicy(cfg),
		dryRuns: newLimiter(cfg.MaxDryRuns, cfg.DryRunQueue, cfg.DryRunQueueTimeout),
		uploads: newUploads(maxRememberedUploads),
		streams: &clientLimit{max: cfg.MaxEventClients},
		page:    newDashboard(cfg.Token != ""),

		eventWindow: defaultEventWindow,
		keepAlive:   defaultKeepAlive,
		quit:        make(chan struct{}),
	}
	s.routes()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A dry run (POST /upgrades/{id}/test) fetches, compiles and runs a
		// package under the sandbox deadline; leave room for all three.
		WriteTimeout: 3 * time.Minute,
		IdleTimeout:  2 * time.Minute,
	}
	return s, nil
}

// ServeHTTP handles every request (tests drive it without a listener): it
// gives the request an ID, refuses a Host the API does not answer to, and
// turns a panic into a logged, generic 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	w.Header().Set(RequestIDHeader, id)
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { // net/http aborts the response this way; let it
			panic(v)
		}
		s.log.Error("api handler panicked", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if !rw.wrote {
			writeError(rw, r, http.StatusInternalServerError, internalError)
		}
	}()
	if !s.hosts.allow(r) {
		s.misdirected(rw, r)
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// statusWriter remembers whether the response was started, so a panic
// after that does not try to write a second status line.
type statusWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("api: server closed")
	}
	if s.ln != nil {
		return errors.New("api: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}()
	s.log.Info("api listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (useful with port 0), or "".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close shuts the server down gracefully within ctx. Every call returns
// the first call's result.
func (s *Server) Close(ctx context.Context) error {
	return s.closer.Do(func() error {
		s.mu.Lock()
		s.closed = true
		started := s.ln != nil
		close(s.quit)
		s.mu.Unlock()
		if !started {
			return nil
		}
		err := s.srv.Shutdown(ctx)
		if werr := lifecycle.Wait(ctx, "api server", func() { <-s.done }); err == nil {
			err = werr
		}
		return err
	})
}
