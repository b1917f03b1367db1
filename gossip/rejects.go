package gossip

import (
	"crypto/sha256"
	"errors"
	"sync"
)

// msgHash names one wire message: SHA-256 of all its bytes, signature
// included. Unlike the op ID, two copies of an op with different
// signatures have different message hashes.
type msgHash [32]byte

func hashMsg(raw []byte) msgHash { return sha256.Sum256(raw) }

// rejectCache remembers wire messages that were authentic (they decoded
// and their signature verified) and still invalid under one rules
// version — an unauthorised author, a vote whose dep is not its proposal —
// so that sync does not validate the same bytes again. It is keyed by
// message hash, never by op ID: a peer that serves a forged copy of a
// real op cannot make this node refuse the real one, because a forged
// copy is not authentic and is never cached, and the real op's bytes hash
// differently anyway.
//
// Entries are only valid under the rules version they were decided with;
// the cache empties itself when the version changes. It holds at most max
// entries in two generations: when the current one reaches max/2 it
// becomes the previous one and the oldest is dropped. A hit in the
// previous generation moves the entry to the current one.
type rejectCache struct {
	mu        sync.Mutex
	max       int
	ver       string
	cur, prev map[msgHash]struct{}
}

func newRejectCache(max int) *rejectCache {
	return &rejectCache{max: max, cur: map[msgHash]struct{}{}, prev: map[msgHash]struct{}{}}
}

// checkVersionLocked empties the cache when the rules version changed.
func (c *rejectCache) checkVersionLocked(ver string) {
	if ver != c.ver {
		c.ver = ver
		c.cur, c.prev = map[msgHash]struct{}{}, map[msgHash]struct{}{}
	}
}

// has reports whether h was rejected under rules version ver.
func (c *rejectCache) has(h msgHash, ver string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkVersionLocked(ver)
	if _, ok := c.cur[h]; ok {
		return true
	}
	if _, ok := c.prev[h]; ok {
		delete(c.prev, h)
		c.addLocked(h)
		return true
	}
	return false
}

// add records that the authentic message h is invalid under ver.
func (c *rejectCache) add(h msgHash, ver string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkVersionLocked(ver)
	c.addLocked(h)
}

func (c *rejectCache) addLocked(h msgHash) {
	if len(c.cur) >= (c.max+1)/2 {
		c.prev, c.cur = c.cur, map[msgHash]struct{}{}
	}
	c.cur[h] = struct{}{}
}

// len counts the remembered messages.
func (c *rejectCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// authentic reports whether raw, which validation refused with err (wrapping
// ErrInvalidOp), is an authentic op of its author: it decodes and its
// signature verifies, so it is the author's own invalid op and not a
// corrupt or forged copy. An unauthorised op is authentic by construction
// (authorisation is checked after the signature); otherwise the bytes are
// decoded again.
func authentic(raw []byte, netID string, err error) bool {
	if errors.Is(err, ErrUnauthorised) {
		return true
	}
	_, derr := DecodeOp(raw, netID)
	return derr == nil
}
