package raftnet

import (
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// loop follows the validator set and, on the leader, ratifies approved
// proposals. It wakes on Governance.Changed, ReconcileMembership, gaining
// leadership and every PollInterval.
func (s *Service) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	changed := s.deps.Governance.Changed()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.nudge:
		case _, ok := <-changed:
			if !ok {
				changed = nil
			}
		}
		s.followMembership()
		s.ratifyApproved()
	}
}

// followMembership starts or stops raft on this node to match the
// validator set and, on the leader, brings the raft configuration in line.
func (s *Service) followMembership() {
	vals := sortedUnique(s.deps.Validators())
	if len(vals) == 0 {
		s.log.Warn("validator set is empty; keeping the current membership")
		return
	}
	member := s.isValidator(vals)
	if member {
		s.protect(vals)
	} else {
		s.protect(nil)
	}
	n := s.current()
	switch {
	case member && n == nil:
		if err := s.startRaft(); err != nil {
			s.log.Error("cannot start raft", "err", err)
		}
		return
	case !member && n != nil:
		if n.isLeader() {
			s.reconcile(n, vals) // hand over: remove ourselves last
		}
		if err := s.stopRaft(); err != nil {
			s.log.Error("stop raft", "err", err)
		}
		return
	case n != nil && n.isLeader():
		s.reconcile(n, vals)
	}
}

// reconcile adds missing validators as voters and removes servers that are
// no longer validators (this node last), in sorted order.
func (s *Service) reconcile(n *raftNode, vals []peer.ID) {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		s.log.Warn("read raft configuration", "err", err)
		return
	}
	have := map[raft.ServerID]raft.ServerSuffrage{}
	for _, srv := range fut.Configuration().Servers {
		have[srv.ID] = srv.Suffrage
	}
	for _, v := range vals {
		id := raft.ServerID(v.String())
		if sf, ok := have[id]; ok && sf == raft.Voter {
			continue
		}
		if err := n.raft.AddVoter(id, raft.ServerAddress(v.String()), 0, s.cfg.ApplyTimeout).Error(); err != nil {
			s.log.Warn("add voter", "peer", v, "err", err)
			return
		}
		s.log.Info("added raft voter", "peer", v)
		s.events.emit(Event{Kind: EventMembership, Peer: v, Added: true})
	}
	var remove []raft.ServerID
	for id := range have {
		if p, err := peer.Decode(string(id)); err != nil || !slices.Contains(vals, p) {
			remove = append(remove, id)
		}
	}
	self := raft.ServerID(s.self.String())
	slices.SortFunc(remove, func(a, b raft.ServerID) int {
		switch {
		case a == self:
			return 1
		case b == self:
			return -1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	for _, id := range remove {
		if err := n.raft.RemoveServer(id, 0, s.cfg.ApplyTimeout).Error(); err != nil {
			s.log.Warn("remove server", "id", id, "err", err)
			return
		}
		p, _ := peer.Decode(string(id))
		s.log.Info("removed raft server", "id", id)
		s.events.emit(Event{Kind: EventMembership, Peer: p})
	}
}

// ratifyApproved applies, one at a time, a Ratify for every approved
// candidate that has no entry yet. Only the leader does anything.
func (s *Service) ratifyApproved() {
	n := s.current()
	if n == nil || !n.isLeader() {
		return
	}
	barrier := false
	for _, c := range s.deps.Governance.Approved(time.Now()) {
		if s.ctx.Err() != nil || !n.isLeader() {
			return
		}
		if n.fsm.has(c.ProposalID) {
			continue
		}
		if !barrier {
			// A new leader's FSM may lag its log: wait until everything
			// committed is applied before deciding what lacks an entry.
			// (A duplicate Ratify would be a harmless no-op; this avoids it.)
			if err := n.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn("raft barrier", "err", err)
				return
			}
			barrier = true
			if n.fsm.has(c.ProposalID) {
				continue
			}
		}
		r, err := RatifyFromCandidate(c)
		if err != nil {
			s.log.Warn("skipping invalid candidate", "proposal", c.ProposalID, "err", err)
			continue
		}
		res, err := s.apply(n, r)
		if err != nil {
			s.log.Warn("ratify not committed; will retry", "proposal", c.ProposalID, "err", err)
			return
		}
		s.log.Info("ratified", "proposal", c.ProposalID, "seq", res.Seq, "duplicate", res.Duplicate)
	}
}

// apply commits r through raft and returns the FSM's result.
func (s *Service) apply(n *raftNode, r Ratify) (ApplyResult, error) {
	b, err := encodeRatify(r)
	if err != nil {
		return ApplyResult{}, err
	}
	f := n.raft.Apply(b, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return ApplyResult{}, err
	}
	switch v := f.Response().(type) {
	case ApplyResult:
		return v, nil
	case error:
		return ApplyResult{}, v
	}
	return ApplyResult{}, errors.New("raftnet: unexpected FSM response")
}

// protectTag marks the connection-manager protection raftnet asks for.
const protectTag = "raftnet"

// protect keeps the connections to the given validators out of the
// connection manager's trimming, and releases those no longer listed.
// Only the loop goroutine (and Close, after it) calls it.
func (s *Service) protect(vals []peer.ID) {
	cm := s.deps.Host.ConnManager()
	want := map[peer.ID]bool{}
	for _, v := range vals {
		if v != s.self {
			want[v] = true
		}
	}
	for p := range s.protected {
		if !want[p] {
			cm.Unprotect(p, protectTag)
			delete(s.protected, p)
		}
	}
	for p := range want {
		if !s.protected[p] {
			cm.Protect(p, protectTag)
			s.protected[p] = true
		}
	}
}
