package bitswap

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"
)

// pinPrefix is where the roots of kept packages are recorded: one key per
// root multihash, the value is the root's CID as it was added or fetched.
var pinPrefix = datastore.NewKey("/bitswap/pins")

// pinSet is the persistent set of package roots the node keeps complete
// and provides. Garbage collection is out of scope, so nothing is ever
// deleted from the blockstore; the set says which roots are complete and
// announced.
type pinSet struct {
	ds datastore.Batching
}

func newPinSet(ds datastore.Batching) *pinSet {
	return &pinSet{ds: namespace.Wrap(ds, pinPrefix)}
}

// key ignores the CID version and codec: v0 and v1 of one multihash name
// the same bytes.
func pinKey(c cid.Cid) datastore.Key { return dshelp.MultihashToDsKey(c.Hash()) }

func (p *pinSet) add(ctx context.Context, c cid.Cid) error {
	if err := p.ds.Put(ctx, pinKey(c), c.Bytes()); err != nil {
		return fmt.Errorf("bitswap: record kept package %s: %w", c, err)
	}
	return p.ds.Sync(ctx, datastore.NewKey("/"))
}

func (p *pinSet) has(ctx context.Context, c cid.Cid) (bool, error) {
	ok, err := p.ds.Has(ctx, pinKey(c))
	if err != nil {
		return false, fmt.Errorf("bitswap: read kept packages: %w", err)
	}
	return ok, nil
}

// list returns the kept roots in key order (deterministic).
func (p *pinSet) list(ctx context.Context) ([]cid.Cid, error) {
	res, err := p.ds.Query(ctx, query.Query{Orders: []query.Order{query.OrderByKey{}}})
	if err != nil {
		return nil, fmt.Errorf("bitswap: list kept packages: %w", err)
	}
	defer res.Close()
	var out []cid.Cid
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("bitswap: list kept packages: %w", r.Error)
		}
		c, err := cid.Cast(r.Value)
		if err != nil {
			return nil, fmt.Errorf("bitswap: kept package record %s: %w", r.Key, err)
		}
		out = append(out, c)
	}
	return out, nil
}
