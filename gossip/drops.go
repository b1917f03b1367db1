package gossip

import (
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

var _ pubsub.RawTracer = (*dropTracer)(nil)

// Drops counts what GossipSub dropped on this node for lack of queue room.
// A dropped op is repaired by lazy gossip (IHAVE/IWANT) or, failing that,
// by the periodic op-set sync minutes later, so drops show up as a tail of
// nodes that learn an op late.
type Drops struct {
	// RPCs is outbound RPCs dropped because a peer's send queue was full.
	RPCs uint64
	// Validation is incoming messages dropped before validation because
	// the validation queue was full or the validators were saturated.
	Validation uint64
	// Undeliverable is validated messages dropped because this node's own
	// subscription did not keep up.
	Undeliverable uint64
}

// dropTracer is a GossipSub raw tracer that only counts drops.
type dropTracer struct {
	rpcs, validation, undeliverable atomic.Uint64
}

func (d *dropTracer) drops() Drops {
	return Drops{RPCs: d.rpcs.Load(), Validation: d.validation.Load(), Undeliverable: d.undeliverable.Load()}
}

func (d *dropTracer) DropRPC(*pubsub.RPC, peer.ID) { d.rpcs.Add(1) }

func (d *dropTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull || reason == pubsub.RejectValidationThrottled {
		d.validation.Add(1)
	}
}

func (d *dropTracer) UndeliverableMessage(*pubsub.Message) { d.undeliverable.Add(1) }

func (d *dropTracer) AddPeer(peer.ID, protocol.ID)             {}
func (d *dropTracer) RemovePeer(peer.ID)                       {}
func (d *dropTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (d *dropTracer) OnClosedOutboundStream(peer.ID)           {}
func (d *dropTracer) Join(string)                              {}
func (d *dropTracer) Leave(string)                             {}
func (d *dropTracer) Graft(peer.ID, string)                    {}
func (d *dropTracer) Prune(peer.ID, string)                    {}
func (d *dropTracer) ValidateMessage(*pubsub.Message)          {}
func (d *dropTracer) DeliverMessage(*pubsub.Message)           {}
func (d *dropTracer) DuplicateMessage(*pubsub.Message)         {}
func (d *dropTracer) ThrottlePeer(peer.ID)                     {}
func (d *dropTracer) RecvRPC(*pubsub.RPC)                      {}
func (d *dropTracer) SendRPC(*pubsub.RPC, peer.ID)             {}

// Drops reports what GossipSub dropped on this node since it started.
func (s *Service) Drops() Drops { return s.drops.drops() }
