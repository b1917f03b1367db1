package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// rulesPrefix holds, per execution-log seq, the governance rules in force
// for that entry: the rules of the state after entry seq−1. Finality of
// entry seq counts signatures of exactly those validators, whatever the
// node's current rules are (docs/threat-model.md).
var rulesPrefix = datastore.NewKey("/node/rules")

// rulesRecord is the stored form of genesis.Rules.
type rulesRecord struct {
	Version    string             `json:"version"`
	Validators []string           `json:"validators"`
	Reputation map[string]float64 `json:"reputation"`
	Governance genesis.Governance `json:"governance"`
}

func toRecord(r genesis.Rules) rulesRecord {
	rec := rulesRecord{Version: r.Version, Reputation: map[string]float64{}, Governance: r.Governance}
	for _, v := range r.Validators {
		rec.Validators = append(rec.Validators, v.String())
	}
	for p, v := range r.Reputation {
		rec.Reputation[p.String()] = v
	}
	return rec
}

func (rec rulesRecord) rules() (genesis.Rules, error) {
	r := genesis.Rules{Version: rec.Version, Reputation: map[peer.ID]float64{}, Governance: rec.Governance}
	for _, s := range rec.Validators {
		id, err := peer.Decode(s)
		if err != nil {
			return genesis.Rules{}, err
		}
		r.Validators = append(r.Validators, id)
	}
	for s, v := range rec.Reputation {
		id, err := peer.Decode(s)
		if err != nil {
			return genesis.Rules{}, err
		}
		r.Reputation[id] = v
	}
	return r, nil
}

// rulesHistory is the rules in force per seq, kept in the datastore.
type rulesHistory struct {
	ds datastore.Datastore
	mu sync.RWMutex
	m  map[uint64]genesis.Rules
	// horizon is the highest seq whose rules are known: last executed + 1.
	horizon uint64
}

func rulesKey(seq uint64) datastore.Key {
	return rulesPrefix.ChildString(fmt.Sprintf("%020d", seq))
}

// loadRulesHistory reads the stored records.
func loadRulesHistory(ctx context.Context, ds datastore.Datastore) (*rulesHistory, error) {
	h := &rulesHistory{ds: ds, m: map[uint64]genesis.Rules{}}
	res, err := ds.Query(ctx, query.Query{Prefix: rulesPrefix.String()})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return nil, r.Error
		}
		var seq uint64
		if _, err := fmt.Sscanf(datastore.NewKey(r.Key).BaseNamespace(), "%d", &seq); err != nil || seq == 0 {
			return nil, fmt.Errorf("node: corrupt rules record %s", r.Key)
		}
		var rec rulesRecord
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return nil, fmt.Errorf("node: corrupt rules record %s: %w", r.Key, err)
		}
		rules, err := rec.rules()
		if err != nil {
			return nil, fmt.Errorf("node: corrupt rules record %s: %w", r.Key, err)
		}
		h.m[seq] = rules
	}
	return h, nil
}

// set records the rules in force for seq and makes seq the horizon.
func (h *rulesHistory) set(ctx context.Context, seq uint64, r genesis.Rules) error {
	b, err := json.Marshal(toRecord(r))
	if err != nil {
		return err
	}
	if err := h.ds.Put(ctx, rulesKey(seq), b); err != nil {
		return fmt.Errorf("node: store rules of entry %d: %w", seq, err)
	}
	h.mu.Lock()
	h.m[seq] = r
	h.horizon = seq
	h.mu.Unlock()
	return nil
}

// get returns the rules in force for seq, if known.
func (h *rulesHistory) get(seq uint64) (genesis.Rules, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if seq > h.horizon {
		return genesis.Rules{}, false
	}
	r, ok := h.m[seq]
	return r, ok
}
