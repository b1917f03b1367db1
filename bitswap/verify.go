package bitswap

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// ErrCorruptBlock is returned when a block read from the local blockstore
// does not hash to its CID (disk corruption or tampering). Blocks received
// from peers are hash-checked by bitswap itself before they are stored.
var ErrCorruptBlock = errors.New("bitswap: corrupt block")

// verifyingBlockstore re-hashes every block it reads, so the node never
// serves or reassembles a block whose bytes do not match its CID.
type verifyingBlockstore struct {
	blockstore.Blockstore
}

var _ blockstore.Blockstore = (*verifyingBlockstore)(nil)

// Get returns the block only if its bytes hash to c.
func (v *verifyingBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := v.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := checkBlock(c, b.RawData()); err != nil {
		return nil, err
	}
	return b, nil
}

// checkBlock recomputes data's hash with c's hash function.
func checkBlock(c cid.Cid, data []byte) error {
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptBlock, c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("%w: %s: stored bytes hash to %s", ErrCorruptBlock, c, got)
	}
	return nil
}
