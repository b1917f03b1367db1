package meter

import "fmt"

// reader decodes the wasm binary format with a sticky error: after the
// first failure every read returns zero and err keeps the first cause.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *reader) done() bool { return r.err != nil || r.i >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.b) {
		r.fail("unexpected end at offset %d", r.i)
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.i) {
		r.fail("unexpected end at offset %d (want %d bytes)", r.i, n)
		return nil
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s
}

func (r *reader) skip(n int) { r.bytes(uint64(n)) }

// u32 reads an unsigned LEB128 of at most 5 bytes whose unused high bits
// are zero (the spec's canonical bound; overlong padding is allowed).
func (r *reader) u32() uint32 {
	if r.err == nil && r.i < len(r.b) && r.b[r.i] < 0x80 { // the common case
		r.i++
		return uint32(r.b[r.i-1])
	}
	var v uint32
	for k := 0; k < 5; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if k == 4 && c&0xf0 != 0 {
			r.fail("u32 LEB128 out of range at offset %d", r.i-1)
			return 0
		}
		v |= uint32(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			return v
		}
	}
	return v
}

// sleb reads a signed LEB128 of at most bits bits (32, 33 or 64); the
// unused bits of the last byte must be the sign extension.
func (r *reader) sleb(bits int) int64 {
	if r.err == nil && r.i < len(r.b) && r.b[r.i] < 0x80 { // the common case
		c := r.b[r.i]
		r.i++
		return int64(c) << 57 >> 57
	}
	var v int64
	maxBytes := (bits + 6) / 7
	for k := 0; k < maxBytes; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << (7 * k)
		if k == maxBytes-1 {
			// Bits of this byte above the value's width must all equal
			// the sign bit.
			used := bits - 7*k // value bits in this byte (1..7)
			if c&0x80 != 0 {
				r.fail("s%d LEB128 too long at offset %d", bits, r.i-1)
				return 0
			}
			sign := (c >> (used - 1)) & 1
			rest := c >> used & (0x7f >> used)
			if (sign == 0 && rest != 0) || (sign == 1 && rest != 0x7f>>used) {
				r.fail("s%d LEB128 out of range at offset %d", bits, r.i-1)
				return 0
			}
		}
		if c&0x80 == 0 {
			if s := 7 * (k + 1); s < 64 && c&0x40 != 0 {
				v |= -1 << s
			}
			return v
		}
	}
	return v
}

// name reads a length-prefixed byte string.
func (r *reader) name() string { return string(r.bytes(uint64(r.u32()))) }

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendS64 appends v as a signed LEB128.
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
