package gossip

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/synapse-p2p/synapse-p2p/execlog"
)

// SignEntryOp signs a ratify or attest op (kind) for entry e with key, on
// network netID, as op number seq of its author; proposalOp is the op ID
// of e's proposal (ignored for a void entry). It is for tools and tests
// that relay or examine signatures: a validator signs through Endorse,
// which checks the entry and never signs twice at one seq — this checks
// nothing of the sort.
func SignEntryOp(key crypto.PrivKey, netID, kind string, e execlog.Entry, proposalOp OpID, seq uint64) ([]byte, error) {
	if kind != KindRatify && kind != KindAttest {
		return nil, fmt.Errorf("%w: %q is not an entry op kind", ErrInvalidOp, kind)
	}
	var deps []OpID
	if !e.Void {
		deps = []OpID{proposalOp}
	}
	op, err := encodeOp(key, netID, opDraft{Kind: kind, Seq: seq, Deps: deps,
		Body: ratifyBody{Entry: e, EntryHash: e.Hash()}})
	if err != nil {
		return nil, err
	}
	return op.Raw, nil
}

// Relay validates an op received out of band (a file, another network
// path), adds it like any received op and floods it to the topic. It
// returns Ingest's errors (ErrDuplicate when already known).
func (s *Service) Relay(ctx context.Context, raw []byte) error {
	if err := s.ingest(raw, ""); err != nil && !errors.Is(err, ErrMissingDeps) {
		return err
	}
	return s.topic.Publish(ctx, raw)
}
