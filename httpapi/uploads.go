package httpapi

import (
	"fmt"
	"strings"
	"sync"
)

// maxRememberedUploads bounds the packages a server remembers from
// POST /packages.
const maxRememberedUploads = 1024

// uploads remembers the packages imported through POST /packages (hash,
// URL, size), so a proposal that names one of them with a different size
// or hash is refused before it is signed: every node would fail to verify
// it, and a hash mismatch counts as transient (DESIGN §7), so such a
// proposal would stall the executor rather than fail cleanly. The record
// is bounded (oldest forgotten first) and lives only as long as the server.
type uploads struct {
	mu     sync.Mutex
	max    int
	order  []string // sha256 hex, oldest first
	byHash map[string]PackageInfo
	byURL  map[string]PackageInfo
}

func newUploads(max int) *uploads {
	return &uploads{max: max, byHash: map[string]PackageInfo{}, byURL: map[string]PackageInfo{}}
}

// normHash is a package hash as sha256 hex in lower case: the "sha256:"
// prefix is optional and case does not matter (DESIGN §7).
func normHash(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	return strings.TrimPrefix(h, "sha256:")
}

func (u *uploads) add(info PackageInfo) {
	h := normHash(info.SHA256)
	if h == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.byHash[h]; !ok {
		u.order = append(u.order, h)
	}
	u.byHash[h] = info
	if info.URL != "" {
		u.byURL[info.URL] = info
	}
	for len(u.order) > 0 && (len(u.order) > u.max || len(u.byURL) > u.max) {
		gone := u.order[0]
		u.order = u.order[1:]
		delete(u.byHash, gone)
		for url, info := range u.byURL {
			if normHash(info.SHA256) == gone {
				delete(u.byURL, url)
			}
		}
	}
}

// check refuses a proposal whose package fields contradict a package
// uploaded here: the same hash with another size, or the same URL with
// another hash or size. Packages this server has not seen pass.
func (u *uploads) check(req ProposeRequest) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := normHash(req.PackageHash)
	if info, ok := u.byURL[req.PackageURL]; ok {
		if normHash(info.SHA256) != h {
			return fmt.Errorf("%w: package_hash %s does not match the package uploaded as %s (%s)", ErrInvalid, req.PackageHash, info.URL, info.SHA256)
		}
		if info.Size != req.PackageSize {
			return fmt.Errorf("%w: package_size %d does not match the package uploaded as %s (%d bytes)", ErrInvalid, req.PackageSize, info.URL, info.Size)
		}
	}
	if info, ok := u.byHash[h]; ok && info.Size != req.PackageSize {
		return fmt.Errorf("%w: package_size %d does not match the uploaded package with hash %s (%d bytes)", ErrInvalid, req.PackageSize, info.SHA256, info.Size)
	}
	return nil
}
