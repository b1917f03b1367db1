// Package meter adds deterministic instruction metering ("fuel") to a
// WebAssembly module, so that how much work an upgrade package may do is
// decided by the network state and not by each node's clock.
//
// Instrument rewrites a module binary:
//
//   - it appends one mutable i64 global, exported as FuelExport, that holds
//     the remaining fuel; the host sets it before running guest code and
//     reads it afterwards;
//   - it cuts every function body into straight-line segments, which
//     start at the function entry and after every loop header, if, else
//     and end (the only places a branch can land), and charges each
//     segment on entry the number of instructions in it (block, loop,
//     else, end and nop count 0) plus SegmentFuel for the check itself.
//     One entry runs each instruction of the segment at most once, so
//     this is an upper bound of the work, exact unless a branch leaves the
//     segment early; each loop iteration runs at least one branch, so no
//     loop is free;
//   - before instructions whose work depends on an operand (memory.grow,
//     memory.copy, memory.fill, memory.init, table.grow, table.copy,
//     table.fill, table.init, and calls of the WASI functions fd_write,
//     fd_read, poll_oneoff and random_get) it subtracts a cost computed
//     from that operand (see the cost constants);
//   - when the fuel goes negative it executes unreachable, a trap; the host
//     tells fuel exhaustion from a genuine unreachable by the global being
//     negative;
//   - a start section is removed and its function exported as StartExport,
//     so the host can set the fuel before any guest code runs.
//
// It refuses modules that reference the new global's index (or the new
// scratch locals' indices), which would otherwise let a hostile module
// refill its own fuel, modules that already export a reserved name,
// malformed modules and features the sandbox does not run (threads, tail
// calls, exceptions, memory64, multiple memories, GC types). The output is
// a pure function of the input bytes.
package meter

import (
	"errors"
	"fmt"
)

// Reserved export names added by Instrument. A module that already exports
// either is refused.
const (
	// FuelExport is the mutable i64 global holding the remaining fuel.
	FuelExport = "__synapse_fuel"
	// StartExport is the module's start function, when it had one: the
	// host calls it once after instantiating (and setting the fuel).
	StartExport = "__synapse_start"
)

// Version identifies the cost model; it changes whenever the costs or the
// rewriting change, since the fuel a package uses changes with them.
const Version = 1

// Costs. Every instruction costs 1 in its segment's static charge, except
// block, loop, else, end and nop (0).
const (
	// SegmentFuel is added to every segment's charge: the charge is
	// itself a handful of instructions, and counting it keeps the time a
	// unit of fuel takes similar for tight loops (a branch per iteration)
	// and for long straight-line code.
	SegmentFuel = 4
	// BytesPerFuel: memory.copy, memory.fill, memory.init and random_get
	// cost one unit per this many bytes (rounded down).
	BytesPerFuel = 1 << bytesShift
	// GrowFuelPerPage: memory.grow costs this per page asked for
	// (64 KiB / BytesPerFuel), whether or not the grow succeeds.
	GrowFuelPerPage = 65536 / BytesPerFuel
	// TableFuelPerElem: table.grow, table.copy, table.fill and table.init
	// cost this per element.
	TableFuelPerElem = 1
	// HostFuelPerItem: fd_write and fd_read cost this per iovec,
	// poll_oneoff per subscription.
	HostFuelPerItem = 16
)

const bytesShift = 3

// ErrBadModule wraps every reason Instrument refuses a module.
var ErrBadModule = errors.New("meter: module refused")

// maxLocals bounds a function's locals (parameters included); the sandbox
// has no use for more and the bound keeps the index arithmetic in range.
const maxLocals = 50000

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// sectionRank is the required order of non-custom sections (0 = unknown).
var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secGlobal: 6, secExport: 7, secStart: 8, secElement: 9, secDataCount: 10,
	secCode: 11, secData: 12,
}

type section struct {
	id   byte
	data []byte
}

type funcType struct {
	params  []byte
	results []byte
}

// charge is how a dynamically priced instruction computes its cost from
// the i32 operand at depth (0 = top of stack): operand*mul >> shift.
type charge struct {
	depth int
	mul   int64
	shift uint
}

// module is what Instrument needs to know about its input.
type module struct {
	sections    []section
	types       []funcType
	funcTypes   []uint32 // type index of every function, imports first
	importFuncs uint32
	globals     uint32 // imported + defined: the fuel global's index
	start       int64  // -1 when there is no start section
	hostCharges map[uint32]charge
}

// wasiCharges are the WASI imports whose work grows with an argument; the
// signature must match for the charge to apply (a mismatched import fails
// to link anyway).
var wasiCharges = map[string]struct {
	params int
	c      charge
}{
	"fd_write":    {4, charge{depth: 1, mul: HostFuelPerItem}},
	"fd_read":     {4, charge{depth: 1, mul: HostFuelPerItem}},
	"poll_oneoff": {4, charge{depth: 1, mul: HostFuelPerItem}},
	"random_get":  {2, charge{depth: 0, mul: 1, shift: bytesShift}},
}

func badf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadModule, fmt.Sprintf(format, a...))
}

// Instrument returns wasm with fuel metering added (see the package
// comment), or an error wrapping ErrBadModule.
func Instrument(wasm []byte) ([]byte, error) {
	m, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	return m.emit(len(wasm))
}

func parse(wasm []byte) (*module, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, badf("not a wasm binary (bad magic)")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, badf("unsupported wasm binary version %x", wasm[4:8])
	}
	m := &module{start: -1, hostCharges: map[uint32]charge{}}
	r := &reader{b: wasm, i: 8}
	last := 0
	for !r.done() {
		id := r.byte()
		data := r.bytes(uint64(r.u32()))
		if r.err != nil {
			return nil, badf("section header: %v", r.err)
		}
		if id != secCustom {
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return nil, badf("unsupported section id %d", id)
			}
			if sectionRank[id] <= last {
				return nil, badf("section %d out of order or duplicated", id)
			}
			last = sectionRank[id]
		}
		m.sections = append(m.sections, section{id: id, data: data})
	}
	// Sections that define index spaces, in order, then those that use
	// them.
	var codeCount int64 = -1
	for _, s := range m.sections {
		var err error
		switch s.id {
		case secType:
			err = m.parseTypes(s.data)
		case secImport:
			err = m.parseImports(s.data)
		case secFunction:
			err = m.parseFunctions(s.data)
		case secTable:
			err = parseVec(s.data, func(r *reader) { r.byte(); limits(r, false) })
		case secMemory:
			err = parseVec(s.data, func(r *reader) { limits(r, true) })
		case secGlobal:
			err = m.parseGlobals(s.data)
		case secCode:
			r := &reader{b: s.data}
			codeCount = int64(r.u32())
			err = r.err
		}
		if err != nil {
			return nil, badf("section %d: %v", s.id, err)
		}
	}
	defined := len(m.funcTypes) - int(m.importFuncs)
	if codeCount < 0 && defined > 0 || codeCount >= 0 && codeCount != int64(defined) {
		return nil, badf("%d functions declared, %d bodies", defined, max(codeCount, 0))
	}
	for _, s := range m.sections {
		var err error
		switch s.id {
		case secExport:
			err = m.checkExports(s.data)
		case secStart:
			err = m.parseStart(s.data)
		case secElement:
			err = m.checkElements(s.data)
		case secData:
			err = m.checkData(s.data)
		}
		if err != nil {
			return nil, badf("section %d: %v", s.id, err)
		}
	}
	return m, nil
}

// parseVec calls item for each element of a vector that must fill data.
func parseVec(data []byte, item func(r *reader)) error {
	r := &reader{b: data}
	n := r.u32()
	for k := uint32(0); k < n && r.err == nil; k++ {
		item(r)
	}
	if r.err == nil && r.i != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.i)
	}
	return r.err
}

func limits(r *reader, memory bool) {
	flags := r.byte()
	switch {
	case flags > 1 && memory:
		r.fail("memory flags %#x: shared and 64-bit memories are not supported", flags)
	case flags > 1:
		r.fail("table limits flags %#x not supported", flags)
	}
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func valtype(r *reader) byte {
	t := r.byte()
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.fail("unsupported value type %#x", t)
	}
	return t
}

func (m *module) parseTypes(data []byte) error {
	return parseVec(data, func(r *reader) {
		if f := r.byte(); f != 0x60 {
			r.fail("type form %#x is not a function type", f)
			return
		}
		var ft funcType
		for _, dst := range []*[]byte{&ft.params, &ft.results} {
			n := r.u32()
			if uint64(n) > uint64(len(r.b)-r.i) {
				r.fail("type vector of %d values is longer than the section", n)
				return
			}
			for k := uint32(0); k < n && r.err == nil; k++ {
				*dst = append(*dst, valtype(r))
			}
		}
		m.types = append(m.types, ft)
	})
}

func (m *module) parseImports(data []byte) error {
	return parseVec(data, func(r *reader) {
		mod, name := r.name(), r.name()
		switch kind := r.byte(); kind {
		case 0:
			t := r.u32()
			if r.err == nil && int64(t) >= int64(len(m.types)) {
				r.fail("import %s.%s: type %d out of range", mod, name, t)
				return
			}
			idx := uint32(len(m.funcTypes))
			if w, ok := wasiCharges[name]; ok && mod == "wasi_snapshot_preview1" && r.err == nil {
				ft := m.types[t]
				if len(ft.params) == w.params && allI32(ft.params) {
					m.hostCharges[idx] = w.c
				}
			}
			m.funcTypes = append(m.funcTypes, t)
			m.importFuncs++
		case 1:
			r.byte()
			limits(r, false)
		case 2:
			limits(r, true)
		case 3:
			valtype(r)
			r.byte()
			m.globals++
		default:
			r.fail("import %s.%s: unsupported kind %d", mod, name, kind)
		}
	})
}

func allI32(ts []byte) bool {
	for _, t := range ts {
		if t != 0x7f {
			return false
		}
	}
	return true
}

func (m *module) parseFunctions(data []byte) error {
	return parseVec(data, func(r *reader) {
		t := r.u32()
		if r.err == nil && int64(t) >= int64(len(m.types)) {
			r.fail("function type %d out of range", t)
		}
		m.funcTypes = append(m.funcTypes, t)
	})
}

func (m *module) parseGlobals(data []byte) error {
	// Each initializer may only read globals already defined, but the
	// validator checks that; here only the fuel global's index matters.
	defined := uint32(0)
	err := parseVec(data, func(r *reader) {
		valtype(r)
		r.byte()
		m.constExpr(r)
		defined++
	})
	m.globals += defined
	return err
}

// constExpr reads an initializer expression and checks its references.
// It is called before m.globals counts the defined globals only for the
// global section, which is stricter, never looser.
func (m *module) constExpr(r *reader) {
	s := scanner{m: m}
	for r.err == nil {
		op, _, idx := s.decode(r)
		switch op {
		case 0x0b:
			return
		case 0x23: // global.get
			m.checkGlobal(r, idx)
		case 0xd2: // ref.func
			m.checkFuncRef(r, idx)
		}
	}
}

func (m *module) checkGlobal(r *reader, idx uint32) {
	if r.err == nil && idx >= m.globals {
		r.fail("global index %d out of range (the module has %d)", idx, m.globals)
	}
}

// checkFuncRef refuses references to functions that a table could call
// without the call-site charge of a dynamically priced host function.
func (m *module) checkFuncRef(r *reader, idx uint32) {
	if r.err != nil {
		return
	}
	if int64(idx) >= int64(len(m.funcTypes)) {
		r.fail("function index %d out of range", idx)
		return
	}
	if _, ok := m.hostCharges[idx]; ok {
		r.fail("function %d (a metered host import) may only be called directly, not referenced", idx)
	}
}

func (m *module) checkExports(data []byte) error {
	return parseVec(data, func(r *reader) {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		if r.err != nil {
			return
		}
		if name == FuelExport || name == StartExport {
			r.fail("export name %q is reserved", name)
			return
		}
		switch kind {
		case 0:
			if int64(idx) >= int64(len(m.funcTypes)) {
				r.fail("export %q: function %d out of range", name, idx)
			}
		case 1, 2:
		case 3:
			m.checkGlobal(r, idx)
		default:
			r.fail("export %q: unsupported kind %d", name, kind)
		}
	})
}

func (m *module) parseStart(data []byte) error {
	r := &reader{b: data}
	idx := r.u32()
	if r.err == nil && r.i != len(data) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return r.err
	}
	if int64(idx) >= int64(len(m.funcTypes)) {
		return fmt.Errorf("start function %d out of range", idx)
	}
	if ft := m.types[m.funcTypes[idx]]; len(ft.params)+len(ft.results) != 0 {
		return fmt.Errorf("start function %d must have type [] -> []", idx)
	}
	m.start = int64(idx)
	return nil
}

func (m *module) checkElements(data []byte) error {
	return parseVec(data, func(r *reader) {
		flags := r.u32()
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			return
		}
		if flags&3 == 2 { // explicit table index
			r.u32()
		}
		if flags&1 == 0 { // active: offset
			m.constExpr(r)
		}
		if flags&3 != 0 { // elemkind or reftype
			r.byte()
		}
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			if flags&4 == 0 {
				m.checkFuncRef(r, r.u32())
			} else {
				m.constExpr(r)
			}
		}
	})
}

func (m *module) checkData(data []byte) error {
	return parseVec(data, func(r *reader) {
		switch flags := r.u32(); flags {
		case 0:
			m.constExpr(r)
		case 1:
		case 2:
			if mem := r.u32(); mem != 0 {
				r.fail("data segment for memory %d: multiple memories are not supported", mem)
			}
			m.constExpr(r)
		default:
			r.fail("data segment flags %d", flags)
		}
		r.bytes(uint64(r.u32()))
	})
}
