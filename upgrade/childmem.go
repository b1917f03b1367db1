package upgrade

// childHeadroom is the memory a sandbox child needs besides the guest's
// linear memory and the data it pipes: the Go runtime, wazero, the
// compiler (a cold compile of a Go guest) and the compiled code.
const childHeadroom = 1 << 30

// childMemoryLimit sizes the sandbox child's data rlimit from the guest's
// memory limit: the linear memory may briefly exist twice while it grows
// (wazero reallocates it), the state is held as read and as copied in, and
// the output as returned and as written. It is generous on purpose: the
// guest's own limit (memory_pages) must always be reached first, so that
// a memory failure is the deterministic memory_limit; the rlimit only
// turns a runaway of the host side into an error inside the child.
func childMemoryLimit(lim limits, stateLen int) uint64 {
	return 2*lim.MemoryLimitBytes + 2*uint64(max(lim.MaxOutputBytes, 0)) + 3*uint64(stateLen) + childHeadroom
}
