package gossip

import (
	"sort"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// finalLog derives the final execution log (docs/governance.md
// "Finality"): for each seq from 1, the entry signed by more than the
// finality threshold of the validator set in force for that seq — the
// rules after entry seq−1, never the node's current rules — that chains
// onto the final entry seq−1, or the entry already marked final on this
// node. A validator that signed two different entries at a seq counts for
// neither. The log stops at the first seq with no such entry, or whose
// rules this node does not know yet (it has not executed seq−1).
//
// newly lists entries that became final (or replaced a mark) in this call;
// conflicts describes evidence of more than one final entry at a seq.
//
// prefix is a final log this node already derived whose seqs nothing
// changed since (no ratify op arrived for them): evaluation starts after
// it.
func (st *store) finalLog(rulesFor func(uint64) (genesis.Rules, bool), prefix []execlog.Entry) (log []execlog.Entry, newly []execlog.Entry, conflicts []string) {
	prev := ""
	log = append(log, prefix...)
	if len(prefix) > 0 {
		prev = prefix[len(prefix)-1].Hash()
	}
	for seq := uint64(len(prefix)) + 1; ; seq++ {
		mark, marked := st.final[seq]
		var winners []string
		if r, known := rulesFor(seq); known {
			needed := r.Governance.FinalityNeeded(len(r.Validators))
			counts := map[string]int{}
			for _, v := range r.Validators {
				if h, eq := st.signature(seq, v); h != "" && !eq {
					counts[h]++
				}
			}
			for h, n := range counts {
				if n < needed {
					continue
				}
				e, _ := st.entryAt(seq, h)
				if e.PrevEntryHash != prev {
					conflicts = append(conflicts, "seq "+strconv.FormatUint(seq, 10)+": entry "+h+
						" has the validators' signatures but does not chain onto "+prev)
					continue
				}
				winners = append(winners, h)
			}
		}
		if marked && !contains(winners, mark) {
			// A mark keeps an entry final on this node (its signers may
			// have been found equivocating since, or the rules moved on).
			if e, ok := st.entryAt(seq, mark); ok && e.PrevEntryHash == prev {
				winners = append(winners, mark)
			}
		}
		if len(winners) == 0 {
			return log, newly, conflicts
		}
		sort.Strings(winners)
		if len(winners) > 1 {
			// Impossible while at most f validators are byzantine: two
			// quorums share an honest validator, who signs one entry per
			// seq. Every node that sees both keeps the smaller hash; an
			// executor that ran the other halts (node/executor.go).
			conflicts = append(conflicts, "seq "+strconv.FormatUint(seq, 10)+": entries "+
				strings.Join(winners, ",")+" are both final; keeping the first")
		}
		pick := winners[0]
		e, _ := st.entryAt(seq, pick)
		if !marked || mark != pick {
			newly = append(newly, e)
		}
		log = append(log, e)
		prev = pick
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Evidence is a validator's two signatures on different entries at one
// seq: proof that it broke the protocol.
type Evidence struct {
	Seq       uint64  `json:"seq"`
	Validator peer.ID `json:"validator"`
	// EntryHashes are the two entries it signed, sorted.
	EntryHashes []string `json:"entry_hashes"`
	// OpIDs are the ratify ops that prove it.
	OpIDs []string `json:"op_ids"`
}

// Equivocations lists every validator that signed two different entries at
// one seq, by seq then validator. Their signatures at that seq count
// toward no entry's finality.
func (s *Service) Equivocations() []Evidence {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Evidence
	for seq, m := range s.st.ratifies {
		for v, ops := range m {
			if len(ops) < 2 {
				continue
			}
			ev := Evidence{Seq: seq, Validator: v}
			for _, op := range ops {
				ev.EntryHashes = append(ev.EntryHashes, op.Ratify.EntryHash)
				ev.OpIDs = append(ev.OpIDs, op.ID.String())
			}
			sort.Strings(ev.EntryHashes)
			sort.Strings(ev.OpIDs)
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seq != out[j].Seq {
			return out[i].Seq < out[j].Seq
		}
		return out[i].Validator < out[j].Validator
	})
	return out
}
