package gossip

import "sync"

// SignatureCache remembers op signatures that verified, so that the many
// nodes of one process — a simulated network — check each op's Ed25519
// signature once instead of once per node (a tenth of a 1000-node
// simulation's CPU). An entry is the op ID (a hash of the signed bytes,
// author and network included) with the signature itself: only those exact
// bytes with that exact signature are taken as verified, and only after
// one node verified them. A real node has no use for it: it verifies each
// op once anyway.
type SignatureCache struct {
	mu  sync.Mutex
	max int
	ok  map[sigKey]struct{}
}

type sigKey struct {
	id  OpID
	sig [64]byte
}

// NewSignatureCache holds up to max entries; when full it starts over.
func NewSignatureCache(max int) *SignatureCache {
	return &SignatureCache{max: max, ok: map[sigKey]struct{}{}}
}

func (c *SignatureCache) key(id OpID, sig []byte) (sigKey, bool) {
	k := sigKey{id: id}
	if c == nil || len(sig) != len(k.sig) {
		return k, false
	}
	copy(k.sig[:], sig)
	return k, true
}

// verified reports whether id was verified with sig before.
func (c *SignatureCache) verified(id OpID, sig []byte) bool {
	k, ok := c.key(id, sig)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok = c.ok[k]
	return ok
}

// add records that id verified with sig.
func (c *SignatureCache) add(id OpID, sig []byte) {
	k, ok := c.key(id, sig)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= c.max {
		clear(c.ok)
	}
	c.ok[k] = struct{}{}
}
