package bitswap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	badger "github.com/ipfs/go-ds-badger"
	mh "github.com/multiformats/go-multihash"
)

// Kubo's `ipfs add` (CIDv0, 256 KiB chunks, balanced, no raw leaves) prints
// these CIDs for these bytes.
var kuboVectors = []struct {
	name string
	data []byte
	cid  string
}{
	{"hello world", []byte("hello world\n"), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
	{"empty", nil, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"},
}

func TestAddMatchesKubo(t *testing.T) {
	// On a real badger datastore, as the node runs it.
	ds, err := badger.NewDatastore(filepath.Join(t.TempDir(), "datastore"), &badger.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	n := newNode(t, nodeOpts{noDHT: true, ds: ds})
	ctx := context.Background()
	for _, v := range kuboVectors {
		t.Run(v.name, func(t *testing.T) {
			res, err := n.s.Add(ctx, bytes.NewReader(v.data))
			if err != nil {
				t.Fatal(err)
			}
			if res.CID.String() != v.cid {
				t.Fatalf("CID %s, want %s (Kubo)", res.CID, v.cid)
			}
			sum := sha256.Sum256(v.data)
			if res.SHA256 != hex.EncodeToString(sum[:]) || res.Size != int64(len(v.data)) {
				t.Fatalf("sha256 %s size %d, want %x %d", res.SHA256, res.Size, sum, len(v.data))
			}
			ok, err := n.s.Has(ctx, res.CID)
			if err != nil || !ok {
				t.Fatalf("Has after Add = %v, %v", ok, err)
			}
			// The blocks live under /blocks of the shared datastore.
			if ok, _ := ds.Has(ctx, blockKey(res.CID)); !ok {
				t.Fatal("root block not under /blocks")
			}
			got := readAll(t, mustFetch(t, n.s, res.CID))
			if !bytes.Equal(got, v.data) {
				t.Fatalf("local fetch returned %q", got)
			}
		})
	}
}

// A multi-chunk file: 1 MiB + 1 byte gives five 256 KiB-sized leaves under
// one root; the CID must not depend on how the reader splits its reads.
func TestAddIsDeterministicAcrossReaders(t *testing.T) {
	n := newNode(t, nodeOpts{noDHT: true})
	data := randomBytes(1, 1<<20+1)
	a, err := n.s.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.s.Add(context.Background(), &oneByteReader{data: data})
	if err != nil {
		t.Fatal(err)
	}
	if !a.CID.Equals(b.CID) || a.CID.Version() != 0 {
		t.Fatalf("CIDs %s and %s", a.CID, b.CID)
	}
	root, err := n.s.local.Get(context.Background(), a.CID)
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Links()) != 5 {
		t.Fatalf("root has %d links, want 5 chunks of 256 KiB", len(root.Links()))
	}
}

type oneByteReader struct {
	data []byte
}

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errEOF
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

func TestParseCID(t *testing.T) {
	v0 := kuboVectors[0].cid
	want, _ := cid.Decode(v0)
	v1 := cid.NewCidV1(cid.DagProtobuf, want.Hash())
	for _, in := range []string{v0, "ipfs://" + v0, "IPFS://" + v0, "/ipfs/" + v0, " ipfs://" + v0 + "/ ", v1.String(), "ipfs://" + v1.String()} {
		got, err := ParseCID(in)
		if err != nil {
			t.Fatalf("ParseCID(%q): %v", in, err)
		}
		// v0 and v1 of one dag-pb multihash are the same content.
		if !bytes.Equal(got.Hash(), want.Hash()) || got.Type() != cid.DagProtobuf {
			t.Fatalf("ParseCID(%q) = %s", in, got)
		}
	}
	for _, in := range []string{"", "ipfs://", "ipfs://" + v0 + "/file.wasm", "Qm123", "https://example.com/x.wasm", "sha256:abcd"} {
		if _, err := ParseCID(in); !errors.Is(err, ErrInvalidCID) {
			t.Fatalf("ParseCID(%q) err = %v, want ErrInvalidCID", in, err)
		}
	}
}

// Has and Fetch accept the CIDv1 of a package added as CIDv0.
func TestCIDv1OfV0Package(t *testing.T) {
	n := newNode(t, nodeOpts{noDHT: true})
	ctx := context.Background()
	res, err := n.s.Add(ctx, strings.NewReader("hello world\n"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := cid.NewCidV1(cid.DagProtobuf, res.CID.Hash())
	if ok, err := n.s.Has(ctx, v1); !ok || err != nil {
		t.Fatalf("Has(v1) = %v, %v", ok, err)
	}
	if got := readAll(t, mustFetch(t, n.s, v1)); string(got) != "hello world\n" {
		t.Fatalf("fetch v1: %q", got)
	}
}

func TestSizeCap(t *testing.T) {
	n := newNode(t, nodeOpts{noDHT: true})
	ctx := context.Background()
	res, err := n.s.Add(ctx, bytes.NewReader(randomBytes(2, 600<<10)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.Fetch(ctx, res.CID, WithMaxSize(600<<10-1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if got := readAll(t, mustFetch(t, n.s, res.CID, WithMaxSize(600<<10))); len(got) != 600<<10 {
		t.Fatalf("read %d bytes", len(got))
	}
}

func TestProvideUnknownIsNotHeld(t *testing.T) {
	n := newNode(t, nodeOpts{noDHT: true})
	c := randomCID(t)
	if err := n.s.Provide(context.Background(), c); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("err = %v, want ErrNotHeld", err)
	}
	if ok, err := n.s.Has(context.Background(), c); ok || err != nil {
		t.Fatalf("Has = %v, %v", ok, err)
	}
}

func TestClosedStore(t *testing.T) {
	n := newNode(t, nodeOpts{noDHT: true})
	if err := n.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.s.Add(context.Background(), strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if _, err := n.s.Fetch(context.Background(), randomCID(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fetch after Close: %v", err)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"zero search delay": func(c *Config) { c.ProviderSearchDelay = 0 },
		"tiny reprovide":    func(c *Config) { c.ReprovideInterval = time.Second },
		"no cap":            func(c *Config) { c.MaxFetchBytes = 0 },
		"no serve workers":  func(c *Config) { c.ServeWorkers = 0 },
		"no val. workers":   func(c *Config) { c.ValidatorServeWorkers = 0 },
		"negative rate":     func(c *Config) { c.ServeRate = -1 },
		"crawling rate":     func(c *Config) { c.ValidatorServeRate = 1000 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%s: err = %v", name, err)
			}
		})
	}
	if _, err := New(context.Background(), DefaultConfig(), Deps{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New without deps: %v", err)
	}
}

func randomCID(t testing.TB) cid.Cid {
	h, err := mh.Sum([]byte(t.Name()+time.Now().String()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV0(h)
}

// A package imported while the node is down (CLI without a daemon) is kept
// and served once the node runs on the same datastore.
func TestImportOfflineThenServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "datastore")
	ds, err := badger.NewDatastore(dir, &badger.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := randomBytes(8, 700<<10)
	res, err := Import(ctx, ds, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	ds, err = badger.NewDatastore(dir, &badger.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	n := newNode(t, nodeOpts{noDHT: true, ds: ds})
	roots, err := n.s.pins.list(ctx)
	if err != nil || len(roots) != 1 || !roots[0].Equals(res.CID) {
		t.Fatalf("kept roots %v, %v", roots, err)
	}
	f := newNode(t, nodeOpts{noDHT: true})
	connect(t, f, n)
	if got := readAll(t, mustFetch(t, f.s, res.CID)); !bytes.Equal(got, data) {
		t.Fatal("fetched bytes differ")
	}
}

// ParseCID never panics, and whatever it accepts prints back to a CID that
// parses to the same value.
func FuzzParseCID(f *testing.F) {
	for _, s := range []string{kuboVectors[0].cid, "ipfs://" + kuboVectors[1].cid, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "/ipfs/", "ipfs://x/y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCID) {
				t.Fatalf("error %v does not wrap ErrInvalidCID", err)
			}
			return
		}
		again, err := ParseCID(c.String())
		if err != nil || !again.Equals(c) {
			t.Fatalf("%q → %s → %v, %v", s, c, again, err)
		}
	})
}
