package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// nextSteps is what a proposer of p is told after proposing.
func nextSteps(p Proposal) []string {
	steps := []string{"Community votes on proposal", "If approved, validators ratify"}
	switch {
	case p.Type == TypeCancel:
		return append(steps, "The upgrade "+p.Target+" never runs on any node (too_late if it ran first)")
	case p.Type == TypeRollback:
		return append(steps, "Every node restores the state from before "+p.Target+" as version "+p.Version)
	case p.ActivateAt != "":
		return append(steps, "Every node prepares the upgrade, then executes it at "+p.ActivateAt)
	case p.ActivateAfterSeconds > 0:
		return append(steps, fmt.Sprintf("Every node prepares the upgrade, then executes it %d s after ratification", p.ActivateAfterSeconds))
	}
	return append(steps, "Upgrade executes automatically")
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
	switch req.Type {
	case "", TypeCodeUpgrade:
	case TypeCancel, TypeRollback:
		var missing []string
		if strings.TrimSpace(req.Title) == "" {
			missing = append(missing, "title")
		}
		if strings.TrimSpace(req.Target) == "" {
			missing = append(missing, "target")
		}
		if req.Type == TypeRollback && strings.TrimSpace(req.Version) == "" {
			missing = append(missing, "version")
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", "))
		}
		if req.PackageURL != "" || req.PackageHash != "" || req.PackageSize != 0 || req.ActivateAt != "" || req.ActivateAfterSeconds != 0 {
			return fmt.Errorf("%w: a %s proposal has no package and no schedule", ErrInvalid, req.Type)
		}
		return nil
	default:
		return fmt.Errorf("%w: type %q (want code_upgrade, cancel or rollback)", ErrInvalid, req.Type)
	}
	if req.ActivateAt != "" && req.ActivateAfterSeconds != 0 {
		return fmt.Errorf("%w: give activate_at or activate_after_seconds, not both", ErrInvalid)
	}
	if req.ActivateAt != "" {
		if _, err := time.Parse(time.RFC3339, req.ActivateAt); err != nil {
			return fmt.Errorf("%w: activate_at %q is not an RFC 3339 time (e.g. 2026-12-01T12:00:00Z)", ErrInvalid, req.ActivateAt)
		}
	}
	if req.Target != "" {
		return fmt.Errorf("%w: a code upgrade has no target", ErrInvalid)
	}
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
		writeJSON(w, http.StatusCreated, ProposeResponse{ProposalID: p.ProposalID, Type: p.Type, Target: p.Target, Status: p.Status, NextSteps: nextSteps(p)})
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
