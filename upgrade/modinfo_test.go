package upgrade

import "testing"

func TestWasmMemory(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	two := uint32(2)
	cases := []struct {
		name    string
		bin     string
		want    *MemoryPages
		wantErr bool
	}{
		{"none", hdr, nil, false},
		{"defined with max", hdr + "\x05\x04\x01\x01\x01\x02", &MemoryPages{Min: 1, Max: &two}, false},
		{"defined without max", hdr + "\x05\x03\x01\x00\x11", &MemoryPages{Min: 17}, false},
		{"imported", hdr + "\x02\x08\x01\x01e\x01m\x02\x00\x03", &MemoryPages{Min: 3, Imported: true}, false},
		{"after a function import", hdr + "\x02\x0e\x02\x01e\x01f\x00\x00\x01e\x01m\x02\x00\x03", &MemoryPages{Min: 3, Imported: true}, false},
		{"truncated section", hdr + "\x05\x09\x01", nil, true},
		{"truncated limits", hdr + "\x05\x02\x01\x01", nil, true},
		{"not wasm", "\x7fELF\x02\x01\x01\x00", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := wasmMemory([]byte(c.bin))
			if (err != nil) != c.wantErr {
				t.Fatalf("err %v", err)
			}
			switch {
			case got == nil && c.want == nil:
			case got == nil || c.want == nil, got.Min != c.want.Min, got.Imported != c.want.Imported,
				(got.Max == nil) != (c.want.Max == nil), got.Max != nil && *got.Max != *c.want.Max:
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
