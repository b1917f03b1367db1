package meter

// Opcodes the instrumenter treats specially.
const (
	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	opIf          = 0x04
	opEnd         = 0x0b
	opCall        = 0x10
	opLocalGet    = 0x20
	opLocalSet    = 0x21
	opLocalTee    = 0x22
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opMemoryGrow  = 0x40
	opI64Const    = 0x42
	opI64LtS      = 0x53
	opI64Sub      = 0x7d
	opI64Mul      = 0x7e
	opI64ShrU     = 0x88
	opI64ExtendU  = 0xad
	opRefFunc     = 0xd2
	opPrefixFC    = 0xfc
	opPrefixSIMD  = 0xfd
	blockEmpty    = 0x40
)

// FC sub-opcodes with a dynamic cost.
const (
	fcMemoryInit = 8
	fcMemoryCopy = 10
	fcMemoryFill = 11
	fcTableInit  = 12
	fcTableCopy  = 14
	fcTableGrow  = 15
	fcTableFill  = 17
)

// noIdx is decode's idx when an instruction has no index immediate.
const noIdx = ^uint32(0)

// scanner decodes instructions; for function bodies it also collects
// what the emitter inserts.
type scanner struct {
	m *module
	// locals is the number of locals (params included) of the function.
	locals uint64
	// events are the insertion points, in code order.
	events []event
	// depth is the number of open blocks (the function's own included).
	depth int
	// dynamic reports whether the body needs the i32 scratch locals.
	dynamic bool
}

// event is an insertion into a function body at pos: a segment's static
// charge (segment) or a dynamic charge before an instruction.
type event struct {
	pos     int
	segment bool
	cost    int64 // for a segment
	c       charge
}

// decode reads one instruction and returns its opcode, its sub-opcode for
// the 0xFC and 0xFD prefixes, and its first index immediate (noIdx if
// none). It fails on opcodes the sandbox does not run.
func (s *scanner) decode(r *reader) (op byte, sub uint32, idx uint32) {
	idx = noIdx
	op = r.byte()
	switch {
	case op <= 0x01, op == 0x05, op == opEnd, op == 0x0f, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
		// no immediates
	case op >= opBlock && op <= opIf:
		r.sleb(33)
	case op == 0x0c, op == 0x0d:
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for k := uint64(0); k <= uint64(n) && r.err == nil; k++ {
			r.u32()
		}
	case op == opCall, op == opRefFunc:
		idx = r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			valtype(r)
		}
	case op >= opLocalGet && op <= opGlobalSet:
		idx = r.u32()
	case op == 0x25, op == 0x26: // table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e:
		memarg(r)
	case op == 0x3f, op == opMemoryGrow:
		memidx(r)
	case op == 0x41:
		r.sleb(32)
	case op == opI64Const:
		r.sleb(64)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0: // ref.null t
		if t := r.byte(); t != 0x70 && t != 0x6f {
			r.fail("ref.null of type %#x", t)
		}
	case op == opPrefixFC:
		sub = r.u32()
		switch {
		case sub <= 7: // saturating truncations
		case sub == fcMemoryInit:
			r.u32()
			memidx(r)
		case sub == 9, sub == 13, sub == fcTableGrow, sub == 16, sub == fcTableFill: // data.drop, elem.drop, table.grow/size/fill
			r.u32()
		case sub == fcMemoryCopy:
			memidx(r)
			memidx(r)
		case sub == fcMemoryFill:
			memidx(r)
		case sub == fcTableInit, sub == fcTableCopy:
			r.u32()
			r.u32()
		default:
			r.fail("unsupported instruction 0xfc %d", sub)
		}
	case op == opPrefixSIMD:
		sub = r.u32()
		switch {
		case sub <= 11, sub == 92, sub == 93: // loads, stores
			memarg(r)
		case sub == 12, sub == 13: // v128.const, i8x16.shuffle
			r.skip(16)
		case sub >= 21 && sub <= 34: // extract/replace lane
			r.byte()
		case sub >= 84 && sub <= 91: // load/store lane
			memarg(r)
			r.byte()
		case sub <= 255:
		default:
			r.fail("unsupported instruction 0xfd %d", sub)
		}
	default:
		if r.err == nil {
			r.fail("unsupported opcode %#x at offset %d", op, r.i-1)
		}
	}
	return op, sub, idx
}

func memarg(r *reader) {
	if align := r.u32(); align >= 32 && r.err == nil {
		r.fail("memory alignment %d: multiple memories are not supported", align)
	}
	r.u32()
}

func memidx(r *reader) {
	if b := r.byte(); b != 0 && r.err == nil {
		r.fail("memory index %d: multiple memories are not supported", b)
	}
}

// dynamicCharge returns the charge of an instruction priced by an operand.
func (s *scanner) dynamicCharge(op byte, sub, idx uint32) (charge, bool) {
	switch op {
	case opMemoryGrow:
		return charge{mul: GrowFuelPerPage}, true
	case opCall:
		c, ok := s.m.hostCharges[idx]
		return c, ok
	case opPrefixFC:
		switch sub {
		case fcMemoryInit, fcMemoryCopy, fcMemoryFill:
			return charge{mul: 1, shift: bytesShift}, true
		case fcTableInit, fcTableCopy, fcTableGrow, fcTableFill:
			return charge{mul: TableFuelPerElem}, true
		}
	}
	return charge{}, false
}

// staticCost is what an instruction adds to its segment's charge: 1,
// except for the structural instructions that compile to no work of their
// own (block, loop, else, end, nop).
func staticCost(op byte) int64 {
	switch op {
	case opBlock, opLoop, 0x05, opEnd, 0x01:
		return 0
	}
	return 1
}

// scanBody decodes one function body's expression (after its locals),
// checks its references and collects the insertion points.
//
// The body is cut into segments of straight-line code: a new segment
// starts at the function entry and after every loop header, if, else and
// end, which are the only places a branch can land. Each segment is
// charged on entry with the static cost of all its instructions: an upper
// bound of what one entry runs, exact unless a branch leaves the segment
// early. Segments of cost 0 (e.g. a run of ends) get no charge. Every loop
// iteration runs a branch (cost 1) inside the loop, so no loop is free.
func (s *scanner) scanBody(code []byte) error {
	s.events = append(s.events[:0], event{pos: 0, segment: true})
	s.depth = 1
	s.dynamic = false
	seg := 0 // index in events of the open segment
	r := &reader{b: code}
	for r.err == nil {
		if r.i >= len(code) {
			r.fail("function body ends without end")
			break
		}
		pos := r.i
		op, sub, idx := s.decode(r)
		if r.err != nil {
			break
		}
		s.events[seg].cost += staticCost(op)
		switch op {
		case opLocalGet, opLocalSet, opLocalTee:
			if uint64(idx) >= s.locals {
				r.fail("local index %d out of range (the function has %d)", idx, s.locals)
			}
		case opGlobalGet, opGlobalSet:
			s.m.checkGlobal(r, idx)
		case opRefFunc:
			s.m.checkFuncRef(r, idx)
		case opCall:
			if int64(idx) >= int64(len(s.m.funcTypes)) {
				r.fail("call of function %d out of range", idx)
			}
		}
		if r.err != nil {
			break
		}
		if c, ok := s.dynamicCharge(op, sub, idx); ok {
			s.events = append(s.events, event{pos: pos, c: c})
			s.dynamic = true
		}
		switch op {
		case opBlock:
			s.depth++
			continue
		case opLoop, opIf:
			s.depth++
		case 0x05: // else
		case opEnd:
			s.depth--
			if s.depth == 0 {
				if r.i != len(code) {
					r.fail("%d bytes after the function's final end", len(code)-r.i)
				}
				return r.err
			}
		default:
			continue
		}
		// A branch may land here: a new segment.
		if s.events[seg].cost == 0 {
			s.events[seg].pos = r.i // reuse the empty one
		} else {
			s.events = append(s.events, event{pos: r.i, segment: true})
			seg = len(s.events) - 1
		}
	}
	return r.err
}
