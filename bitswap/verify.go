package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

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
//
// Hashing is the main CPU cost of serving, so a block is checked once per
// process: blocks this process wrote (hash-checked by bitswap on receipt
// or computed by the importer) and blocks already checked are remembered
// in a bounded set of multihashes and not hashed again.
type verifyingBlockstore struct {
	blockstore.Blockstore
	log  *slog.Logger
	good knownGood
}

// knownGood is a bounded set of multihashes: two generations of
// knownGoodGen entries each.
type knownGood struct {
	mu          sync.Mutex
	cur, former map[string]struct{}
}

const knownGoodGen = 4096

func (k *knownGood) add(c cid.Cid) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		k.cur = map[string]struct{}{}
	}
	k.cur[string(c.Hash())] = struct{}{}
	if len(k.cur) >= knownGoodGen {
		k.former, k.cur = k.cur, map[string]struct{}{}
	}
}

func (k *knownGood) has(c cid.Cid) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	mh := string(c.Hash())
	_, a := k.cur[mh]
	_, b := k.former[mh]
	return a || b
}

// Put stores b and remembers it as good.
func (v *verifyingBlockstore) Put(ctx context.Context, b blocks.Block) error {
	if err := v.Blockstore.Put(ctx, b); err != nil {
		return err
	}
	v.good.add(b.Cid())
	return nil
}

// PutMany stores bs and remembers them as good.
func (v *verifyingBlockstore) PutMany(ctx context.Context, bs []blocks.Block) error {
	if err := v.Blockstore.PutMany(ctx, bs); err != nil {
		return err
	}
	for _, b := range bs {
		v.good.add(b.Cid())
	}
	return nil
}

var _ blockstore.Blockstore = (*verifyingBlockstore)(nil)

// Get returns the block only if its bytes hash to c.
func (v *verifyingBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := v.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if v.good.has(c) {
		return b, nil
	}
	if err := checkBlock(c, b.RawData()); err != nil {
		v.log.Error("dropping corrupt block from the blockstore", "cid", c, "err", err)
		if derr := v.Blockstore.DeleteBlock(ctx, c); derr != nil {
			return nil, errors.Join(err, derr)
		}
		return nil, ipld.ErrNotFound{Cid: c}
	}
	v.good.add(c)
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
