package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/genesis"
	"github.com/synapse-p2p/synapse-p2p/p2p"
)

// InitResult says what Init made.
type InitResult struct {
	PeerID         peer.ID
	CreatedKey     bool
	CreatedConfig  bool
	CreatedGenesis bool
	NetID          string
}

// Init prepares a data directory: an identity (kept if present), a config
// (kept if present, else cfg is written), and a genesis — a copy of
// genesisFile when given, else a single-node dev genesis in which this node
// is the only validator. An existing genesis is never replaced by a
// different one.
func Init(cfg Config, genesisFile string) (InitResult, error) {
	var res InitResult
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	key, created, err := p2p.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, p2p.IdentityFile))
	if err != nil {
		return res, err
	}
	res.CreatedKey = created
	res.PeerID, err = peer.IDFromPrivateKey(key)
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, ConfigFile)); errors.Is(err, fs.ErrNotExist) {
		if err := cfg.Validate(); err != nil {
			return res, err
		}
		if err := cfg.Write(); err != nil {
			return res, err
		}
		res.CreatedConfig = true
	} else if err != nil {
		return res, fmt.Errorf("init: %w", err)
	} else if cfg, err = LoadConfig(cfg.DataDir, func(string) string { return "" }); err != nil {
		return res, err
	}

	var g *genesis.Genesis
	if genesisFile != "" {
		if g, err = genesis.Load(genesisFile); err != nil {
			return res, err
		}
	} else {
		g, err = DevGenesis(key)
		if err != nil {
			return res, err
		}
	}
	path := cfg.GenesisPath()
	if existing, err := genesis.Load(path); err == nil {
		want, _ := g.NetID()
		have, _ := existing.NetID()
		if genesisFile != "" && want != have {
			return res, fmt.Errorf("init: %s already holds network %s; refusing to replace it with %s", path, have, want)
		}
		res.NetID = have
		return res, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	if err := g.Write(path); err != nil {
		return res, fmt.Errorf("init: %w", err)
	}
	res.CreatedGenesis = true
	res.NetID, err = g.NetID()
	return res, err
}

// DevGenesis is a single-node development network in which the owner of
// key is the only validator and voter.
func DevGenesis(key crypto.PrivKey) (*genesis.Genesis, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return genesis.Devnet("synapse-dev-"+id.String()[len(id.String())-6:], []peer.ID{id}, 1, 60)
}
