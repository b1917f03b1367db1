package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// errorBody is the shape of every error response. RequestID is also sent
// as the X-Request-ID header of every response and logged with every
// server-side failure, so an operator can find the details of a 500.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// RequestIDHeader carries the request ID on every response.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// newRequestID is 8 random bytes in hex: unique enough to find one request
// in a node's log.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// requestID is the ID the server gave the request, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, RequestID: requestID(r.Context())})
}

// statusOf maps an error to its HTTP status: the one place where backend
// errors meet status codes. Anything unknown is a 500.
func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// internalError is all a client learns about a 500; the error itself goes
// to the log under the request ID.
const internalError = "internal error"

// fail answers a request with the status statusOf picks. Errors of a known
// class keep their message (it is meant for the client); any other error
// is logged with the request ID and answered with a generic 500, so
// internal details (paths, addresses, component errors) do not leak.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError && r.Context().Err() != nil {
		// The client went away (or its deadline passed) while the backend
		// worked: nobody reads the answer, and it is not a server fault.
		s.log.Debug("api request abandoned by the client", "request_id", requestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(s.retryAfterSeconds()))
	}
	if code == http.StatusInternalServerError {
		s.log.Error("api request failed", "request_id", requestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, r, code, internalError)
		return
	}
	writeError(w, r, code, err.Error())
}

// retryAfterSeconds is what a 429 tells the client to wait: the queue
// timeout, at least one second.
func (s *Server) retryAfterSeconds() int {
	sec := int((s.cfg.DryRunQueueTimeout + 999_999_999) / 1_000_000_000)
	return max(sec, 1)
}

// decodeJSON reads one JSON object into v: bounded in size, unknown fields
// and trailing data rejected. The body must be JSON whatever the content
// type says, but only application/json, none, or curl's default for -d
// (application/x-www-form-urlencoded, as in the seed's examples) are taken;
// requests from foreign web pages are refused earlier (see mutating), and
// the dashboard sends application/json.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	switch ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(strings.ToLower(ct)) {
	case "", "application/json", "application/x-www-form-urlencoded":
	default:
		return fmt.Errorf("%w: content type %q, want application/json", ErrInvalid, ct)
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, s.cfg.MaxBodyBytes)
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body, want a JSON object", ErrInvalid)
		}
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return nil
}
