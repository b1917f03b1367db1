package genesis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Rules are the governance facts read from a network state: who validates,
// who may vote with which reputation, and the voting parameters. node/
// derives them after every executed upgrade, so an upgrade can change them.
type Rules struct {
	Version    string
	Validators []peer.ID // sorted
	Reputation map[peer.ID]float64
	Governance Governance
}

// RulesFromState reads Rules from a network state document (see
// docs/data-model.md). Invalid members are errors: a state whose rules
// cannot be read would stop governance, and the executor rejects an upgrade
// output for which this fails.
func RulesFromState(state []byte) (Rules, error) {
	var doc struct {
		Global *struct {
			Version    string             `json:"version"`
			Validators []string           `json:"validators"`
			Reputation map[string]float64 `json:"reputation"`
			Governance *Governance        `json:"governance"`
		} `json:"global"`
	}
	if err := json.NewDecoder(bytes.NewReader(state)).Decode(&doc); err != nil {
		return Rules{}, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if doc.Global == nil {
		return Rules{}, fmt.Errorf("%w: no global object", ErrBadState)
	}
	g := doc.Global
	r := Rules{Version: g.Version, Reputation: map[peer.ID]float64{}}
	if !ValidVersion(g.Version) {
		return Rules{}, fmt.Errorf("%w: global.version %q", ErrBadVersion, g.Version)
	}
	if len(g.Validators) == 0 {
		return Rules{}, ErrNoValidators
	}
	seen := map[peer.ID]bool{}
	for _, s := range g.Validators {
		id, err := peer.Decode(s)
		if err != nil {
			return Rules{}, fmt.Errorf("%w: global.validators %q: %v", ErrBadPeerID, s, err)
		}
		if seen[id] {
			return Rules{}, fmt.Errorf("%w: %s", ErrDupValidator, s)
		}
		seen[id] = true
		r.Validators = append(r.Validators, id)
	}
	sort.Slice(r.Validators, func(i, j int) bool { return r.Validators[i] < r.Validators[j] })
	// Keys in sorted order, so the error (if any) does not depend on map
	// order; two spellings of one peer are refused, or the value that
	// counts would.
	spelled := map[peer.ID]string{}
	for _, s := range slices.Sorted(maps.Keys(g.Reputation)) {
		v := g.Reputation[s]
		id, err := peer.Decode(s)
		if err != nil {
			return Rules{}, fmt.Errorf("%w: global.reputation %q: %v", ErrBadPeerID, s, err)
		}
		if prev, dup := spelled[id]; dup {
			return Rules{}, fmt.Errorf("%w: global.reputation has %s and %s", ErrDupReputation, prev, s)
		}
		spelled[id] = s
		if !(v >= 0) {
			return Rules{}, fmt.Errorf("%w: %s has %v", ErrBadReputation, s, v)
		}
		r.Reputation[id] = v
	}
	if g.Governance == nil {
		return Rules{}, fmt.Errorf("%w: global.governance missing", ErrBadGovernance)
	}
	if err := g.Governance.Validate(); err != nil {
		return Rules{}, err
	}
	r.Governance = *g.Governance
	return r, nil
}

// IsValidator reports whether id is in the validator set.
func (r Rules) IsValidator(id peer.ID) bool {
	i := sort.Search(len(r.Validators), func(i int) bool { return r.Validators[i] >= id })
	return i < len(r.Validators) && r.Validators[i] == id
}
