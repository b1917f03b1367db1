package gossip

import (
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Signers lists the validators whose ratify ops for entry (seq, entryHash)
// this node holds, sorted; the API shows them as the entry's signatures.
// An equivocating validator is listed under each entry it signed.
func (s *Service) Signers(seq uint64, entryHash string) []peer.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []peer.ID
	for v, ops := range s.st.ratifies[seq] {
		for _, op := range ops {
			if op.Ratify.EntryHash == entryHash {
				out = append(out, v)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
