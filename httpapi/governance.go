package httpapi

import (
	"fmt"
	"net/http"
	"strings"
)

// nextSteps is what a proposer is told after proposing.
var nextSteps = []string{
	"Community votes on proposal",
	"If approved, validators ratify",
	"Upgrade executes automatically",
}

// NormalizeChoice maps a vote as users write it to "approval" or
// "rejection"; yes/no (any case) are aliases.
func NormalizeChoice(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "approval", "approve", "yes":
		return "approval", nil
	case "rejection", "reject", "no":
		return "rejection", nil
	}
	return "", fmt.Errorf("%w: vote %q: want approval or rejection (or yes/no)", ErrInvalid, v)
}

func (s *Server) governance(w http.ResponseWriter, r *http.Request) (Governance, bool) {
	if s.deps.Governance == nil {
		writeError(w, r, http.StatusServiceUnavailable, "governance is not running on this node")
		return nil, false
	}
	return s.deps.Governance, true
}

func (s *Server) handlePropose() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		var req ProposeRequest
		if err := s.decodeJSON(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		var missing []string
		for name, v := range map[string]string{"title": req.Title, "version": req.Version, "package_url": req.PackageURL, "package_hash": req.PackageHash} {
			if strings.TrimSpace(v) == "" {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			sortStrings(missing)
			s.fail(w, r, fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", ")))
			return
		}
		if req.PackageSize <= 0 {
			s.fail(w, r, fmt.Errorf("%w: package_size must be a positive number of bytes", ErrInvalid))
			return
		}
		p, err := g.Propose(r.Context(), req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, ProposeResponse{ProposalID: p.ProposalID, Status: p.Status, NextSteps: nextSteps})
	}
}

func (s *Server) handleVote() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		var req VoteRequest
		if err := s.decodeJSON(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		choice, err := NormalizeChoice(req.Vote)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := g.Vote(r.Context(), r.PathValue("id"), choice)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) handleProposals() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		ps, err := g.Proposals(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if ps == nil {
			ps = []Proposal{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(ps), "proposals": ps})
	}
}

func (s *Server) handleProposal() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		p, err := g.Proposal(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	}
}

func (s *Server) handleExecutionLog() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		entries, err := g.ExecutionLog(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if entries == nil {
			entries = []LogEntry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(entries), "entries": entries})
	}
}

func (s *Server) handleValidators() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.governance(w, r)
		if !ok {
			return
		}
		v, err := g.Validators(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if v.Validators == nil {
			v.Validators = []Validator{}
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func sortStrings(xs []string) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
