package gossip

import (
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Signers lists the validators whose ratify ops for entry (seq, entryHash)
// this node holds, sorted; the API shows them as the entry's signatures.
func (s *Service) Signers(seq uint64, entryHash string) []peer.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]peer.ID, 0, len(s.st.ratifies[seq][entryHash]))
	for v := range s.st.ratifies[seq][entryHash] {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
