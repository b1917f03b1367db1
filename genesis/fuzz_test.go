package genesis_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// fixedIDs are n peer IDs derived from fixed seeds, so committed corpus
// entries name the same peers on every run.
func fixedIDs(tb testing.TB, n int) []peer.ID {
	tb.Helper()
	ids := make([]peer.ID, n)
	for i := range ids {
		seed := sha256.Sum256(fmt.Appendf(nil, "genesis-fuzz-%d", i))
		_, pub, err := crypto.GenerateEd25519Key(bytes.NewReader(seed[:]))
		if err != nil {
			tb.Fatal(err)
		}
		if ids[i], err = peer.IDFromPublicKey(pub); err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// genesisSeeds are documents for FuzzGenesisParse: devnet geneses, the
// shape of docs/data-model.md, and the edges of every rule.
func genesisSeeds(tb testing.TB) [][]byte {
	ids := fixedIDs(tb, 4)
	var out [][]byte
	for _, v := range []int{1, 3} {
		g, err := genesis.Devnet("synapse-devnet", ids, v, 3600)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	a, b := ids[0].String(), ids[1].String()
	cidA := peer.ToCid(ids[0]).String() // the same peer as a, spelled as a CID
	for _, doc := range []string{
		// docs/data-model.md's example, as a genesis
		`{"name":"synapse-devnet","version":"1.0.0","state":{"global":{"nodes":{"` + a + `":{"joined":"genesis"}}}},` +
			`"validators":["` + a + `","` + b + `"],"reputation":{"` + a + `":10,"` + b + `":0},` +
			`"governance":{"quorum":0.5,"voting_period_seconds":3600,"early_approval":true,"open_voting":false,` +
			`"finality_threshold":0.6666666666666666,"limits":{"max_package_bytes":67108864,"memory_pages":4096,` +
			`"max_output_bytes":67108864,"fuel":65000000000}}}`,
		// minimal: no state, no reputation, edge quorum and threshold
		`{"name":"n","version":"0.0.1-rc.1","validators":["` + a + `"],"governance":{"quorum":1,"voting_period_seconds":1,"finality_threshold":0.51}}`,
		`{"name":"n","version":"1.0.0","state":null,"validators":["` + cidA + `"],"reputation":{},"governance":{"quorum":0.0001,"voting_period_seconds":9223372036854775807,"finality_threshold":0.9}}`,
		// one peer spelled two ways
		`{"name":"n","version":"1.0.0","state":{},"validators":["` + a + `","` + cidA + `"],"governance":{"quorum":0.5,"voting_period_seconds":60}}`,
		`{"name":"n","version":"1.0.0","state":{},"validators":["` + a + `"],"reputation":{"` + a + `":1,"` + cidA + `":2},"governance":{"quorum":0.5,"voting_period_seconds":60}}`,
		// numbers as written, odd state members
		`{"name":" x ","version":"1.0.0","state":{"global":{"version":"9.9.9","validators":[]},"z":1.50,"a":[1e3,-0]},"validators":["` + b + `"],"reputation":{"` + b + `":1e-300},"governance":{"quorum":0.5,"voting_period_seconds":60,"open_voting":true}}`,
		// refused: trailing data, unknown field, bad threshold, state not an object
		`{"name":"n","version":"1.0.0","validators":["` + a + `"],"governance":{"quorum":0.5,"voting_period_seconds":60}} {}`,
		`{"name":"n","version":"1.0.0","validators":["` + a + `"],"governance":{"quorum":0.5,"voting_period_seconds":60}}]`,
		`{"name":"n","version":"1.0.0","validators":["` + a + `"],"governance":{"quorum":0.5,"voting_period_seconds":60,"finality":1}}`,
		`{"name":"n","version":"1.0.0","validators":["` + a + `"],"governance":{"quorum":0.5,"voting_period_seconds":60,"finality_threshold":0.5}}`,
		`{"name":"n","version":"1.0.0","state":[1],"validators":["` + a + `"],"governance":{"quorum":0.5,"voting_period_seconds":60}}`,
	} {
		out = append(out, []byte(doc))
	}
	return out
}

// FuzzGenesisParse: Parse never panics, and an accepted document
// re-validates; its initial state is a canonical JSON object from which
// RulesFromState reads the same validators, reputations, governance and
// version; and its hash and network ID are stable through
// parse → marshal → parse.
func FuzzGenesisParse(f *testing.F) {
	for _, s := range genesisSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := genesis.Parse(b)
		if err != nil {
			if g != nil {
				t.Fatal("Parse returned a genesis with an error")
			}
			return
		}
		if !json.Valid(b) {
			t.Fatal("accepted a genesis that is not exactly one JSON document")
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("accepted genesis does not re-validate: %v", err)
		}
		hash, err := g.Hash()
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		netID, err := g.NetID()
		if err != nil || netID != hash[:16] {
			t.Fatalf("NetID %q (hash %s): %v", netID, hash, err)
		}
		state, err := g.InitialState()
		if err != nil {
			t.Fatalf("InitialState of an accepted genesis: %v", err)
		}
		var obj map[string]any
		if err := json.Unmarshal(state, &obj); err != nil || obj == nil {
			t.Fatalf("initial state is not a JSON object: %v", err)
		}
		if c, err := genesis.Canonical(state); err != nil || !bytes.Equal(c, state) {
			t.Fatalf("initial state is not canonical: %v", err)
		}
		r, err := genesis.RulesFromState(state)
		if err != nil {
			t.Fatalf("RulesFromState of the initial state: %v", err)
		}
		var want []peer.ID
		for _, s := range g.Validators {
			id, err := peer.Decode(s)
			if err != nil {
				t.Fatalf("accepted validator %q does not decode: %v", s, err)
			}
			want = append(want, id)
		}
		slices.Sort(want)
		if !slices.Equal(r.Validators, want) {
			t.Fatalf("validators: genesis %v, rules %v", want, r.Validators)
		}
		if len(r.Reputation) != len(g.Reputation) {
			t.Fatalf("reputation: genesis has %d entries, rules %d", len(g.Reputation), len(r.Reputation))
		}
		for s, v := range g.Reputation {
			id, _ := peer.Decode(s)
			if got, ok := r.Reputation[id]; !ok || got != v {
				t.Fatalf("reputation of %s: genesis %v, rules %v", s, v, got)
			}
		}
		if r.Version != g.Version || r.Governance != g.Governance {
			t.Fatalf("rules %s %+v, genesis %s %+v", r.Version, r.Governance, g.Version, g.Governance)
		}
		// parse → marshal → parse keeps the hash.
		m, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		g2, err := genesis.Parse(m)
		if err != nil {
			t.Fatalf("marshalled genesis refused: %v\n%s", err, m)
		}
		hash2, err := g2.Hash()
		if err != nil || hash2 != hash {
			t.Fatalf("hash changed through marshal: %s → %s (%v)", hash, hash2, err)
		}
		if again, _ := g.Hash(); again != hash {
			t.Fatal("Hash is not deterministic")
		}
	})
}

// stateSeeds are network states for FuzzRulesFromState.
func stateSeeds(tb testing.TB) [][]byte {
	ids := fixedIDs(tb, 4)
	var out [][]byte
	for _, doc := range genesisSeeds(tb) {
		if g, err := genesis.Parse(doc); err == nil {
			if s, err := g.InitialState(); err == nil {
				out = append(out, s)
			}
		}
	}
	a, b := ids[0].String(), ids[1].String()
	cidA := peer.ToCid(ids[0]).String()
	gov := `"governance":{"quorum":0.5,"voting_period_seconds":60%s}`
	for _, doc := range []string{
		`{"global":{"version":"1.2.0","validators":["` + b + `","` + a + `"],"reputation":{"` + a + `":3},` + fmt.Sprintf(gov, `,"finality_threshold":0.75`) + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `"],"reputation":{"` + a + `":3,"` + cidA + `":7},` + fmt.Sprintf(gov, "") + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `","` + cidA + `"],` + fmt.Sprintf(gov, "") + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `"],` + fmt.Sprintf(gov, `,"finality_threshold":0.5000001`) + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `"],` + fmt.Sprintf(gov, `,"finality_threshold":0.9,"limits":{"memory_pages":65536,"fuel":1}`) + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `"],"reputation":{"` + a + `":-1},` + fmt.Sprintf(gov, "") + `}}`,
		`{"global":{"version":"1.2.0","validators":["` + a + `"],"governance":null}}`,
		`{"global":null}`,
		`[]`,
	} {
		out = append(out, []byte(doc))
	}
	return out
}

// FuzzRulesFromState: RulesFromState never panics and is deterministic;
// accepted rules have sorted, unique validators, finite non-negative
// reputations and valid governance, and FinalityNeeded(n) lies in [1, n]
// with two quorums always intersecting (2k > n) for 1 ≤ n ≤ 1000.
func FuzzRulesFromState(f *testing.F) {
	for _, s := range stateSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := genesis.RulesFromState(b)
		for range 3 {
			r2, err2 := genesis.RulesFromState(b)
			if (err == nil) != (err2 == nil) || !reflect.DeepEqual(r, r2) {
				t.Fatalf("RulesFromState is not deterministic: %v / %v", err, err2)
			}
		}
		if err != nil {
			return
		}
		if !genesis.ValidVersion(r.Version) {
			t.Fatalf("invalid version %q accepted", r.Version)
		}
		if len(r.Validators) == 0 {
			t.Fatal("no validators accepted")
		}
		for i := 1; i < len(r.Validators); i++ {
			if r.Validators[i-1] >= r.Validators[i] {
				t.Fatalf("validators not sorted and unique: %v", r.Validators)
			}
		}
		for _, v := range r.Validators {
			if !r.IsValidator(v) {
				t.Fatalf("IsValidator(%s) false", v)
			}
		}
		for id, v := range r.Reputation {
			if !(v >= 0) || math.IsInf(v, 0) {
				t.Fatalf("reputation of %s is %v", id, v)
			}
		}
		// Every reputation entry of the document is in the rules with its
		// value: none is dropped or overwritten by another spelling of
		// the same peer.
		var doc struct {
			Global struct {
				Reputation map[string]float64 `json:"reputation"`
			} `json:"global"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("accepted state does not decode: %v", err)
		}
		for s, v := range doc.Global.Reputation {
			id, err := peer.Decode(s)
			if err != nil {
				t.Fatalf("accepted reputation key %q: %v", s, err)
			}
			if got, ok := r.Reputation[id]; !ok || got != v {
				t.Fatalf("reputation of %s: state %v, rules %v", s, v, got)
			}
		}
		if err := r.Governance.Validate(); err != nil {
			t.Fatalf("accepted governance does not validate: %v", err)
		}
		for n := 1; n <= 1000; n++ {
			k := r.Governance.FinalityNeeded(n)
			if k < 1 || k > n {
				t.Fatalf("threshold %v: FinalityNeeded(%d) = %d, outside [1, %d]", r.Governance.FinalityThreshold, n, k, n)
			}
			if 2*k <= n {
				t.Fatalf("threshold %v: two quorums of %d of %d need not intersect", r.Governance.FinalityThreshold, k, n)
			}
		}
	})
}
