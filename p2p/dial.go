package p2p

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Connect dials ai like host.Host.Connect, and once more when the dial
// failed in the security handshake or the swarm refused it for its dial
// backoff.
//
// TCP listens and dials from one reused port (hole punching needs it), so two
// nodes that dial each other at the same moment — discovery finds both ways
// at once, two operators connect their nodes — can make one TCP connection by
// simultaneous open. Both ends of it then speak as the client of the security
// handshake and both dials fail ("tls: received unexpected handshake message
// of type *tls.clientHelloMsg"); the swarm also puts the address on its dial
// backoff. A retry after a short random pause breaks the tie: it bypasses
// the backoff, and by then the other node's retry may already have connected
// us. (Two retries: the two random pauses can meet again, rarely.)
//
// A clash in a dial that is not Connect's — the DHT querying the peer while
// the peer announces to us — leaves the address on the backoff too, and
// every Connect would fail for the next seconds although the peer is
// there: a fetcher could not reach the provider the DHT just named. The
// callers of Connect (bootstrap, discovery, providers of a fetch) want
// that peer now and pace their own attempts, so a dial in backoff is made
// once anyway.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	err := h.Host.Connect(ctx, ai)
	if err != nil && errors.Is(err, swarm.ErrDialBackoff) && ctx.Err() == nil {
		err = h.Host.Connect(network.WithForceDirectDial(ctx, "explicit connect to a peer in dial backoff"), ai)
	}
	for attempt := 1; attempt <= handshakeRetries && err != nil && isHandshakeClash(err); attempt++ {
		pause := time.Duration(attempt*(10+rand.IntN(90))) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		if h.Network().Connectedness(ai.ID) == network.Connected {
			return nil
		}
		err = h.Host.Connect(network.WithForceDirectDial(ctx, "retry after a simultaneous open"), ai)
	}
	return err
}

// Dialer is the libp2p host with Connect replaced by this Host's, for
// components that take a host.Host and dial peers themselves (bitswap
// dialling the providers it finds).
func (h *Host) Dialer() host.Host { return dialer{Host: h.Host, h: h} }

type dialer struct {
	host.Host
	h *Host
}

func (d dialer) Connect(ctx context.Context, ai peer.AddrInfo) error { return d.h.Connect(ctx, ai) }

// handshakeRetries bounds the dials Connect adds after a handshake clash.
const handshakeRetries = 2

// isHandshakeClash reports a dial that reached the peer but failed in the
// security handshake, which is how a TCP simultaneous open ends. The swarm
// reports it only as text inside its DialError.
func isHandshakeClash(err error) bool {
	return strings.Contains(err.Error(), "failed to negotiate security protocol")
}
