package meter

import "fmt"

// emit writes the instrumented module. Sections other than global,
// export, start and code are copied unchanged.
func (m *module) emit(sizeHint int) ([]byte, error) {
	out := make([]byte, 0, sizeHint+sizeHint/4+64)
	out = append(out, "\x00asm\x01\x00\x00\x00"...)
	// A missing global or export section goes right after the last
	// section that must precede it (before any custom sections that
	// follow that one), so custom sections keep their neighbours.
	hasGlobal, hasExport := false, false
	afterGlobal, afterExport := -1, -1
	for i, s := range m.sections {
		switch {
		case s.id == secGlobal:
			hasGlobal = true
		case s.id == secExport:
			hasExport = true
		case s.id != secCustom && sectionRank[s.id] < sectionRank[secGlobal]:
			afterGlobal = i
		}
		if s.id != secCustom && sectionRank[s.id] < sectionRank[secExport] {
			afterExport = i
		}
	}
	insert := func(i int) {
		if !hasGlobal && i == afterGlobal {
			out = appendSection(out, secGlobal, appendFuelGlobal(appendU32(nil, 1)))
		}
		if !hasExport && i == afterExport {
			out = appendSection(out, secExport, m.appendExports(appendU32(nil, m.newExports())))
		}
	}
	insert(-1)
	for i, s := range m.sections {
		switch s.id {
		case secGlobal:
			r := &reader{b: s.data}
			n := r.u32()
			body := appendU32(make([]byte, 0, len(s.data)+16), n+1)
			body = append(body, s.data[r.i:]...)
			out = appendSection(out, secGlobal, appendFuelGlobal(body))
		case secExport:
			r := &reader{b: s.data}
			n := r.u32()
			body := appendU32(make([]byte, 0, len(s.data)+40), n+m.newExports())
			body = append(body, s.data[r.i:]...)
			out = appendSection(out, secExport, m.appendExports(body))
		case secStart:
			// Exported as StartExport instead: the host runs it after
			// setting the fuel.
		case secCode:
			code, err := m.instrumentCode(s.data)
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secCode, code)
		default:
			out = appendSection(out, s.id, s.data)
		}
		insert(i)
	}
	return out, nil
}

func appendSection(out []byte, id byte, data []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(data)))
	return append(out, data...)
}

// appendFuelGlobal appends the fuel global: mutable i64, initially 0 (the
// host sets it before calling guest code).
func appendFuelGlobal(b []byte) []byte {
	return append(b, 0x7e, 0x01, opI64Const, 0x00, opEnd)
}

func (m *module) newExports() uint32 {
	if m.start >= 0 {
		return 2
	}
	return 1
}

func (m *module) appendExports(b []byte) []byte {
	b = appendU32(b, uint32(len(FuelExport)))
	b = append(b, FuelExport...)
	b = append(b, 3)
	b = appendU32(b, m.globals)
	if m.start >= 0 {
		b = appendU32(b, uint32(len(StartExport)))
		b = append(b, StartExport...)
		b = append(b, 0)
		b = appendU32(b, uint32(m.start))
	}
	return b
}

// instrumentCode rewrites the code section: each body gets scratch locals
// (one i64; two i32 when it has dynamic charges), a charge at the start of
// each straight-line segment (see scanBody) and a charge before each
// dynamically priced instruction.
func (m *module) instrumentCode(data []byte) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := make([]byte, 0, len(data)+len(data)/4+16)
	out = appendU32(out, n)
	s := &scanner{m: m}
	var body []byte
	for k := uint32(0); k < n; k++ {
		fn := m.importFuncs + k
		size := r.u32()
		b := r.bytes(uint64(size))
		if r.err != nil {
			return nil, badf("code section: function %d: %v", fn, r.err)
		}
		var err error
		body, err = m.instrumentBody(s, fn, b, body[:0])
		if err != nil {
			return nil, badf("code section: function %d: %v", fn, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if r.err == nil && r.i != len(data) {
		return nil, badf("code section: %d trailing bytes", len(data)-r.i)
	}
	return out, nil
}

func (m *module) instrumentBody(s *scanner, fn uint32, b, out []byte) ([]byte, error) {
	r := &reader{b: b}
	groups := r.u32()
	locals := uint64(len(m.types[m.funcTypes[fn]].params))
	for g := uint32(0); g < groups && r.err == nil; g++ {
		locals += uint64(r.u32())
		valtype(r)
		if locals > maxLocals {
			return nil, fmt.Errorf("more than %d locals", maxLocals)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	declEnd := r.i
	s.locals = locals
	code := b[declEnd:]
	if err := s.scanBody(code); err != nil {
		return nil, err
	}
	// Scratch locals: t (i64) for the fuel arithmetic, a and b (i32) to
	// lift an operand off the stack.
	t := uint32(locals)
	a, bb := t+1, t+2
	extra := uint32(1)
	if s.dynamic {
		extra = 2
	}
	r2 := &reader{b: b}
	r2.u32()
	out = appendU32(out, groups+extra)
	out = append(out, b[r2.i:declEnd]...)
	out = append(out, 1, 0x7e) // t i64
	if s.dynamic {
		out = append(out, 2, 0x7f) // a, b i32
	}
	last := 0
	for _, e := range s.events {
		if e.segment && e.cost == 0 {
			continue
		}
		out = append(out, code[last:e.pos]...)
		last = e.pos
		if e.segment {
			out = appendStatic(out, m.globals, t, e.cost+SegmentFuel)
		} else {
			out = appendDynamic(out, m.globals, t, a, bb, e.c)
		}
	}
	return append(out, code[last:]...), nil
}

// appendStatic charges cost: fuel -= cost; trap if fuel < 0.
func appendStatic(out []byte, g, t uint32, cost int64) []byte {
	out = append(out, opGlobalGet)
	out = appendU32(out, g)
	out = append(out, opI64Const)
	out = appendS64(out, cost)
	out = append(out, opI64Sub)
	return appendCheck(out, g, t)
}

// appendCheck stores the i64 on the stack as the new fuel and traps when
// it is negative.
func appendCheck(out []byte, g, t uint32) []byte {
	out = append(out, opLocalTee)
	out = appendU32(out, t)
	out = append(out, opGlobalSet)
	out = appendU32(out, g)
	out = append(out, opLocalGet)
	out = appendU32(out, t)
	out = append(out, opI64Const, 0, opI64LtS, opIf, blockEmpty, opUnreachable, opEnd)
	return out
}

// appendDynamic charges operand*mul >> shift for the i32 operand at c.depth,
// leaving the stack as it was.
func appendDynamic(out []byte, g, t, a, b uint32, c charge) []byte {
	if c.depth == 1 {
		out = append(out, opLocalSet)
		out = appendU32(out, b)
	}
	out = append(out, opLocalTee)
	out = appendU32(out, a)
	out = append(out, opGlobalGet)
	out = appendU32(out, g)
	out = append(out, opLocalGet)
	out = appendU32(out, a)
	out = append(out, opI64ExtendU)
	if c.mul != 1 {
		out = append(out, opI64Const)
		out = appendS64(out, c.mul)
		out = append(out, opI64Mul)
	}
	if c.shift != 0 {
		out = append(out, opI64Const)
		out = appendS64(out, int64(c.shift))
		out = append(out, opI64ShrU)
	}
	out = append(out, opI64Sub)
	out = appendCheck(out, g, t)
	if c.depth == 1 {
		out = append(out, opLocalGet)
		out = appendU32(out, b)
	}
	return out
}
