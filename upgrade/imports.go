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
	if len(b) < 8 || string(b[:4]) != "\x00asm" || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return nil, errors.New("not a wasm binary (bad magic or version)")
	}
	r := &wasmReader{b: b, i: 8}
	for r.i < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.i)+uint64(size) > uint64(len(r.b)) {
			return nil, errors.New("truncated section")
		}
		if id != 2 {
			r.i += int(size)
			continue
		}
		sec := &wasmReader{b: r.b[r.i : r.i+int(size)]}
		n := sec.u32()
		var out []string
		for k := uint32(0); k < n && sec.err == nil; k++ {
			mod, name := sec.name(), sec.name()
			kind := sec.byte()
			switch kind {
			case 0: // func: type index
				sec.u32()
			case 1: // table: reftype, limits
				sec.byte()
				sec.limits()
			case 2: // memory: limits
				sec.limits()
			case 3: // global: valtype, mutability
				sec.byte()
				sec.byte()
			default:
				return nil, fmt.Errorf("unknown import kind %d", kind)
			}
			out = append(out, mod+"."+name+[]string{"", " (table)", " (memory)", " (global)"}[kind])
		}
		if sec.err != nil {
			return nil, sec.err
		}
		return out, nil
	}
	return nil, nil
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
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm binary (bad magic)")
	}
	page := func(min, max uint32, hasMax, imported bool) *MemoryPages {
		m := &MemoryPages{Min: min, Imported: imported}
		if hasMax {
			m.Max = &max
		}
		return m
	}
	r := &wasmReader{b: b, i: 8}
	for r.i < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.i)+uint64(size) > uint64(len(r.b)) {
			return nil, errors.New("truncated section")
		}
		sec := &wasmReader{b: r.b[r.i : r.i+int(size)]}
		r.i += int(size)
		switch id {
		case 2: // imports
			for k, n := uint32(0), sec.u32(); k < n && sec.err == nil; k++ {
				sec.name()
				sec.name()
				switch kind := sec.byte(); kind {
				case 0:
					sec.u32()
				case 1:
					sec.byte()
					sec.limits()
				case 2:
					min, max, hasMax := sec.limits()
					if sec.err == nil {
						return page(min, max, hasMax, true), nil
					}
				case 3:
					sec.byte()
					sec.byte()
				default:
					return nil, fmt.Errorf("unknown import kind %d", kind)
				}
			}
		case 5: // memories
			if n := sec.u32(); n > 0 && sec.err == nil {
				min, max, hasMax := sec.limits()
				if sec.err == nil {
					return page(min, max, hasMax, false), nil
				}
			}
		}
		if sec.err != nil {
			return nil, sec.err
		}
	}
	return nil, nil
}
