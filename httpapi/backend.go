package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Errors a backend wraps so the API can pick the status code. They are
// mapped in one place, statusOf.
var (
	// ErrInvalid: the request is malformed or breaks a rule (400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the proposal, entry or resource does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request conflicts with the current state, e.g. the
	// same vote twice or a rollback with no backup (409).
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: a body or package exceeds a size limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: the capability is not running on this node, or
	// cannot serve the request right now (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrBusy: too many requests of an expensive kind are running or
	// waiting; the answer is 429 with Retry-After.
	ErrBusy = errors.New("too many requests")
)

// Node is what every API needs: who this node is and whom it sees.
type Node interface {
	// ID is the node's peer ID.
	ID() peer.ID
	// Addrs are the node's listen addresses with the /p2p/ suffix.
	Addrs() []ma.Multiaddr
	// Peers are the connected peers.
	Peers() []peer.AddrInfo
}

// NetInfo is an optional capability of a Node, found by type assertion:
// how other nodes reach it and how it is connected to each peer. With it,
// GET /id adds reachability and relay addresses and GET /peers says per
// peer whether the connection is direct or relayed and its transport.
type NetInfo interface {
	// Reachability is what the node knows of how others reach it.
	Reachability() Reachability
	// PeerConns are the connected peers (directly or through a relay)
	// with their connections, sorted by ID.
	PeerConns() []PeerJSON
}

// Deps are the backends of the API. Node is required; a nil capability
// answers 503 on its endpoints.
type Deps struct {
	Node       Node
	Governance Governance
	Upgrades   Upgrades
	Packages   Packages
	// Metrics serves GET /metrics (Prometheus text format).
	Metrics http.Handler
	// Events subscribes to the node's change notifications for
	// GET /events; nil answers 503 there.
	Events func() (<-chan Event, func())
	// Fetches lists the package downloads this node runs or recently
	// finished, for GET /fetches; nil answers 503 there.
	Fetches func(ctx context.Context) ([]Fetch, error)
}

// Governance is what the API needs for proposals, votes and the log.
type Governance interface {
	// Propose publishes a code-upgrade proposal signed by this node. The
	// API has already checked the request against ProposalLimits.
	Propose(ctx context.Context, req ProposeRequest) (Proposal, error)
	// ProposalLimits are the network's limits on proposals under the
	// rules in force on this node.
	ProposalLimits(ctx context.Context) (ProposalLimits, error)
	// Vote publishes this node's vote on a proposal. Choice is already
	// normalised to "approval" or "rejection".
	Vote(ctx context.Context, proposalID, choice string) (VoteResult, error)
	// Proposals lists every known proposal, newest first.
	Proposals(ctx context.Context) ([]Proposal, error)
	// Proposal returns one proposal with its votes; ErrNotFound if unknown.
	Proposal(ctx context.Context, id string) (Proposal, error)
	// ExecutionLog lists the entries known to this node in seq order.
	ExecutionLog(ctx context.Context) ([]LogEntry, error)
	// Validators describes the validator set and its raft state.
	Validators(ctx context.Context) (ValidatorSet, error)
}

// Upgrades is what the API needs from the executor.
type Upgrades interface {
	// Test dry-runs a proposal's package on a copy of the current state.
	Test(ctx context.Context, proposalID string) (TestResult, error)
	// Status summarises the executor.
	Status(ctx context.Context) (Status, error)
	// History lists every attempt and rollback, oldest first.
	History(ctx context.Context) ([]HistoryEntry, error)
	// Rollback restores the state from before a proposal's upgrade.
	Rollback(ctx context.Context, proposalID string) (RollbackResult, error)
	// Resume lets the executor continue after a local rollback paused it.
	Resume(ctx context.Context) (Status, error)
	// State is the current network state document.
	State(ctx context.Context) (StateView, error)
}

// Packages imports package bytes into the node's content store.
type Packages interface {
	// AddPackage stores a package and provides it to peers.
	AddPackage(ctx context.Context, r io.Reader) (PackageInfo, error)
}
