package bitswap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunk "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
)

// AddResult describes an imported package.
type AddResult struct {
	// CID is the UnixFS root, CIDv0 ("Qm…"), equal to what `ipfs add`
	// with Kubo's defaults prints for the same bytes.
	CID cid.Cid
	// SHA256 is the lowercase hex SHA-256 of the bytes.
	SHA256 string
	// Size is the number of bytes.
	Size int64
}

// Add imports r as a UnixFS file with Kubo's `ipfs add` defaults: 256 KiB
// fixed-size chunks, balanced layout with 174 links per node, dag-pb leaves
// (no raw leaves), CIDv0. The package is kept and its announcement on the
// DHT is queued (Add does not wait for the DHT; use Provide for that).
func (s *Store) Add(ctx context.Context, r io.Reader) (AddResult, error) {
	if err := s.checkOpen(); err != nil {
		return AddResult{}, err
	}
	// Through the block service, so bitswap hears of the new blocks and
	// serves peers that already want them.
	res, err := importFile(ctx, s.dag, r)
	if err != nil {
		return AddResult{}, err
	}
	if err := s.keep(ctx, res.CID); err != nil {
		return AddResult{}, err
	}
	s.log.Info("added package", "cid", res.CID, "sha256", res.SHA256, "size", res.Size)
	return res, nil
}

// Import is Add for a node that is not running: it writes the package into
// the blocks of ds (the node's datastore, namespace /blocks) and records it
// as kept, so the node announces it when it starts. Use it only while no
// Store is open on ds (badger allows one process per datastore).
func Import(ctx context.Context, ds datastore.Batching, r io.Reader) (AddResult, error) {
	if ds == nil {
		return AddResult{}, fmt.Errorf("%w: no datastore", ErrInvalidConfig)
	}
	bs := blockstore.NewBlockstore(ds)
	res, err := importFile(ctx, merkledag.NewDAGService(blockservice.New(bs, nil)), r)
	if err != nil {
		return AddResult{}, err
	}
	if err := newPinSet(ds).add(ctx, res.CID); err != nil {
		return AddResult{}, err
	}
	return res, nil
}

// importFile builds the UnixFS DAG of r with Kubo's defaults into dag.
func importFile(ctx context.Context, dag ipld.DAGService, r io.Reader) (AddResult, error) {
	h := sha256.New()
	cr := &ctxReader{ctx: ctx, r: io.TeeReader(r, h)}
	batch := ipld.NewBufferedDAG(ctx, dag)
	params := helpers.DagBuilderParams{
		Dagserv:    batch,
		Maxlinks:   helpers.DefaultLinksPerBlock,
		CidBuilder: merkledag.V0CidPrefix(),
		RawLeaves:  false,
	}
	db, err := params.New(chunk.NewSizeSplitter(cr, chunk.DefaultBlockSize))
	if err != nil {
		return AddResult{}, fmt.Errorf("bitswap: add: %w", err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return AddResult{}, fmt.Errorf("bitswap: add: %w", err)
	}
	if err := batch.Commit(); err != nil {
		return AddResult{}, fmt.Errorf("bitswap: add: store blocks: %w", err)
	}
	return AddResult{CID: root.Cid(), SHA256: hex.EncodeToString(h.Sum(nil)), Size: cr.n}, nil
}

// ctxReader stops reading when ctx is done and counts bytes.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
