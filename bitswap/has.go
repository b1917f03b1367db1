package bitswap

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Has reports whether the node holds the whole package rooted at c
// (every block of its DAG, locally). It never touches the network.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	return s.complete(ctx, c)
}

// complete is true for a kept root (kept roots were complete when they
// were recorded and blocks are never deleted) or when a local walk of the
// DAG finds every block.
func (s *Store) complete(ctx context.Context, c cid.Cid) (bool, error) {
	if !c.Defined() {
		return false, fmt.Errorf("%w: undefined CID", ErrInvalidCID)
	}
	if ok, err := s.pins.has(ctx, c); err != nil || ok {
		return ok, err
	}
	return s.walkLocal(ctx, c)
}

func (s *Store) walkLocal(ctx context.Context, c cid.Cid) (bool, error) {
	n, err := s.local.Get(ctx, c)
	if ipld.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bitswap: read %s: %w", c, err)
	}
	for _, l := range n.Links() {
		ok, err := s.walkLocal(ctx, l.Cid)
		if err != nil || !ok {
			return ok, err
		}
	}
	return true, nil
}
