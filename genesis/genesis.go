// Package genesis defines a synapse-p2p network: its genesis document, the
// network ID derived from it, and the governance rules read from the network
// state. It is a leaf package of plain data shared by node/ and the tools.
package genesis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/semver"

	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
)

// Errors returned by Parse and Validate. Each kind of invalid genesis has its
// own sentinel so callers and tests can tell them apart.
var (
	ErrSyntax       = errors.New("genesis: not valid JSON")
	ErrUnknownField = errors.New("genesis: unknown field")
	ErrMissingName  = errors.New("genesis: missing name")
	ErrMissingVer   = errors.New("genesis: missing version")
	ErrBadVersion   = errors.New("genesis: version is not a semantic version")
	ErrNoValidators = errors.New("genesis: no validators")
	ErrBadPeerID    = errors.New("genesis: invalid peer ID")
	ErrDupValidator = errors.New("genesis: duplicate validator")
	// ErrDupReputation: two reputation keys name one peer (a peer ID can
	// be spelled as base58 or as a CID); which value counts would depend
	// on map order.
	ErrDupReputation = errors.New("genesis: two reputation entries for one peer")
	ErrBadReputation = errors.New("genesis: invalid reputation")
	ErrBadGovernance = errors.New("genesis: invalid governance parameters")
	ErrBadState      = errors.New("genesis: invalid initial state")
)

// Genesis is the document that defines a network.
type Genesis struct {
	// Name is a human-readable network name.
	Name string `json:"name"`
	// Version is the network's initial version (semantic version, e.g. 1.0.0).
	Version string `json:"version"`
	// State is the initial network state: a JSON object. Its "global" member,
	// if present, must be an object; Validators, Reputation, Governance and
	// Version are written into it by InitialState.
	State json.RawMessage `json:"state"`
	// Validators are the peer IDs of the initial validator set.
	Validators []string `json:"validators"`
	// Reputation maps peer IDs to a reputation ≥ 0; its keys are the
	// eligible voters unless governance.open_voting is set.
	Reputation map[string]float64 `json:"reputation"`
	// Governance holds the voting rules.
	Governance Governance `json:"governance"`
}

// Governance are the voting rules (docs/data-model.md).
type Governance struct {
	// Quorum is the share (0 < q ≤ 1) of the total eligible weight that must
	// have voted for a decision at the end of the voting period.
	Quorum float64 `json:"quorum"`
	// VotingPeriodSeconds is how long a proposal is open for votes.
	VotingPeriodSeconds int64 `json:"voting_period_seconds"`
	// EarlyApproval approves a proposal as soon as weighted approval exceeds
	// half of the total eligible weight.
	EarlyApproval bool `json:"early_approval"`
	// OpenVoting lets any peer vote, not only the reputation map's keys.
	OpenVoting bool `json:"open_voting"`
	// FinalityThreshold is the share of the validator set in force for an
	// execution-log entry whose ratify signatures make it final: final once
	// MORE than this share signed (FinalityNeeded). It must lie in
	// (1/2, 1); 0 (absent) means DefaultFinalityThreshold, 2/3, which
	// tolerates f = ⌊(n−1)/3⌋ byzantine validators (docs/threat-model.md).
	FinalityThreshold float64 `json:"finality_threshold,omitempty"`
	// Limits are the execution budget of upgrade packages; every node
	// applies the limits of the state an entry runs on, so outcomes never
	// depend on a node's own configuration. Zero fields mean the defaults.
	Limits Limits `json:"limits,omitzero"`
}

// DefaultGovernance: quorum one half, one hour to vote, early approval on,
// entries final with more than 2/3 of the validators, default limits.
func DefaultGovernance() Governance {
	return Governance{Quorum: 0.5, VotingPeriodSeconds: 3600, EarlyApproval: true, FinalityThreshold: DefaultFinalityThreshold}
}

// Validate checks the parameters.
func (g Governance) Validate() error {
	if !(g.Quorum > 0 && g.Quorum <= 1) {
		return fmt.Errorf("%w: quorum %v must be in (0, 1]", ErrBadGovernance, g.Quorum)
	}
	if g.VotingPeriodSeconds <= 0 {
		return fmt.Errorf("%w: voting_period_seconds %d must be positive", ErrBadGovernance, g.VotingPeriodSeconds)
	}
	if t := g.FinalityThreshold; t != 0 && !(t > 0.5 && t < 1) {
		return fmt.Errorf("%w: finality_threshold %v must be in (0.5, 1): two final entries at one seq must share an honest validator", ErrBadGovernance, t)
	}
	return g.Limits.Validate()
}

// Load reads and validates a genesis file.
func Load(path string) (*Genesis, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	g, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Parse decodes and validates a genesis document. Unknown fields are an
// error (a typo must not silently change a network's rules).
func Parse(b []byte) (*Genesis, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var g Genesis
	if err := dec.Decode(&g); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return nil, fmt.Errorf("%w: %s", ErrUnknownField, strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if !atEOF(dec) {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrSyntax)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}

// Validate checks every field.
func (g *Genesis) Validate() error {
	if strings.TrimSpace(g.Name) == "" {
		return ErrMissingName
	}
	if g.Version == "" {
		return ErrMissingVer
	}
	if !ValidVersion(g.Version) {
		return fmt.Errorf("%w: %q", ErrBadVersion, g.Version)
	}
	if len(g.Validators) == 0 {
		return ErrNoValidators
	}
	// Peers are compared by decoded ID: one peer spelled as base58 and as
	// a CID is one peer, and RulesFromState reads the initial state so.
	seen := map[peer.ID]string{}
	for _, v := range g.Validators {
		id, err := peer.Decode(v)
		if err != nil {
			return fmt.Errorf("%w: validator %q: %v", ErrBadPeerID, v, err)
		}
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("%w: %s (listed as %s too)", ErrDupValidator, v, prev)
		}
		seen[id] = v
	}
	reps := map[peer.ID]string{}
	for _, p := range slices.Sorted(maps.Keys(g.Reputation)) {
		r := g.Reputation[p]
		id, err := peer.Decode(p)
		if err != nil {
			return fmt.Errorf("%w: reputation key %q: %v", ErrBadPeerID, p, err)
		}
		if prev, dup := reps[id]; dup {
			return fmt.Errorf("%w: %s and %s", ErrDupReputation, prev, p)
		}
		reps[id] = p
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return fmt.Errorf("%w: %s has %v (want a finite number ≥ 0)", ErrBadReputation, p, r)
		}
	}
	if err := g.Governance.Validate(); err != nil {
		return err
	}
	if _, err := g.stateObject(); err != nil {
		return err
	}
	return nil
}

// ValidVersion reports whether v is a semantic version without a leading v
// (1.2.0, 1.2.0-rc.1).
func ValidVersion(v string) bool {
	return v != "" && !strings.HasPrefix(v, "v") && semver.IsValid("v"+v) && strings.Count(v, ".") >= 2
}

// CompareVersions compares two versions accepted by ValidVersion, returning
// -1, 0 or +1.
func CompareVersions(a, b string) int { return semver.Compare("v"+a, "v"+b) }

func (g *Genesis) stateObject() (map[string]any, error) {
	state := map[string]any{}
	if len(bytes.TrimSpace(g.State)) > 0 && !bytes.Equal(bytes.TrimSpace(g.State), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(g.State))
		dec.UseNumber()
		if err := dec.Decode(&state); err != nil {
			return nil, fmt.Errorf("%w: state must be a JSON object: %v", ErrBadState, err)
		}
	}
	if gl, ok := state["global"]; ok {
		if _, ok := gl.(map[string]any); !ok {
			return nil, fmt.Errorf("%w: state.global must be an object", ErrBadState)
		}
	}
	return state, nil
}

// Hash is the hex SHA-256 of the canonical JSON of the genesis.
func (g *Genesis) Hash() (string, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("genesis: encode: %w", err)
	}
	return CanonicalHash(b)
}

// NetID is the network ID: the first 8 bytes (16 hex digits) of Hash. It
// namespaces the DHT, topics and protocols, so nodes of different networks
// never mix.
func (g *Genesis) NetID() (string, error) {
	h, err := g.Hash()
	if err != nil {
		return "", err
	}
	return h[:16], nil
}

// InitialState is the network state at genesis: State with global.version,
// global.network, global.validators, global.reputation and global.governance
// set from the genesis fields. The result is canonical JSON.
func (g *Genesis) InitialState() ([]byte, error) {
	state, err := g.stateObject()
	if err != nil {
		return nil, err
	}
	global, _ := state["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
	}
	rep := g.Reputation
	if rep == nil {
		rep = map[string]float64{}
	}
	global["network"] = g.Name
	global["version"] = g.Version
	global["validators"] = g.Validators
	global["reputation"] = rep
	global["governance"] = g.Governance
	state["global"] = global
	b, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("genesis: encode state: %w", err)
	}
	return Canonical(b)
}

// Write stores the genesis as indented JSON, mode 0644, atomically (the
// file is whole or not there: internal/atomicfile).
func (g *Genesis) Write(path string) error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("genesis: encode: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	return nil
}
