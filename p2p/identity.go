package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/synapse-p2p/synapse-p2p/internal/atomicfile"
)

// IdentityFile is the name of the key file inside a node's data directory.
const IdentityFile = "identity.key"

// ErrCorruptIdentity is returned when an identity file exists but does not
// hold a usable Ed25519 private key. The file is never replaced silently:
// the peer ID of a node is part of the network's state (validators,
// reputation), so an operator must decide what to do.
var ErrCorruptIdentity = errors.New("p2p: corrupt identity key")

// LoadOrCreateIdentity reads the Ed25519 key at path, creating it (mode 0600)
// when the file does not exist. created reports whether a new key was made.
func LoadOrCreateIdentity(path string) (key crypto.PrivKey, created bool, err error) {
	key, err = LoadIdentity(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("p2p: generate identity: %w", err)
	}
	if err := WriteIdentity(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) { // lost a race with another creator: use theirs
			key, err = LoadIdentity(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

// LoadIdentity reads an Ed25519 private key written by WriteIdentity.
// A missing file yields an error wrapping fs.ErrNotExist; anything unreadable
// yields ErrCorruptIdentity.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: read identity: %w", err)
	}
	key, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, path, err)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %s: key type %s, want Ed25519", ErrCorruptIdentity, path, key.Type())
	}
	return key, nil
}

// WriteIdentity stores key at path with mode 0600. It refuses to overwrite an
// existing file (the error wraps fs.ErrExist). The file appears whole or not
// at all (internal/atomicfile: temporary file, fsync, link, directory fsync).
func WriteIdentity(path string, key crypto.PrivKey) error {
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("p2p: marshal identity: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("p2p: identity dir: %w", err)
	}
	if err := atomicfile.WriteFileNew(path, b, 0o600); err != nil {
		return fmt.Errorf("p2p: write identity: %w", err)
	}
	return nil
}
