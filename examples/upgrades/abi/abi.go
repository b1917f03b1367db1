//go:build wasip1

// Package abi is the guest side of the synapse-p2p reactor ABI for Go
// packages: it hands out guest memory to the host and packs results.
package abi

import "unsafe"

// pinned keeps buffers handed to the host reachable until the next call.
var pinned = map[uintptr][]byte{}

// Alloc returns the address of a new buffer of size bytes that stays alive
// until Input consumes it.
func Alloc(size int32) int32 {
	if size <= 0 {
		size = 1
	}
	buf := make([]byte, size)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	pinned[p] = buf
	return int32(p)
}

// Input returns the n bytes the host wrote at ptr and releases the pin.
func Input(ptr, n int32) []byte {
	buf, ok := pinned[uintptr(ptr)]
	if !ok || int(n) > len(buf) {
		panic("abi: input was not allocated with alloc")
	}
	delete(pinned, uintptr(ptr))
	return buf[:n]
}

var last []byte // the previous result, kept alive for the host to read

// Pack keeps out alive and returns out_ptr<<32 | out_len.
func Pack(out []byte) int64 {
	last = out
	if len(out) == 0 {
		return 0
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(out)))
	return int64(p)<<32 | int64(uint32(len(out)))
}
