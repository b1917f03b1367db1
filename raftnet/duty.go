package raftnet

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// dutyState is the loop's memory of the seq being decided and of what
// the leader has left undone.
type dutyState struct {
	seq   uint64    // the seq being decided (Governance.NextSeq)
	since time.Time // when seq got its slot on this node (zero: no slot yet)
	slot  Slot      // the slot seq had then
	last  Progress
	// waitingSince: approved proposals without a slot, since when.
	waitingSince map[string]time.Time
	// refused: proposals the FSM refused to order (do not retry them).
	refused map[string]bool
	// alignedTo: seqs up to here were checked against finality (leader).
	alignedTo uint64
}

func newDutyState() dutyState {
	return dutyState{waitingSince: map[string]time.Time{}, refused: map[string]bool{}}
}

// dutyTick does this validator's part for the next seq and, on the
// leader, orders, aligns and voids; on a follower it watches the leader.
func (s *Service) dutyTick(n *raftNode) {
	now := time.Now()
	seq := s.deps.Governance.NextSeq()
	sl, ok := n.fsm.slot(seq)
	var slot *Slot
	if ok {
		slot = &sl
	}
	d := &s.duty
	if seq != d.seq || !ok || !sl.same(d.slot) {
		d.seq, d.slot, d.since = seq, sl, time.Time{}
	}
	var p Progress
	var err error
	if s.isValidator(s.deps.Validators()) {
		p, err = s.deps.Governance.Endorse(s.ctx, seq, slot)
	}
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("endorse", "seq", seq, "err", err)
	}
	// The stall clock of a slot starts once this validator's own view of
	// it settled (it attests, refuses, or its package preparation ended):
	// a slow download or dry run is not a stall.
	if ok && d.since.IsZero() && !p.Preparing {
		d.since = now
	}
	if p.Ratified != "" && p.Ratified != d.last.Ratified {
		s.events.emit(Event{Kind: EventRatified, Seq: seq, EntryHash: p.Ratified})
	}
	if p.Unsignable != "" && p.Unsignable != d.last.Unsignable {
		s.log.Warn("the slot ordered at this seq cannot be signed here", "seq", seq, "proposal", sl.ProposalID, "why", p.Unsignable)
	}
	d.last = p
	if n.isLeader() {
		s.align(n, seq)
		s.maybeVoid(n, seq, slot, p, now)
		s.ratifyApproved(n)
		return
	}
	s.watchLeader(n, seq, slot, p, now)
}

// align commits, for every seq that became final, a Set of its slot to
// the final entry — also when this leader's own slot already matches: a
// follower whose log a dishonest leader forked (it got another command at
// that index) converges through it, and it costs one raft entry per final
// seq. On consistent FSMs the Set changes nothing.
func (s *Service) align(n *raftNode, seq uint64) {
	d := &s.duty
	if d.alignedTo >= seq-1 {
		return
	}
	for q := d.alignedTo + 1; q < seq; q++ {
		f, ok := s.deps.Governance.Final(q)
		if !ok {
			return
		}
		f.Seq = 0
		res, err := s.applyCommand(n, command{Kind: kindSet, Set: &setCommand{Seq: q, Slot: f}})
		if err != nil {
			s.log.Warn("align slot with the final entry", "seq", q, "err", err)
			return
		}
		s.log.Info("aligned slot with the final entry", "seq", q, "proposal", f.ProposalID, "void", f.Void, "duplicate", res.Duplicate)
		d.alignedTo = q
	}
}

// maybeVoid voids the slot at seq when it stalled for StallTimeout and no
// entry there has a quorum of attests: no honest validator signs an entry
// without such a quorum, so nothing at seq can be final yet and the void
// is safe; every validator then attests the void entry instead.
func (s *Service) maybeVoid(n *raftNode, seq uint64, slot *Slot, p Progress, now time.Time) {
	d := &s.duty
	if slot == nil || slot.Void || p.Final || p.Quorum != "" || d.since.IsZero() || now.Sub(d.since) < s.cfg.StallTimeout {
		return
	}
	if _, err := s.applyCommand(n, command{Kind: kindVoid, Void: &voidCommand{Seq: seq}}); err != nil {
		s.log.Warn("void stalled slot", "seq", seq, "err", err)
		return
	}
	why := p.Unsignable
	if why == "" {
		why = p.Waiting
	}
	s.log.Warn("voided a slot nobody signed", "seq", seq, "proposal", slot.ProposalID, "stalled", now.Sub(d.since).Round(time.Millisecond), "here", why)
	s.events.emit(Event{Kind: EventVoided, Seq: seq})
	d.since = now
}

// watchLeader bans the leader when it leaves the log stalled past
// StallTimeout+LeaderGrace, or an approved proposal without a slot for
// LeaderGrace: an honest leader voids or orders by then. A ban stops raft
// traffic with it for BanDuration, so the other validators elect another.
func (s *Service) watchLeader(n *raftNode, seq uint64, slot *Slot, p Progress, now time.Time) {
	d := &s.duty
	leader := n.leader()
	if leader == "" || leader == s.self {
		return
	}
	if slot != nil && !p.Final && p.Quorum == "" && !d.since.IsZero() && now.Sub(d.since) > s.cfg.StallTimeout+s.cfg.LeaderGrace {
		s.ban(leader, fmt.Sprintf("seq %d stalled for %v without a void", seq, now.Sub(d.since).Round(time.Second)))
		d.since = now
		return
	}
	pending := map[string]bool{}
	for _, c := range s.deps.Governance.Approved(now) {
		if n.fsm.has(c) || d.refused[candKey(c)] {
			continue
		}
		pending[candKey(c)] = true
		if _, ok := d.waitingSince[candKey(c)]; !ok {
			d.waitingSince[candKey(c)] = now
		}
	}
	for id, t := range d.waitingSince {
		switch {
		case !pending[id]:
			delete(d.waitingSince, id)
		case now.Sub(t) > s.cfg.LeaderGrace:
			s.ban(leader, fmt.Sprintf("approved proposal %s left without a slot for %v", id, now.Sub(t).Round(time.Second)))
			clear(d.waitingSince)
			return
		}
	}
}

// ban stops raft traffic with p for BanDuration and resets open streams.
func (s *Service) ban(p peer.ID, why string) {
	s.banMu.Lock()
	s.banned[p] = time.Now().Add(s.cfg.BanDuration)
	s.banMu.Unlock()
	s.log.Warn("stopped following the raft leader", "leader", p, "for", s.cfg.BanDuration, "why", why)
	s.events.emit(Event{Kind: EventBanned, Peer: p, Reason: why})
	for _, c := range s.deps.Host.Network().ConnsToPeer(p) {
		for _, st := range c.GetStreams() {
			if st.Protocol() == s.proto {
				st.Reset()
			}
		}
	}
}

// Banned lists the validators this node currently refuses raft traffic
// with, and until when.
func (s *Service) Banned() map[peer.ID]time.Time {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	out := map[peer.ID]time.Time{}
	now := time.Now()
	for p, t := range s.banned {
		if now.Before(t) {
			out[p] = t
		}
	}
	return out
}

// applyCommand commits a command through raft and returns the FSM's result.
func (s *Service) applyCommand(n *raftNode, c command) (ApplyResult, error) {
	b, err := encodeCommand(c)
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
