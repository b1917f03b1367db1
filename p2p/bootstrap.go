package p2p

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// parseBootstrap parses multiaddrs that end in /p2p/<peer ID>, merging
// several addresses of one peer.
func parseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	return parsePeerAddrs("bootstrap", addrs)
}

// parsePeerAddrs parses the multiaddrs of the config field what, which
// must end in /p2p/<peer ID>, merging several addresses of one peer.
func parsePeerAddrs(what string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %s address %q: %v (want /ip4/…/tcp/…/p2p/<peer ID>)", ErrInvalidConfig, what, a, err)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

const (
	bootstrapTick       = time.Second
	bootstrapMinBackoff = time.Second
	bootstrapMaxBackoff = time.Minute
	dialTimeout         = 10 * time.Second
)

// keepBootstrapped keeps a connection to every bootstrap peer, redialling a
// lost one with exponential backoff (1 s doubling to 1 min).
func (h *Host) keepBootstrapped(ctx context.Context, peers []peer.AddrInfo) {
	type state struct {
		next    time.Time
		backoff time.Duration
	}
	st := make([]state, len(peers))
	for i, p := range peers {
		h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
		h.ConnManager().Protect(p.ID, "bootstrap")
		st[i].backoff = bootstrapMinBackoff
	}
	t := time.NewTicker(bootstrapTick)
	defer t.Stop()
	for {
		now := time.Now()
		for i, p := range peers {
			if p.ID == h.ID() || h.Network().Connectedness(p.ID) == network.Connected {
				st[i].backoff = bootstrapMinBackoff
				continue
			}
			if now.Before(st[i].next) {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err := h.Connect(dctx, p)
			cancel()
			if err != nil {
				h.log.Debug("bootstrap dial failed", "peer", p.ID, "retry_in", st[i].backoff, "err", err)
				st[i].next = time.Now().Add(st[i].backoff)
				st[i].backoff = min(2*st[i].backoff, bootstrapMaxBackoff)
				continue
			}
			h.log.Info("connected to bootstrap peer", "peer", p.ID)
			st[i].backoff = bootstrapMinBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
