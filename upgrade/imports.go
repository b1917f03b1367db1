package upgrade

import (
	"errors"
	"fmt"
)

// wasmImports lists the imports ("module.name") of a wasm binary by
// reading only its header and import section, so that a module with a
// forbidden import is rejected before paying for a compile. Malformed
// input returns an error; the compiler then reports the details.
func wasmImports(b []byte) ([]string, error) {
	var out []string
	err := wasmSections(b, func(id byte, sec *wasmReader) (bool, error) {
		if id != 2 {
			return false, nil
		}
		ims, err := readImports(sec)
		for _, im := range ims {
			out = append(out, im.module+"."+im.name+[]string{"", " (table)", " (memory)", " (global)"}[im.kind])
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// wasmSections calls f with the id and contents of each section of a wasm
// binary, in order, until f says stop or returns an error.
func wasmSections(b []byte, f func(id byte, sec *wasmReader) (stop bool, err error)) error {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return errors.New("not a wasm binary (bad magic or version)")
	}
	r := &wasmReader{b: b, i: 8}
	for r.i < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.i)+uint64(size) > uint64(len(r.b)) {
			return errors.New("truncated section")
		}
		sec := &wasmReader{b: r.b[r.i : r.i+int(size)]}
		r.i += int(size)
		if stop, err := f(id, sec); stop || err != nil {
			return err
		}
	}
	return nil
}

// wasmImport is one entry of an import section; min, max and hasMax are
// a memory import's limits.
type wasmImport struct {
	module, name string
	kind         byte // 0 func, 1 table, 2 memory, 3 global
	min, max     uint32
	hasMax       bool
}

// readImports parses an import section.
func readImports(sec *wasmReader) ([]wasmImport, error) {
	n := sec.u32()
	var out []wasmImport
	for k := uint32(0); k < n && sec.err == nil; k++ {
		im := wasmImport{module: sec.name(), name: sec.name(), kind: sec.byte()}
		switch im.kind {
		case 0: // func: type index
			sec.u32()
		case 1: // table: reftype, limits
			sec.byte()
			sec.limits()
		case 2: // memory: limits
			im.min, im.max, im.hasMax = sec.limits()
		case 3: // global: valtype, mutability
			sec.byte()
			sec.byte()
		default:
			return nil, fmt.Errorf("unknown import kind %d", im.kind)
		}
		if sec.err == nil {
			out = append(out, im)
		}
	}
	return out, sec.err
}

type wasmReader struct {
	b   []byte
	i   int
	err error
}

func (r *wasmReader) byte() byte {
	if r.err != nil || r.i >= len(r.b) {
		r.err = errors.New("truncated")
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("bad LEB128")
	return 0
}

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil || uint64(r.i)+uint64(n) > uint64(len(r.b)) {
		r.err = errors.New("truncated name")
		return ""
	}
	s := string(r.b[r.i : r.i+int(n)])
	r.i += int(n)
	return s
}

func (r *wasmReader) limits() (min, max uint32, hasMax bool) {
	flags := r.byte()
	min = r.u32()
	if flags&1 != 0 {
		max, hasMax = r.u32(), true
	}
	return min, max, hasMax
}

// wasmMemory reads a wasm binary's memory declaration (the first memory,
// defined or imported) from its import and memory sections; nil when it
// has none. Malformed input returns an error.
func wasmMemory(b []byte) (*MemoryPages, error) {
	var mem *MemoryPages
	page := func(min, max uint32, hasMax, imported bool) *MemoryPages {
		m := &MemoryPages{Min: min, Imported: imported}
		if hasMax {
			m.Max = &max
		}
		return m
	}
	err := wasmSections(b, func(id byte, sec *wasmReader) (bool, error) {
		switch id {
		case 2: // imports
			ims, err := readImports(sec)
			for _, im := range ims {
				if im.kind == 2 {
					mem = page(im.min, im.max, im.hasMax, true)
					return true, nil
				}
			}
			return false, err
		case 5: // memories
			if n := sec.u32(); n > 0 && sec.err == nil {
				min, max, hasMax := sec.limits()
				if sec.err == nil {
					mem = page(min, max, hasMax, false)
					return true, nil
				}
			}
			return false, sec.err
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return mem, nil
}
