package raftnet

import (
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// loop follows the validator set and does this validator's duty for the
// next seq (dutyTick). It wakes on Governance.Changed, FSM changes,
// ReconcileMembership, gaining leadership and every PollInterval.
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
		case <-s.applied:
		case _, ok := <-changed:
			if !ok {
				changed = nil
			}
		}
		s.followMembership()
		if n := s.current(); n != nil && s.ctx.Err() == nil {
			s.dutyTick(n)
		}
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
	s.noteValidators(vals)
	n := s.current()
	if n != nil {
		n.refreshConfiguration()
	}
	if member {
		s.leftAt = time.Time{}
	}
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
		// A validator that left stays a raft voter until the leader
		// removed it (or leaveGrace passed): when an upgrade replaces
		// most validators at once, the old configuration still needs
		// its votes to add the new ones.
		if s.leftAt.IsZero() {
			s.leftAt = time.Now()
		}
		if n.inConfiguration(s.self) && time.Since(s.leftAt) < leaveGrace {
			return
		}
		if err := s.stopRaft(); err != nil {
			s.log.Error("stop raft", "err", err)
		}
		return
	case n != nil && n.isLeader():
		s.reconcile(n, vals)
	}
}

// noteValidators remembers the validator set before a change for
// leaveGrace: during the change the old validators keep their raft votes
// until removed, so this node must still accept their raft traffic (a new
// validator learns of the change before the leader added it).
func (s *Service) noteValidators(vals []peer.ID) {
	s.valMu.Lock()
	defer s.valMu.Unlock()
	if s.lastVals != nil && !slices.Equal(s.lastVals, vals) {
		s.prevVals, s.prevUntil = s.lastVals, time.Now().Add(leaveGrace)
	}
	s.lastVals = vals
}

// wasValidator reports whether p was a validator before the last change,
// within leaveGrace of it.
func (s *Service) wasValidator(p peer.ID) bool {
	s.valMu.Lock()
	defer s.valMu.Unlock()
	return time.Now().Before(s.prevUntil) && slices.Contains(s.prevVals, p)
}

// leaveGrace bounds how long a node that left the validator set keeps
// serving as a raft voter while the leader has not removed it.
const leaveGrace = 2 * time.Minute

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
// candidate that has no slot yet. Only the leader does anything.
func (s *Service) ratifyApproved(n *raftNode) {
	barrier := false
	for _, c := range s.deps.Governance.Approved(time.Now()) {
		if s.ctx.Err() != nil || !n.isLeader() {
			return
		}
		if n.fsm.has(c) || s.duty.refused[candKey(c)] {
			continue
		}
		if !barrier {
			// A new leader's FSM may lag its log: wait until everything
			// committed is applied before deciding what lacks a slot.
			if err := n.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn("raft barrier", "err", err)
				return
			}
			barrier = true
			if n.fsm.has(c) {
				continue
			}
		}
		r, err := RatifyFromCandidate(c)
		if err != nil {
			s.log.Warn("skipping invalid candidate", "proposal", c.ProposalID, "err", err)
			s.duty.refused[candKey(c)] = true
			continue
		}
		res, err := s.applyCommand(n, command{Kind: kindRatify, Ratify: &r})
		if errors.Is(err, errInvalidCommand) {
			s.log.Warn("the FSM refuses to order this proposal", "proposal", c.ProposalID, "err", err)
			s.duty.refused[candKey(c)] = true
			continue
		}
		if err != nil {
			s.log.Warn("ratify not committed; will retry", "proposal", c.ProposalID, "err", err)
			return
		}
		s.log.Info("ordered", "proposal", c.ProposalID, "seq", res.Seq, "duplicate", res.Duplicate)
	}
}

// Apply commits a ratify command as leader without any check: what a
// dishonest validator could do with its own raft. Validators re-check
// every slot against their own op sets, so this cannot decide anything;
// it exists for operators and tests. It fails on a node that is not the raft leader.
func (s *Service) Apply(r Ratify) (ApplyResult, error) {
	n := s.current()
	if n == nil || !n.isLeader() {
		return ApplyResult{}, errNotLeader
	}
	return s.applyCommand(n, command{Kind: kindRatify, Ratify: &r})
}

// errNotLeader is returned by Apply on a node that is not the raft leader.
var errNotLeader = errors.New("raftnet: not the raft leader")

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
