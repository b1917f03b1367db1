package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
)

// runPrefetch fetches the package of every approved or ratified proposal
// with an ipfs:// URL as soon as the vote decides it, so that when the entry
// becomes final the executor finds the blocks in the local store instead of
// starting the download then. It only warms the content store: the executor
// still verifies hash and size of what it reads. Each CID is fetched at
// most once per run (a failed prefetch is left to the executor's retries).
//
// A validator starts at once (it must hold the package to attest); every
// other node waits prefetchDelay first, so the nodes of a network do not
// all ask the proposer (often a validator) in the same second, and the
// later ones find the blocks at the nodes that started earlier.
func (n *Node) runPrefetch(ctx context.Context) {
	events, cancel := n.gossip.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[string]bool{} // package URLs
	decided := map[string]bool{} // proposal IDs whose package was looked at
	for {
		var ids []string
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			ids = pendingProposals(ev, events, decided)
		}
		for _, id := range ids {
			// Every vote changes its proposal: look at each changed
			// proposal once per burst of events, and not again once it
			// passed. A tally costs O(votes), so a node of a 1000-node
			// network would otherwise spend O(votes²) on one proposal.
			p, err := n.gossip.Proposal(id, time.Now())
			if err != nil || (p.Status != gossip.StatusApproved && p.Status != gossip.StatusRatified) {
				continue
			}
			decided[id] = true
			url := p.Body.PackageURL
			if !strings.HasPrefix(url, "ipfs://") || started[url] {
				continue
			}
			started[url] = true
			size := min(p.Body.PackageSize, n.cfg.Upgrade.MaxPackageBytes)
			delay := n.prefetchDelay(url)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if delay > 0 {
					t := time.NewTimer(delay)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				rc, err := n.fetchIPFS(ctx, url, size)
				if err != nil {
					n.log.Debug("prefetch", "package", url, "err", err)
					return
				}
				defer rc.Close()
				if _, err := io.Copy(io.Discard, rc); err != nil {
					n.log.Debug("prefetch", "package", url, "err", err)
				}
			}()
		}
	}
}

// pendingProposals returns the proposals that first and every event
// already queued behind it changed, each once and in order of first
// mention, leaving out those in skip.
func pendingProposals(first gossip.Event, events <-chan gossip.Event, skip map[string]bool) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(ev gossip.Event) {
		if ev.Kind == gossip.ProposalChanged && !skip[ev.ProposalID] && !seen[ev.ProposalID] {
			seen[ev.ProposalID] = true
			ids = append(ids, ev.ProposalID)
		}
	}
	add(first)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return ids
			}
			add(ev)
		default:
			return ids
		}
	}
}

// prefetchDelay is how long this node waits before it prefetches url: 0 on
// a validator, else a fixed offset in [0, PrefetchSpread) derived from the
// node's ID and the URL — spread evenly over the nodes, the same on every
// run, different per package.
func (n *Node) prefetchDelay(url string) time.Duration {
	if n.cfg.PrefetchSpread <= 0 || n.isValidator() {
		return 0
	}
	return spreadOffset(n.host.ID().String()+"\x00"+url, n.cfg.PrefetchSpread)
}

// spreadOffset maps key uniformly onto [0, window).
func spreadOffset(key string, window time.Duration) time.Duration {
	sum := sha256.Sum256([]byte(key))
	x := binary.BigEndian.Uint64(sum[:8])
	hi, _ := bits.Mul64(x, uint64(window))
	return time.Duration(hi)
}
