package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// ErrCorruptBlock describes a block in the local blockstore whose bytes do
// not hash to its CID (disk corruption or tampering). Blocks received from
// peers are hash-checked by bitswap itself before they are stored.
var ErrCorruptBlock = errors.New("bitswap: corrupt block")

// verifyingBlockstore re-hashes every block it reads, so the node never
// serves or reassembles a block whose bytes do not match its CID. A corrupt
// block is deleted and reported as not found: the fetch path then gets it
// again from peers and stores the good bytes, and the server answers
// DONT_HAVE instead of sending garbage.
type verifyingBlockstore struct {
	blockstore.Blockstore
	log *slog.Logger
}

var _ blockstore.Blockstore = (*verifyingBlockstore)(nil)

// Get returns the block only if its bytes hash to c.
func (v *verifyingBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := v.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := checkBlock(c, b.RawData()); err != nil {
		v.log.Error("dropping corrupt block from the blockstore", "cid", c, "err", err)
		if derr := v.Blockstore.DeleteBlock(ctx, c); derr != nil {
			return nil, errors.Join(err, derr)
		}
		return nil, ipld.ErrNotFound{Cid: c}
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
