package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/upgrade"
)

// runPrefetch fetches the package of every approved or ratified proposal
// with an ipfs:// URL as soon as the vote decides it, so that when the entry
// becomes final the executor finds the blocks in the local store instead of
// starting the download then, and (dry_run_on_approval) dry-runs it on the
// current state so the executor can commit that outcome. It only warms
// caches: the executor still verifies hash and size of what it reads. Each
// package is looked at most once per run (a failure is left to the
// executor's retries).
//
// A validator starts at once (it must hold the package to attest); every
// other node waits prefetchDelay first, so the nodes of a network do not
// all ask the proposer (often a validator) in the same second, and the
// later ones find the blocks at the nodes that started earlier.
func (n *Node) runPrefetch(ctx context.Context) {
	events, cancel := n.gossip.Subscribe(gossip.ProposalChanged)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[string]bool{} // package URLs
	decided := map[string]bool{} // proposal IDs whose package was looked at
	pending := map[string]bool{} // changed proposals not looked at yet
	var look <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == gossip.ProposalChanged && !decided[ev.ProposalID] {
				pending[ev.ProposalID] = true
				if look == nil {
					look = time.After(prefetchSettle)
				}
			}
			continue
		case <-look:
			look = nil
		}
		// Every vote changes its proposal, and a tally costs O(votes):
		// looking at it on every vote would cost a node of a 1000-node
		// network O(votes²) per proposal. So changes are collected for
		// prefetchSettle and each changed proposal looked at once, and
		// never again once it passed.
		ids := slices.Sorted(maps.Keys(pending))
		clear(pending)
		for _, id := range ids {
			p, err := n.gossip.Proposal(id, time.Now())
			if err != nil || (p.Status != gossip.StatusApproved && p.Status != gossip.StatusRatified) {
				continue
			}
			decided[id] = true
			url := p.Body.PackageURL
			ipfs := strings.HasPrefix(url, "ipfs://")
			// A scheduled upgrade is dry-run when its entry is final
			// (upgrade.Manager.Schedule); cancels and rollbacks have no
			// package.
			dryRun := n.cfg.DryRunOnApproval && p.Body.ActivateAt == 0 && p.Body.ActivateAfter == 0
			if url == "" || (!ipfs && !dryRun) || started[url] {
				continue
			}
			started[url] = true
			size := min(p.Body.PackageSize, n.cfg.Upgrade.MaxPackageBytes)
			delay := n.prefetchDelay(url)
			pkg := upgrade.Package{ProposalID: id, Version: p.Body.Version, URL: url,
				SHA256: p.Body.PackageHash, Size: p.Body.PackageSize}
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
				if ipfs && !n.prefetchIPFS(ctx, url, size) {
					return
				}
				if dryRun {
					n.dryRunApproved(ctx, pkg)
				}
			}()
		}
	}
}

// prefetchIPFS fetches the blocks of an ipfs:// package into the content
// store; it reports whether it got them all.
func (n *Node) prefetchIPFS(ctx context.Context, url string, size int64) bool {
	rc, err := n.fetchIPFS(ctx, url, size)
	if err != nil {
		n.log.Debug("prefetch", "package", url, "err", err)
		return false
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		n.log.Debug("prefetch", "package", url, "err", err)
		return false
	}
	return true
}

// dryRunApproved runs an approved proposal's package on the current state,
// as the executor will once its entry is final (if no other entry changes
// the state first): the executor then commits this outcome instead of
// running the package again (upgrade's run memo), so the time from
// finality to executed is a commit, not a sandbox run, and the nodes of a
// network spread their runs over the prefetch window instead of all
// running at the moment the entry becomes final. A failure here changes
// nothing: the executor runs the package itself.
func (n *Node) dryRunApproved(ctx context.Context, p upgrade.Package) {
	res, err := n.upgrades.Test(ctx, p)
	switch {
	case err != nil:
		n.log.Debug("dry run of approved package", "proposal", p.ProposalID, "err", err)
	case !res.Success:
		n.log.Info("dry run of approved package fails", "proposal", p.ProposalID, "class", res.ErrorClass, "err", res.Error)
	default:
		n.log.Debug("dry run of approved package", "proposal", p.ProposalID, "state_sha256", res.StateSHA256, "duration", res.Duration)
	}
}

// prefetchSettle is how long the prefetcher collects proposal changes
// before it looks at the changed proposals.
const prefetchSettle = 200 * time.Millisecond

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
