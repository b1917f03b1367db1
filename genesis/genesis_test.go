package genesis_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
)

func newID(t *testing.T) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func validDoc(t *testing.T) map[string]any {
	v := newID(t)
	return map[string]any{
		"name":       "testnet",
		"version":    "1.0.0",
		"state":      map[string]any{"global": map[string]any{"nodes": map[string]any{}}},
		"validators": []any{v},
		"reputation": map[string]any{v: 5},
		"governance": map[string]any{"quorum": 0.5, "voting_period_seconds": 60, "early_approval": true},
	}
}

func encode(t *testing.T, doc map[string]any) []byte {
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseValid(t *testing.T) {
	g, err := genesis.Parse(encode(t, validDoc(t)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := g.NetID()
	if err != nil || len(id) != 16 {
		t.Fatalf("netID %q, err %v", id, err)
	}
	state, err := g.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	r, err := genesis.RulesFromState(state)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "1.0.0" || len(r.Validators) != 1 || r.Validators[0].String() != g.Validators[0] {
		t.Fatalf("rules %+v", r)
	}
	if !r.IsValidator(r.Validators[0]) {
		t.Fatal("IsValidator false for the validator")
	}
	if r.Reputation[r.Validators[0]] != 5 || r.Governance.Quorum != 0.5 {
		t.Fatalf("rules %+v", r)
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(map[string]any)
		raw    string
		want   error
	}{
		{name: "syntax", raw: `{"name": `, want: genesis.ErrSyntax},
		{name: "trailing", raw: `{} {}`, want: genesis.ErrSyntax},
		{name: "trailing bracket", raw: `{}]`, want: genesis.ErrSyntax},
		{name: "trailing brace", raw: `{} }`, want: genesis.ErrSyntax},
		{name: "unknown field", mutate: func(d map[string]any) { d["validatorz"] = []any{} }, want: genesis.ErrUnknownField},
		{name: "missing name", mutate: func(d map[string]any) { delete(d, "name") }, want: genesis.ErrMissingName},
		{name: "missing version", mutate: func(d map[string]any) { delete(d, "version") }, want: genesis.ErrMissingVer},
		{name: "bad version", mutate: func(d map[string]any) { d["version"] = "v1" }, want: genesis.ErrBadVersion},
		{name: "no validators", mutate: func(d map[string]any) { d["validators"] = []any{} }, want: genesis.ErrNoValidators},
		{name: "bad validator", mutate: func(d map[string]any) { d["validators"] = []any{"QmNotAPeer"} }, want: genesis.ErrBadPeerID},
		{name: "dup validator", mutate: func(d map[string]any) {
			v := d["validators"].([]any)[0]
			d["validators"] = []any{v, v}
		}, want: genesis.ErrDupValidator},
		{name: "validator spelled twice", mutate: func(d map[string]any) {
			v := d["validators"].([]any)[0].(string)
			d["validators"] = []any{v, asCID(t, v)}
		}, want: genesis.ErrDupValidator},
		{name: "reputation spelled twice", mutate: func(d map[string]any) {
			v := d["validators"].([]any)[0].(string)
			d["reputation"] = map[string]any{v: 1, asCID(t, v): 2}
		}, want: genesis.ErrDupReputation},
		{name: "bad reputation key", mutate: func(d map[string]any) { d["reputation"] = map[string]any{"bob": 1} }, want: genesis.ErrBadPeerID},
		{name: "negative reputation", mutate: func(d map[string]any) {
			d["reputation"] = map[string]any{d["validators"].([]any)[0].(string): -1}
		}, want: genesis.ErrBadReputation},
		{name: "zero quorum", mutate: func(d map[string]any) {
			d["governance"] = map[string]any{"quorum": 0, "voting_period_seconds": 60}
		}, want: genesis.ErrBadGovernance},
		{name: "no voting period", mutate: func(d map[string]any) {
			d["governance"] = map[string]any{"quorum": 0.5}
		}, want: genesis.ErrBadGovernance},
		{name: "state not object", mutate: func(d map[string]any) { d["state"] = []any{1} }, want: genesis.ErrBadState},
		{name: "global not object", mutate: func(d map[string]any) { d["state"] = map[string]any{"global": 3} }, want: genesis.ErrBadState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.raw)
			if tc.mutate != nil {
				d := validDoc(t)
				tc.mutate(d)
				b = encode(t, d)
			}
			_, err := genesis.Parse(b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// asCID spells peer ID s as a CID, which peer.Decode also accepts.
func asCID(t *testing.T, s string) string {
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	c := peer.ToCid(id).String()
	if c == s {
		t.Fatal("CID spelling equals the base58 one")
	}
	return c
}

// TestRulesFromStateOneSpellingPerPeer: one peer spelled as base58 and as a
// CID in global.reputation is refused; otherwise the weight that counted
// would depend on map order, and nodes could disagree on a tally.
func TestRulesFromStateOneSpellingPerPeer(t *testing.T) {
	v := newID(t)
	doc := `{"global":{"version":"1.0.0","validators":["` + v + `"],` +
		`"reputation":{"` + v + `":1,"` + asCID(t, v) + `":100},` +
		`"governance":{"quorum":0.5,"voting_period_seconds":60}}}`
	for range 20 {
		if _, err := genesis.RulesFromState([]byte(doc)); !errors.Is(err, genesis.ErrDupReputation) {
			t.Fatalf("err = %v, want ErrDupReputation", err)
		}
	}
	// A CID spelling alone is the same peer as its base58 form.
	one := strings.Replace(doc, `"`+v+`":1,`, "", 1)
	r, err := genesis.RulesFromState([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.Decode(v)
	if r.Reputation[id] != 100 {
		t.Fatalf("reputation %v", r.Reputation)
	}
}

func TestNetIDStableAcrossFieldOrder(t *testing.T) {
	d := validDoc(t)
	a, err := genesis.Parse(encode(t, d))
	if err != nil {
		t.Fatal(err)
	}
	// The same document written by hand in another order and spacing.
	v := d["validators"].([]any)[0].(string)
	reordered := `{
	  "governance": {"early_approval": true, "voting_period_seconds": 60, "quorum": 0.5},
	  "reputation": {"` + v + `": 5},
	  "validators": ["` + v + `"],
	  "state": {"global": {"nodes": {}}},
	  "version": "1.0.0", "name": "testnet"}`
	b, err := genesis.Parse([]byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	ida, _ := a.NetID()
	idb, _ := b.NetID()
	if ida != idb {
		t.Fatalf("netID differs with field order: %s vs %s", ida, idb)
	}
	d["name"] = "othernet"
	c, _ := genesis.Parse(encode(t, d))
	idc, _ := c.NetID()
	if idc == ida {
		t.Fatal("different genesis, same netID")
	}
}

func TestCanonical(t *testing.T) {
	x, err := genesis.Canonical([]byte(`{ "b": 1.50, "a": [ {"z":1, "y":2} ] }`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(x), `{"a":[{"y":2,"z":1}],"b":1.50}`; got != want {
		t.Fatalf("canonical %s, want %s", got, want)
	}
	for _, bad := range []string{`{} x`, `{}]`, `{"a":1}}`, `[] ]`} {
		if _, err := genesis.Canonical([]byte(bad)); err == nil {
			t.Fatalf("trailing data accepted: %s", bad)
		}
	}
	if _, err := genesis.Canonical([]byte(" {} \n\t")); err != nil {
		t.Fatalf("trailing white space refused: %v", err)
	}
}

func TestRulesFromStateErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"no global":      `{}`,
		"bad version":    `{"global":{"version":"x","validators":["a"]}}`,
		"no validators":  `{"global":{"version":"1.0.0","validators":[]}}`,
		"no governance":  `{"global":{"version":"1.0.0","validators":["` + newID(t) + `"]}}`,
		"not json":       `nope`,
		"bad validators": `{"global":{"version":"1.0.0","validators":["x"],"governance":{"quorum":1,"voting_period_seconds":1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := genesis.RulesFromState([]byte(doc)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestDevnet(t *testing.T) {
	var ids []peer.ID
	for range 4 {
		id, _ := peer.Decode(newID(t))
		ids = append(ids, id)
	}
	g, err := genesis.Devnet("dev", ids, 2, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Validators) != 2 || len(g.Reputation) != 4 {
		t.Fatalf("devnet %+v", g)
	}
	state, _ := g.InitialState()
	if !strings.Contains(string(state), ids[3].String()) {
		t.Fatal("member missing from state")
	}
	if _, err := genesis.Devnet("dev", ids, 5, 30); err == nil {
		t.Fatal("more validators than nodes accepted")
	}
}

func TestVersions(t *testing.T) {
	for v, ok := range map[string]bool{"1.0.0": true, "1.2.0-rc.1": true, "v1.0.0": false, "1.0": false, "": false, "x": false} {
		t.Run(v, func(t *testing.T) {
			if genesis.ValidVersion(v) != ok {
				t.Errorf("ValidVersion(%q) = %v", v, !ok)
			}
		})
	}
	if genesis.CompareVersions("1.10.0", "1.9.0") != 1 {
		t.Fatal("1.10.0 should be above 1.9.0")
	}
}

func TestFinalityNeeded(t *testing.T) {
	g := genesis.DefaultGovernance()
	for _, tc := range []struct{ n, want, f int }{
		{1, 1, 0}, {2, 2, 0}, {3, 3, 0}, {4, 3, 1}, {5, 4, 1}, {6, 5, 1}, {7, 5, 2}, {10, 7, 3}, {100, 67, 33},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			if got := g.FinalityNeeded(tc.n); got != tc.want {
				t.Fatalf("FinalityNeeded(%d) = %d, want %d", tc.n, got, tc.want)
			}
			if got := genesis.MaxFaulty(tc.n); got != tc.f {
				t.Fatalf("genesis.MaxFaulty(%d) = %d, want %d", tc.n, got, tc.f)
			}
			// Two quorums intersect in more than f validators: safety.
			if 2*tc.want-tc.n <= tc.f {
				t.Fatalf("n=%d: quorums of %d intersect in %d ≤ f=%d", tc.n, tc.want, 2*tc.want-tc.n, tc.f)
			}
		})
	}
	g.FinalityThreshold = 0.75
	if got := g.FinalityNeeded(4); got != 4 {
		t.Fatalf("threshold 0.75 of 4 needs %d, want 4", got)
	}
	// A threshold a hair below 1 asks all n validators, never n+1 (the
	// rounding to 1e-9 used to push it past n: no entry could be final).
	for _, th := range []float64{0.9999999999, 0.99999999999999, math.Nextafter(1, 0)} {
		g := genesis.DefaultGovernance()
		g.FinalityThreshold = th
		if err := g.Validate(); err != nil {
			t.Fatalf("threshold %v refused: %v", th, err)
		}
		for _, n := range []int{1, 2, 3, 4, 10, 1000} {
			if got := g.FinalityNeeded(n); got != n {
				t.Fatalf("threshold %v: FinalityNeeded(%d) = %d, want %d", th, n, got, n)
			}
		}
	}
	for _, bad := range []float64{0.5, 0.4, 1, 1.5} {
		g := genesis.DefaultGovernance()
		g.FinalityThreshold = bad
		if err := g.Validate(); !errors.Is(err, genesis.ErrBadGovernance) {
			t.Fatalf("threshold %v accepted: %v", bad, err)
		}
	}
	g = genesis.DefaultGovernance()
	g.Limits.MemoryPages = 70000
	if err := g.Validate(); !errors.Is(err, genesis.ErrBadGovernance) {
		t.Fatalf("memory_pages 70000 accepted: %v", err)
	}
}
