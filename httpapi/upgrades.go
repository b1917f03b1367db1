package httpapi

import (
	"errors"
	"fmt"
	"net/http"
)

func (s *Server) upgrades(w http.ResponseWriter, r *http.Request) (Upgrades, bool) {
	if s.deps.Upgrades == nil {
		writeError(w, r, http.StatusServiceUnavailable, "the upgrade executor is not running on this node")
		return nil, false
	}
	return s.deps.Upgrades, true
}

func (s *Server) handleTest() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		// Each dry run is a sandbox child with up to the network's memory
		// limit: bound how many run and wait.
		release, err := s.dryRuns.acquire(r.Context())
		if err != nil {
			running, waiting := s.dryRuns.load()
			s.log.Debug("dry run refused", "request_id", requestID(r.Context()), "running", running, "waiting", waiting, "err", err)
			s.fail(w, r, err)
			return
		}
		defer release()
		res, err := u.Test(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) handleStatus() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		st, err := u.Status(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) handleHistory() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		h, err := u.History(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if h == nil {
			h = []HistoryEntry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"history": h})
	}
}

func (s *Server) handleRollback() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		res, err := u.Rollback(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) handleResume() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		st, err := u.Resume(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) handleState() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.upgrades(w, r)
		if !ok {
			return
		}
		st, err := u.State(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

// handleAddPackage takes the raw package bytes as the body (any content
// type), bounded by MaxPackageBytes.
func (s *Server) handleAddPackage() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Packages == nil {
			writeError(w, r, http.StatusServiceUnavailable, "the package store is not running on this node")
			return
		}
		body := http.MaxBytesReader(w, r.Body, s.cfg.MaxPackageBytes)
		info, err := s.deps.Packages.AddPackage(r.Context(), body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = fmt.Errorf("%w: package larger than %d bytes", ErrTooLarge, s.cfg.MaxPackageBytes)
			}
			s.fail(w, r, err)
			return
		}
		s.uploads.add(info)
		writeJSON(w, http.StatusCreated, info)
	}
}
