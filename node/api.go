package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/bitswap"
	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// The node serves the REST API through three small adapters over its
// components; they translate component errors into the API's sentinels.
type (
	governanceAPI struct{ n *Node }
	upgradesAPI   struct{ n *Node }
	packagesAPI   struct{ n *Node }
)

// APIBackends are the node's REST API backends; simnet drives nodes
// through them in process, exactly as curl would over HTTP.
func (n *Node) APIBackends() (httpapi.Governance, httpapi.Upgrades, httpapi.Packages) {
	return governanceAPI{n}, upgradesAPI{n}, packagesAPI{n}
}

// ProposalLimits are the limits of the rules in force on this node: the
// network state's global.governance.limits, defaults filled in.
func (a governanceAPI) ProposalLimits(ctx context.Context) (httpapi.ProposalLimits, error) {
	return httpapi.ProposalLimits{MaxPackageBytes: a.n.Rules().Governance.Limits.WithDefaults().MaxPackageBytes}, nil
}

// Propose checks a proposal against the current network state before
// signing and publishing it: the fields and package size limit
// (ProposeRequest.Validate, again here for callers that bypass HTTP, such as
// simnet), a valid, higher version and a well-formed package reference.
func (a governanceAPI) Propose(ctx context.Context, req httpapi.ProposeRequest) (httpapi.Proposal, error) {
	n := a.n
	lim, err := a.ProposalLimits(ctx)
	if err != nil {
		return httpapi.Proposal{}, err
	}
	if err := req.Validate(lim); err != nil {
		return httpapi.Proposal{}, err
	}
	cur := n.Rules().Version
	if req.Type == httpapi.TypeCancel || req.Type == httpapi.TypeRollback {
		if req.Type == httpapi.TypeRollback && (!genesis.ValidVersion(req.Version) || genesis.CompareVersions(req.Version, cur) <= 0) {
			return httpapi.Proposal{}, fmt.Errorf("%w: a rollback sets a version higher than the current %s (versions never go down), got %q", httpapi.ErrInvalid, cur, req.Version)
		}
		id, err := n.gossip.PublishProposal(ctx, gossip.ProposalBody{Type: req.Type, Title: req.Title,
			Description: req.Description, Version: req.Version, Target: req.Target})
		if err != nil {
			return httpapi.Proposal{}, gossipErr(err)
		}
		return a.Proposal(ctx, id)
	}
	var activateAt int64
	if req.ActivateAt != "" {
		t, _ := time.Parse(time.RFC3339, req.ActivateAt) // Validate checked it
		if t.Before(time.Now()) || t.After(time.Now().Add(gossip.MaxActivationDelay*time.Second)) {
			return httpapi.Proposal{}, fmt.Errorf("%w: activate_at must lie between now and 30 days ahead", httpapi.ErrInvalid)
		}
		activateAt = t.Unix()
	}
	if req.ActivateAfterSeconds < 0 || req.ActivateAfterSeconds > gossip.MaxActivationDelay {
		return httpapi.Proposal{}, fmt.Errorf("%w: activate_after_seconds must be 0..%d (30 days)", httpapi.ErrInvalid, gossip.MaxActivationDelay)
	}
	if !genesis.ValidVersion(req.Version) {
		return httpapi.Proposal{}, fmt.Errorf("%w: version %q is not a semantic version (e.g. 1.2.0)", httpapi.ErrInvalid, req.Version)
	}
	if genesis.CompareVersions(req.Version, cur) <= 0 {
		return httpapi.Proposal{}, fmt.Errorf("%w: version %s must be higher than the current version %s", httpapi.ErrInvalid, req.Version, cur)
	}
	hash, err := upgrade.ParseHash(req.PackageHash)
	if err != nil {
		return httpapi.Proposal{}, fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	}
	switch {
	case strings.HasPrefix(req.PackageURL, "ipfs://"):
		if _, err := bitswap.ParseCID(req.PackageURL); err != nil {
			return httpapi.Proposal{}, fmt.Errorf("%w: package_url: %v", httpapi.ErrInvalid, err)
		}
	case strings.HasPrefix(req.PackageURL, "http://"), strings.HasPrefix(req.PackageURL, "https://"):
	default:
		return httpapi.Proposal{}, fmt.Errorf("%w: package_url must be ipfs://CID, http:// or https://", httpapi.ErrInvalid)
	}
	id, err := n.gossip.PublishProposal(ctx, gossip.ProposalBody{
		Title:         req.Title,
		Description:   req.Description,
		Version:       req.Version,
		PackageURL:    req.PackageURL,
		PackageHash:   "sha256:" + hash,
		PackageSize:   req.PackageSize,
		ActivateAt:    activateAt,
		ActivateAfter: req.ActivateAfterSeconds,
	})
	if err != nil {
		return httpapi.Proposal{}, gossipErr(err)
	}
	return a.Proposal(ctx, id)
}

func (a governanceAPI) Vote(ctx context.Context, id, choice string) (httpapi.VoteResult, error) {
	n := a.n
	before, err := n.gossip.Proposal(id, time.Now())
	if err != nil {
		return httpapi.VoteResult{}, gossipErr(err)
	}
	id = before.ID
	changed := false
	for _, v := range before.Votes {
		if v.Voter == n.ID() && v.Choice != choice {
			changed = true
		}
	}
	if err := n.gossip.PublishVote(ctx, id, choice); err != nil {
		return httpapi.VoteResult{}, gossipErr(err)
	}
	p, err := a.Proposal(ctx, id)
	if err != nil {
		return httpapi.VoteResult{}, err
	}
	return httpapi.VoteResult{ProposalID: id, Vote: choice, Changed: changed, Status: p.Status, Tally: p.Tally}, nil
}

func (a governanceAPI) Proposals(ctx context.Context) ([]httpapi.Proposal, error) {
	var out []httpapi.Proposal
	for _, p := range a.n.gossip.Proposals(time.Now()) {
		out = append(out, a.n.proposalView(p))
	}
	return out, nil
}

func (a governanceAPI) Proposal(ctx context.Context, id string) (httpapi.Proposal, error) {
	p, err := a.n.gossip.Proposal(id, time.Now())
	if err != nil {
		return httpapi.Proposal{}, gossipErr(err)
	}
	return a.n.proposalView(p), nil
}

func (n *Node) proposalView(p gossip.ProposalView) httpapi.Proposal {
	gov := n.Rules().Governance
	out := httpapi.Proposal{
		ProposalID:  p.ID,
		Type:        p.Body.Type,
		Target:      p.Body.Target,
		Title:       p.Body.Title,
		Description: p.Body.Description,
		Version:     p.Body.Version,
		PackageURL:  p.Body.PackageURL,
		PackageHash: p.Body.PackageHash,
		PackageSize: p.Body.PackageSize,
		Proposer:    p.Proposer.String(),
		CreatedAt:   p.CreatedAt.UTC().Format(time.RFC3339),
		Status:      p.Status,
		Votes:       []httpapi.Vote{},
		Tally: httpapi.Tally{
			Approval:      p.Tally.Approval,
			Rejection:     p.Tally.Rejection,
			Eligible:      p.Tally.Eligible,
			Quorum:        gov.Quorum,
			Voters:        len(p.Votes),
			VotedShare:    p.Tally.VotedShare,
			EarlyApproval: gov.EarlyApproval,
		},
	}
	if !p.FirstSeen.IsZero() {
		end := p.FirstSeen.Add(time.Duration(gov.VotingPeriodSeconds) * time.Second)
		out.VotingEndsAt = end.UTC().Format(time.RFC3339)
	}
	for _, v := range p.Votes {
		out.Votes = append(out.Votes, httpapi.Vote{Voter: v.Voter.String(), Choice: v.Choice, Weight: v.Weight, OpID: v.OpID, Seq: v.Seq})
	}
	for _, q := range p.Equivocators {
		out.Equivocators = append(out.Equivocators, q.String())
	}
	if p.Seq == 0 && p.Status == gossip.StatusApproved {
		out.Ratification = n.candidateRatification(p)
	}
	if p.Body.ActivateAt != 0 {
		out.ActivateAt = time.Unix(p.Body.ActivateAt, 0).UTC().Format(time.RFC3339)
	}
	out.ActivateAfterSeconds = p.Body.ActivateAfter
	run := p.Seq
	if p.RunSeq > 0 {
		run = p.RunSeq
	}
	if p.Seq > 0 {
		out.Ratification = n.ratification(p.Seq)
		if h, ok := n.executed(run); ok && (p.RunSeq > 0 || !p.Body.Scheduled()) {
			if h.Success {
				out.Status = "executed"
			} else {
				out.Status = "failed"
			}
		}
	}
	return out
}

// ratification describes entry seq of the final log.
func (n *Node) ratification(seq uint64) *httpapi.Ratification {
	for _, e := range n.gossip.ExecutionLog() {
		if e.Seq == seq {
			signers := n.gossip.Signers(seq, e.Hash())
			return &httpapi.Ratification{Seq: seq, EntryHash: e.Hash(), Signatures: len(signers), Required: n.finalityNeeded(seq),
				Final: true, Signers: peerStrings(signers)}
		}
	}
	return nil
}

// candidateRatification shows how far the validators are with an approved
// proposal that is not final yet: the entry it would be at the next seq,
// which validators attested it and which signed it. It is nil until some
// validator attested or signed that entry (the proposal may wait for an
// earlier one, or for the leader to order it).
func (n *Node) candidateRatification(p gossip.ProposalView) *httpapi.Ratification {
	seq := n.gossip.NextSeq()
	prev := ""
	if seq > 1 {
		e, ok := n.gossip.Final(seq - 1)
		if !ok {
			return nil
		}
		prev = e.Hash()
	}
	entry := execlog.Entry{Seq: seq, ProposalID: p.ID, Version: p.Body.Version, PackageURL: p.Body.PackageURL,
		PackageHash: p.Body.PackageHash, PackageSize: p.Body.PackageSize, PrevEntryHash: prev}
	hash := entry.Hash()
	var attesters []peer.ID
	for v, h := range n.gossip.Attests(seq) {
		if h == hash {
			attesters = append(attesters, v)
		}
	}
	sort.Slice(attesters, func(i, j int) bool { return attesters[i] < attesters[j] })
	signers := n.gossip.Signers(seq, hash)
	if len(attesters) == 0 && len(signers) == 0 {
		return nil
	}
	return &httpapi.Ratification{Seq: seq, EntryHash: hash, Signatures: len(signers), Required: n.finalityNeeded(seq),
		Signers: peerStrings(signers), Attesters: peerStrings(attesters)}
}

func peerStrings(ids []peer.ID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// finalityNeeded is how many signatures entry seq needs under the rules
// in force for it (0 when this node does not know them).
func (n *Node) finalityNeeded(seq uint64) int {
	r, ok := n.rulesHist.get(seq)
	if !ok {
		return 0
	}
	return r.Governance.FinalityNeeded(len(r.Validators))
}

// stuckView is the executor's stuck entry for the API (nil when none).
func (n *Node) stuckView() *httpapi.StuckEntry {
	s, ok := n.StuckEntry()
	if !ok {
		return nil
	}
	return &httpapi.StuckEntry{Seq: s.Seq, ProposalID: s.Proposal, Since: s.Since.UTC().Format(time.RFC3339),
		Attempts: s.Attempts, LastError: s.LastError, NextTry: s.NextTry.UTC().Format(time.RFC3339)}
}

// executed is this node's last execution record of entry seq.
func (n *Node) executed(seq uint64) (upgrade.HistoryEntry, bool) {
	if seq > n.upgrades.LastExecutedSeq() {
		return upgrade.HistoryEntry{}, false
	}
	var found upgrade.HistoryEntry
	ok := false
	for _, h := range n.upgrades.History() {
		if h.Seq == seq && h.EntryHash != "" {
			found, ok = h, true
		}
	}
	return found, ok
}

func (a governanceAPI) ExecutionLog(ctx context.Context) ([]httpapi.LogEntry, error) {
	n := a.n
	var out []httpapi.LogEntry
	for _, e := range n.gossip.ExecutionLog() {
		le := httpapi.LogEntry{
			Seq: e.Seq, ProposalID: e.ProposalID, Version: e.Version,
			PackageURL: e.PackageURL, PackageHash: e.PackageHash, PackageSize: e.PackageSize,
			PrevEntryHash: e.PrevEntryHash, EntryHash: e.Hash(), Final: true, Void: e.Void,
			Action: e.Action, Target: e.Target, ActivateAt: e.ActivateAt, ActivateAfter: e.ActivateAfter,
			Required: n.finalityNeeded(e.Seq),
		}
		if st := n.stuckView(); st != nil && st.Seq == e.Seq {
			le.Stuck = st
		}
		for _, s := range n.gossip.Signers(e.Seq, e.Hash()) {
			le.Signers = append(le.Signers, s.String())
		}
		if h, ok := n.executed(e.Seq); ok {
			le.Executed, le.Success, le.PostStateSHA256 = true, h.Success, h.PostStateSHA256
		}
		if reps := n.gossip.Reports(e.Seq); len(reps) > 0 {
			le.Reports = map[string]int{}
			le.Reporters = map[string][]string{}
			for sum, who := range reps {
				le.Reports[sum] = len(who)
				le.Reporters[sum] = peerStrings(who)
			}
		}
		out = append(out, le)
	}
	return out, nil
}

func (a governanceAPI) Validators(ctx context.Context) (httpapi.ValidatorSet, error) {
	n := a.n
	leader := n.raft.Leader()
	out := httpapi.ValidatorSet{Leader: leader.String()}
	if leader == "" {
		out.Leader = ""
	}
	banned := n.raft.Banned()
	for _, v := range n.Rules().Validators {
		// Through a relay counts: raft runs over relayed connections.
		c := n.host.Network().Connectedness(v)
		val := httpapi.Validator{
			PeerID:    v.String(),
			Leader:    v == leader,
			Connected: v == n.ID() || c == network.Connected || c == network.Limited,
		}
		if t, ok := banned[v]; ok {
			val.BannedUntil = t.UTC().Format(time.RFC3339)
		}
		out.Validators = append(out.Validators, val)
		if v == n.ID() {
			out.Self = true
		}
	}
	r := n.Rules()
	out.FinalityNeeded = r.Governance.FinalityNeeded(len(r.Validators))
	out.Equivocations = []httpapi.Equivocation{}
	for _, ev := range n.gossip.Equivocations() {
		out.Equivocations = append(out.Equivocations, httpapi.Equivocation{Seq: ev.Seq, Validator: ev.Validator.String(),
			EntryHashes: ev.EntryHashes, OpIDs: ev.OpIDs})
	}
	return out, nil
}

// gossipErr maps gossip's sentinels to the API's.
func gossipErr(err error) error {
	switch {
	case errors.Is(err, gossip.ErrUnknownProposal):
		return fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	case errors.Is(err, gossip.ErrAmbiguousProposal):
		return fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	case errors.Is(err, gossip.ErrAlreadyVoted):
		return fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	case errors.Is(err, gossip.ErrNotEligible):
		return fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	case errors.Is(err, gossip.ErrInvalidOp), errors.Is(err, gossip.ErrBadChoice), errors.Is(err, gossip.ErrStaleVersion),
		errors.Is(err, gossip.ErrPackageTooLarge):
		return fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	}
	return err
}

func (a upgradesAPI) Test(ctx context.Context, id string) (httpapi.TestResult, error) {
	n := a.n
	p, err := n.gossip.Proposal(id, time.Now())
	if err != nil {
		return httpapi.TestResult{}, gossipErr(err)
	}
	id = p.ID
	res, err := n.upgrades.Test(ctx, upgrade.Package{
		ProposalID: id, Version: p.Body.Version, URL: p.Body.PackageURL,
		SHA256: p.Body.PackageHash, Size: p.Body.PackageSize,
	})
	if err != nil {
		// Deterministic failures are in res; an error is transient (the
		// package cannot be fetched right now).
		return httpapi.TestResult{}, fmt.Errorf("%w: %v", httpapi.ErrUnavailable, err)
	}
	out := httpapi.TestResult{
		ProposalID: id, Success: res.Success, Version: res.Version, StateHash: res.StateSHA256,
		Diff: strings.Join(res.Diff, "\n"), DurationMS: res.Duration.Milliseconds(), Error: res.Error,
	}
	if res.ErrorClass != "" {
		out.Error = res.ErrorClass + ": " + res.Error
	}
	return out, nil
}

func (a upgradesAPI) Status(ctx context.Context) (httpapi.Status, error) {
	n := a.n
	st := n.upgrades.Status()
	out := httpapi.Status{
		SystemAvailable: true,
		CurrentVersion:  st.CurrentVersion,
		TotalUpgrades:   st.TotalUpgrades,
		WasmAvailable:   st.WasmAvailable,
		IPFSAvailable:   st.IPFSAvailable,
		LastExecutedSeq: st.LastExecutedSeq,
		Paused:          st.Paused,
		StateHash:       st.StateSHA256,
	}
	if st.Paused {
		out.PausedReason = st.PausedReason + "; POST /upgrades/resume (or synapse-p2p resume) continues with the log"
	}
	out.Halted = n.Halted() != ""
	out.Stuck = n.stuckView()
	if e, due, ok := n.gossip.Schedule(); ok {
		out.Scheduled = &httpapi.ScheduledEntry{Seq: e.Seq, ProposalID: e.ProposalID, Version: e.Version,
			ActivatesAt: due.UTC().Format(time.RFC3339), SecondsLeft: max(0, int64(time.Until(due).Seconds()))}
	}
	if log := n.gossip.ExecutionLog(); len(log) > 0 {
		out.FinalSeq = log[len(log)-1].Seq
		out.Voided = voidedEntries(log, maxVoidedShown)
	}
	if st.LastUpgrade != nil {
		h := historyView(*st.LastUpgrade)
		out.LastUpgrade = &h
	}
	return out, nil
}

func (a upgradesAPI) History(ctx context.Context) ([]httpapi.HistoryEntry, error) {
	var out []httpapi.HistoryEntry
	for _, h := range a.n.upgrades.History() {
		out = append(out, historyView(h))
	}
	return out, nil
}

func historyView(h upgrade.HistoryEntry) httpapi.HistoryEntry {
	return httpapi.HistoryEntry{
		Event:           h.Event,
		ProposalID:      h.ProposalID,
		Seq:             h.Seq,
		Version:         h.Version,
		PreviousVersion: h.PreviousVersion,
		ExecutedAt:      h.ExecutedAt,
		Success:         h.Success,
		Result:          h.Result,
		Error:           h.Error,
		PostStateSHA256: h.PostStateSHA256,
		PreStateSHA256:  h.PreStateSHA256,
		DurationMS:      h.DurationMS,
	}
}

func (a upgradesAPI) Rollback(ctx context.Context, id string) (httpapi.RollbackResult, error) {
	if canon, err := a.n.gossip.ResolveProposal(id); err == nil {
		id = canon
	} else if errors.Is(err, gossip.ErrAmbiguousProposal) {
		return httpapi.RollbackResult{}, gossipErr(err)
	}
	res, err := a.n.upgrades.Rollback(ctx, id)
	switch {
	case errors.Is(err, upgrade.ErrNotFound):
		return httpapi.RollbackResult{}, fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	case err != nil:
		return httpapi.RollbackResult{}, err
	}
	if err := a.n.refreshRules(); err != nil {
		a.n.log.Error("rules unreadable after rollback", "err", err)
	}
	a.n.notify(httpapi.EventExecutor, id, 0)
	return httpapi.RollbackResult{
		Message:         fmt.Sprintf("rolled back %s locally; execution is paused until resumed", id),
		RestoredVersion: res.RestoredVersion,
		PreviousVersion: res.PreviousVersion,
	}, nil
}

func (a upgradesAPI) Resume(ctx context.Context) (httpapi.Status, error) {
	if !a.n.upgrades.Status().Paused {
		return httpapi.Status{}, fmt.Errorf("%w: the executor is not paused", httpapi.ErrConflict)
	}
	if err := a.n.upgrades.Resume(); err != nil {
		return httpapi.Status{}, fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	}
	a.n.Kick()
	a.n.notify(httpapi.EventExecutor, "", 0)
	return a.Status(ctx)
}

func (a upgradesAPI) State(ctx context.Context) (httpapi.StateView, error) {
	v, state, sum := a.n.upgrades.State()
	return httpapi.StateView{Version: v, StateHash: sum, State: state}, nil
}

// AddPackage imports a package into the content store and provides it.
func (a packagesAPI) AddPackage(ctx context.Context, r io.Reader) (httpapi.PackageInfo, error) {
	res, err := a.n.packages.Add(ctx, r)
	if err != nil {
		return httpapi.PackageInfo{}, err
	}
	return httpapi.PackageInfo{
		CID:    res.CID.String(),
		URL:    "ipfs://" + res.CID.String(),
		SHA256: "sha256:" + res.SHA256,
		Size:   res.Size,
	}, nil
}

// maxVoidedShown bounds the voided entries /upgrades/status lists.
const maxVoidedShown = 20

// voidedEntries lists the latest (at most max) entries of log that never
// run: void seqs and the scheduled entries cancel entries cancelled.
func voidedEntries(log []execlog.Entry, max int) []httpapi.VoidedEntry {
	var out []httpapi.VoidedEntry
	for i := len(log) - 1; i >= 0 && len(out) < max; i-- {
		e := log[i]
		switch {
		case e.Void:
			out = append(out, httpapi.VoidedEntry{Seq: e.Seq})
		case e.Action == execlog.ActionCancel && e.Target > 0 && e.Target <= uint64(len(log)):
			out = append(out, httpapi.VoidedEntry{Seq: e.Target, ProposalID: log[e.Target-1].ProposalID, CancelledBy: e.Seq})
		}
	}
	return out
}
