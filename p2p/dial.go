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
// failed in the security handshake.
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
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return h.connect(ctx, ai, h.Host.Connect(ctx, ai))
}

// connect retries the dial that ended in err after a handshake clash.
func (h *Host) connect(ctx context.Context, ai peer.AddrInfo, err error) error {
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

// Dialer is the libp2p host for components that take a host.Host and dial
// the peers the DHT names as providers of what they fetch (bitswap). Its
// Connect retries a handshake clash like Host.Connect and, unlike it, dials
// once through the swarm's dial backoff: a clash in a dial that was not
// Connect's (the fetcher's DHT query meeting the provider's announcement)
// leaves the provider's address on the backoff, and every dial to the peer
// the DHT just named would fail for seconds although it is there — a fetch
// waited 30 s for it. Discovery and bootstrap keep the backoff: the
// records they dial may be stale, and each forced dial to a departed node
// would cost a dial timeout.
func (h *Host) Dialer() host.Host { return dialer{Host: h.Host, h: h} }

type dialer struct {
	host.Host
	h *Host
}

func (d dialer) Connect(ctx context.Context, ai peer.AddrInfo) error {
	err := d.Host.Connect(ctx, ai)
	if err != nil && errors.Is(err, swarm.ErrDialBackoff) && ctx.Err() == nil {
		err = d.Host.Connect(network.WithForceDirectDial(ctx, "dial a named provider in dial backoff"), ai)
	}
	return d.h.connect(ctx, ai, err)
}

// handshakeRetries bounds the dials Connect adds after a handshake clash.
const handshakeRetries = 2

// isHandshakeClash reports a dial that reached the peer but failed in the
// security handshake, which is how a TCP simultaneous open ends. The swarm
// reports it only as text inside its DialError.
func isHandshakeClash(err error) bool {
	return strings.Contains(err.Error(), "failed to negotiate security protocol")
}
