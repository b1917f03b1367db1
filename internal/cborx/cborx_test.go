package cborx

import (
	"bytes"
	"encoding/hex"
	"testing"
)

type msg struct {
	A  uint64   `cbor:"a"`
	BB []uint64 `cbor:"bb,omitempty"`
	N  any      `cbor:"n,omitempty"`
}

func TestEncCanonical(t *testing.T) {
	// Shorter keys first, shortest integers.
	b, err := Enc.Marshal(map[string]uint64{"bb": 1, "a": 24, "c": 0})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("a3" + "61611818" + "616300" + "62626201")
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
}

func TestStrict(t *testing.T) {
	dec := Strict(Limits{MaxArrayElements: 16, MaxMapPairs: 16, MaxNestedLevels: 4})
	loose := Strict(Limits{MaxArrayElements: 64, MaxMapPairs: 64, MaxNestedLevels: 16})
	cases := []struct {
		name    string
		hex     string
		ok      bool
		looseOK bool // accepted under loose limits
	}{
		{"valid", "a1616101", true, true},
		{"valid array", "a2616101626262820102", true, true},
		{"duplicate key", "a261610161610a", false, false},
		{"unknown field", "a2616101617a01", false, false},
		{"indefinite map", "bf616101ff", false, false},
		{"indefinite array", "a26161016262629f0102ff", false, false},
		{"tag", "a16161c11a00000001", false, false},
		{"array over limit", "a2616101626262" + "91" + "0000000000000000000000000000000000", false, true},
		{"map over limit", "a1616e" + "b1" + "0000010002000300040005000600070008000900" +
			"0a000b000c000d000e000f001000", false, true},
		{"nesting over limit", "a1616e" + "818181818100", false, true},
		{"truncated", "a26161", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			var m msg
			err = dec.Unmarshal(b, &m)
			if (err == nil) != c.ok {
				t.Fatalf("Unmarshal(%s) err = %v, want ok=%v", c.hex, err, c.ok)
			}
			m = msg{}
			if err := loose.Unmarshal(b, &m); (err == nil) != c.looseOK {
				t.Fatalf("loose Unmarshal(%s) err = %v, want ok=%v", c.hex, err, c.looseOK)
			}
		})
	}
}

func TestStrictRoundTrip(t *testing.T) {
	dec := Strict(Limits{MaxArrayElements: 4096, MaxMapPairs: 64, MaxNestedLevels: 8})
	in := msg{A: 1 << 40, BB: []uint64{3, 2, 1}}
	b, err := Enc.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out msg
	if err := dec.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	again, _ := Enc.Marshal(out)
	if !bytes.Equal(again, b) {
		t.Fatalf("round trip %x != %x", again, b)
	}
}

func TestStrictBadLimitsPanic(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for limits below the library's minimum")
		}
	}()
	Strict(Limits{MaxArrayElements: 1, MaxMapPairs: 16, MaxNestedLevels: 4})
}
