package node

import (
	"context"
	"io"
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
func (n *Node) runPrefetch(ctx context.Context) {
	events, cancel := n.gossip.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind != gossip.ProposalChanged {
				continue
			}
			p, err := n.gossip.Proposal(ev.ProposalID, time.Now())
			if err != nil || (p.Status != gossip.StatusApproved && p.Status != gossip.StatusRatified) {
				continue
			}
			url := p.Body.PackageURL
			if !strings.HasPrefix(url, "ipfs://") || started[url] {
				continue
			}
			started[url] = true
			size := min(p.Body.PackageSize, n.cfg.Upgrade.MaxPackageBytes)
			wg.Add(1)
			go func() {
				defer wg.Done()
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
