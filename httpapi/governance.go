package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
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

// Validate checks a proposal request before it is signed: the required
// fields, and a package_size that is positive and within the network's
// limit. node/ calls it too, for proposals that do not come over HTTP.
func (req ProposeRequest) Validate(lim ProposalLimits) error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"package_hash", req.PackageHash}, {"package_url", req.PackageURL},
		{"title", req.Title}, {"version", req.Version},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", "))
	}
	if req.PackageSize <= 0 {
		return fmt.Errorf("%w: package_size must be a positive number of bytes", ErrInvalid)
	}
	if lim.MaxPackageBytes <= 0 {
		return fmt.Errorf("api: the network's package size limit is unknown (%d)", lim.MaxPackageBytes)
	}
	if req.PackageSize > lim.MaxPackageBytes {
		return fmt.Errorf("%w: package_size %d exceeds the network's limit of %d bytes (%s, global.governance.limits.max_package_bytes): no node would fetch it",
			ErrInvalid, req.PackageSize, lim.MaxPackageBytes, humanBytes(lim.MaxPackageBytes))
	}
	return nil
}

// humanBytes writes n in the largest binary unit, to one decimal.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + " " + units[i]
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
		lim, err := g.ProposalLimits(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := req.Validate(lim); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.uploads.check(req); err != nil {
			s.fail(w, r, err)
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
