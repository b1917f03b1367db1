package raftnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// raftNode is one running raft instance with its stores and transport.
type raftNode struct {
	raft  *raft.Raft
	fsm   *fsm
	layer *streamLayer
	trans *raft.NetworkTransport
	wal   *wal.WAL
	meta  *metadb.BoltMetaDB
	obsCh chan raft.Observation
	obs   *raft.Observer
	done  chan struct{} // closes when the observation forwarder exits
	// started is when this raft instance started (HeartbeatLag before the
	// first contact).
	started time.Time

	// members are the servers of the latest raft configuration (read
	// every loop tick): during a validator-set change the old members
	// keep talking raft until they are removed.
	members atomic.Pointer[map[peer.ID]bool]
}

// refreshConfiguration reads the latest raft configuration's servers.
func (n *raftNode) refreshConfiguration() {
	fut := n.raft.GetConfiguration()
	if fut.Error() != nil {
		return
	}
	m := map[peer.ID]bool{}
	for _, srv := range fut.Configuration().Servers {
		if p, err := peer.Decode(string(srv.ID)); err == nil {
			m[p] = true
		}
	}
	n.members.Store(&m)
}

// inConfiguration reports whether p is a server of the latest raft
// configuration this node read.
func (n *raftNode) inConfiguration(p peer.ID) bool {
	m := n.members.Load()
	return m != nil && (*m)[p]
}

func (n *raftNode) isLeader() bool { return n.raft.State() == raft.Leader }

func (n *raftNode) leader() peer.ID {
	_, id := n.raft.LeaderWithID()
	p, err := peer.Decode(string(id))
	if err != nil {
		return ""
	}
	return p
}

// raftConfig maps Config onto raft's.
func (s *Service) raftConfig(logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.self.String())
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = s.cfg.CommitTimeout
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.ShutdownOnRemove = false // the service stops raft when it leaves the validator set
	rc.Logger = logger
	return rc
}

func (s *Service) hclogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.LevelFromString(s.cfg.RaftLogLevel),
		Output: slogWriter{s.log},
	})
}

// startRaft opens the stores in cfg.Dir and starts raft; a validator with no
// raft state that is a genesis validator bootstraps the genesis
// configuration, any other waits for the leader to add it.
func (s *Service) startRaft() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node != nil {
		return nil
	}
	if s.ctx.Err() != nil {
		return errClosed
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.Dir, "wal"), 0o700); err != nil {
		return fmt.Errorf("raftnet: %w", err)
	}
	logger := s.hclogger()
	// raft-wal v0.4.0's Close leaves its meta DB (bbolt, file-locked) open,
	// so we own the meta store and close it ourselves; otherwise a restart
	// in the same process blocks on the lock forever.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(s.cfg.Dir, "wal"), wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return fmt.Errorf("raftnet: open wal: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.Dir, s.cfg.SnapshotRetain, logger.Named("snapshots"))
	if err != nil {
		w.Close()
		meta.Close()
		return fmt.Errorf("raftnet: open snapshots: %w", err)
	}
	layer := newStreamLayer(s.deps.Host, s.proto, func(p peer.ID) bool { return !s.isBlocked(p) }, s.deps.Routing)
	layer.wrap = s.deps.WrapConn
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger.Named("net"),
	})
	fail := func(err error) error {
		trans.Close()
		w.Close()
		meta.Close()
		return err
	}
	rc := s.raftConfig(logger)
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}
	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		return fail(fmt.Errorf("raftnet: read raft state: %w", err))
	}
	if !has && s.isValidator(s.boot) {
		conf := raft.Configuration{}
		for _, v := range s.boot {
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter, ID: raft.ServerID(v.String()), Address: raft.ServerAddress(v.String()),
			})
		}
		if err := raft.BootstrapCluster(rc, w, w, snaps, trans, conf); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fail(fmt.Errorf("raftnet: bootstrap: %w", err))
		}
		s.log.Info("bootstrapped raft from the genesis validators", "validators", len(s.boot))
	}
	f := newFSM(s.applied)
	r, err := raft.NewRaft(rc, f, w, w, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("raftnet: start raft: %w", err))
	}
	n := &raftNode{raft: r, fsm: f, layer: layer, trans: trans, wal: w, meta: meta,
		obsCh: make(chan raft.Observation, 16), done: make(chan struct{}), started: time.Now()}
	n.obs = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.obs)
	go s.forwardObservations(n)
	s.node, s.lastFSM = n, f
	s.events.emit(Event{Kind: EventRaftStarted})
	s.log.Info("raft started", "dir", s.cfg.Dir, "existing_state", has)
	return nil
}

// forwardObservations turns leader observations into events and nudges the
// loop when this node becomes leader.
func (s *Service) forwardObservations(n *raftNode) {
	defer close(n.done)
	for o := range n.obsCh {
		lo := o.Data.(raft.LeaderObservation)
		p, _ := peer.Decode(string(lo.LeaderID))
		s.leaders.observe(p)
		s.events.emit(Event{Kind: EventLeader, Leader: p})
		if p == s.self {
			s.poke()
		}
	}
}

// stopRaft shuts raft down and closes its stores; it is a no-op when raft
// does not run.
func (s *Service) stopRaft() error {
	s.mu.Lock()
	n := s.node
	s.node = nil
	s.mu.Unlock()
	if n == nil {
		return nil
	}
	err := n.raft.Shutdown().Error()
	n.raft.DeregisterObserver(n.obs)
	close(n.obsCh)
	<-n.done
	if cerr := n.trans.Close(); err == nil {
		err = cerr
	}
	s.resetRaftStreams()
	if cerr := n.wal.Close(); err == nil {
		err = cerr
	}
	if cerr := n.meta.Close(); err == nil {
		err = cerr
	}
	s.events.emit(Event{Kind: EventRaftStopped})
	s.log.Info("raft stopped")
	if err != nil {
		return fmt.Errorf("raftnet: stop raft: %w", err)
	}
	return nil
}

// resetRaftStreams resets this host's open raft streams, so no pooled
// connection outlives the raft instance that used it.
func (s *Service) resetRaftStreams() {
	for _, c := range s.deps.Host.Network().Conns() {
		for _, st := range c.GetStreams() {
			if st.Protocol() == s.proto {
				st.Reset()
			}
		}
	}
}

// slogWriter forwards hclog's lines to slog at their own level, without
// hclog's timestamp: "2026-01-02T03:04:05.000Z [WARN]  raft: message".
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	if i := strings.Index(line, " ["); i >= 0 {
		if j := strings.Index(line[i:], "]"); j > 0 {
			switch line[i+2 : i+j] {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "WARN":
				level = slog.LevelWarn
			case "ERROR":
				level = slog.LevelError
			}
			line = strings.TrimSpace(line[i+j+1:])
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
