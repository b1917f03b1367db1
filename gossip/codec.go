package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/synapse-p2p/synapse-p2p/execlog"

	"github.com/synapse-p2p/synapse-p2p/internal/cborx"
)

// Wire constants of the op format (docs/protocols.md).
const (
	// opVersion is the only op format version this code accepts.
	opVersion = 1
	// maxOpSize is the largest encoded op (signature included) accepted.
	maxOpSize = 64 << 10
	// maxDeps bounds the dependency list of one op.
	maxDeps = 16

	opIDDomain = "synapse/op-id/v1"
	sigDomain  = "synapse/op/v1"
)

// Op kinds.
const (
	KindProposal = "proposal"
	KindVote     = "vote"
	KindRatify   = "ratify"
	KindReport   = "report"
	// KindAttest is a validator's non-binding statement "I am ready to
	// ratify this entry" (docs/threat-model.md). Attest ops travel on the
	// topic only; they are never stored or synced.
	KindAttest = "attest"
)

// Codec errors. Every decode failure wraps ErrInvalidOp.
var (
	ErrInvalidOp    = errors.New("gossip: invalid op")
	errOversize     = fmt.Errorf("%w: larger than %d bytes", ErrInvalidOp, maxOpSize)
	errNonCanonical = fmt.Errorf("%w: not in canonical encoding", ErrInvalidOp)
	errWrongNetwork = fmt.Errorf("%w: wrong network ID", ErrInvalidOp)
	errUnknownKind  = fmt.Errorf("%w: unknown kind", ErrInvalidOp)
	errBadSignature = fmt.Errorf("%w: bad signature", ErrInvalidOp)
)

// OpID names an op: SHA-256("synapse/op-id/v1" ‖ unsigned op bytes).
type OpID [32]byte

// String is the lowercase hex form.
func (id OpID) String() string { return hex.EncodeToString(id[:]) }

// ParseOpID parses the hex form of an op ID.
func ParseOpID(s string) (OpID, error) {
	var id OpID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("gossip: op ID %q is not 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// unsignedOp is the signed part of an op, encoded as a CBOR map.
type unsignedOp struct {
	V       uint64          `cbor:"v"`
	Net     string          `cbor:"net"`
	Kind    string          `cbor:"kind"`
	Author  []byte          `cbor:"author"`  // peer ID bytes (Ed25519 keys are inlined in the ID)
	Seq     uint64          `cbor:"seq"`     // per author, from 1
	Lamport uint64          `cbor:"lamport"` // causal counter, advisory
	TS      int64           `cbor:"ts"`      // unix milliseconds, advisory
	Deps    [][]byte        `cbor:"deps"`    // op IDs this op refers to, sorted, unique
	Body    cbor.RawMessage `cbor:"body"`
}

// wireOp is what travels: the unsigned op and the author's signature.
type wireOp struct {
	Op  cbor.RawMessage `cbor:"op"`
	Sig []byte          `cbor:"sig"`
}

// Bodies, one per kind (docs/data-model.md).
type proposalBody struct {
	Type          string `cbor:"type"`
	Title         string `cbor:"title"`
	Description   string `cbor:"description"`
	Version       string `cbor:"version"`
	PackageURL    string `cbor:"package_url"`
	PackageHash   string `cbor:"package_hash"`
	PackageSize   int64  `cbor:"package_size"`
	Target        string `cbor:"target,omitempty"`
	ActivateAt    int64  `cbor:"activate_at,omitempty"`
	ActivateAfter int64  `cbor:"activate_after_seconds,omitempty"`
}

// wire is the CBOR body of b.
func (b ProposalBody) wire() proposalBody {
	return proposalBody{Type: b.Type, Title: b.Title, Description: b.Description, Version: b.Version,
		PackageURL: b.PackageURL, PackageHash: b.PackageHash, PackageSize: b.PackageSize,
		Target: b.Target, ActivateAt: b.ActivateAt, ActivateAfter: b.ActivateAfter}
}

type voteBody struct {
	ProposalID string `cbor:"proposal_id"`
	Choice     string `cbor:"choice"`
}

// ratifyBody is the body of ratify and attest ops. PackageCID optionally
// names a CID under which the signer holds the verified package (other
// nodes may fetch it from there when the entry's URL fails).
type ratifyBody struct {
	Entry      execlog.Entry `cbor:"entry"`
	EntryHash  string        `cbor:"entry_hash"`
	PackageCID string        `cbor:"package_cid,omitempty"`
}

type reportBody struct {
	Seq             uint64 `cbor:"seq"`
	EntryHash       string `cbor:"entry_hash"`
	ProposalID      string `cbor:"proposal_id"`
	Success         bool   `cbor:"success"`
	Version         string `cbor:"version"`
	PostStateSHA256 string `cbor:"post_state_sha256"`
	ErrorClass      string `cbor:"error_class"`
}

var (
	encMode = cborx.Enc
	decMode = cborx.Strict(cborx.Limits{MaxArrayElements: 4096, MaxMapPairs: 64, MaxNestedLevels: 8})
)

// decodeStrict decodes b into v and checks that re-encoding gives back
// exactly b, so every value has one accepted encoding.
func decodeStrict(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOp, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOp, err)
	}
	if !bytes.Equal(again, b) {
		return errNonCanonical
	}
	return nil
}

// Op is a decoded, signature-checked operation.
type Op struct {
	ID      OpID
	Kind    string
	Author  peer.ID
	Seq     uint64
	Lamport uint64
	TS      time.Time // advisory
	Deps    []OpID
	// Exactly one of these is set, matching Kind.
	Proposal *ProposalBody
	Vote     *VoteBody
	Ratify   *RatifyBody // ratify and attest ops
	Report   *Report

	Raw []byte // the wire bytes
}

// VoteBody is a vote op's body; Choice is normalised.
type VoteBody struct {
	ProposalID string
	Choice     string
}

// RatifyBody is a validator's signature over one execution-log entry (a
// ratify op), or its non-binding readiness to sign it (an attest op).
type RatifyBody struct {
	Entry      execlog.Entry
	EntryHash  string
	PackageCID string // "" when not announced
}

// DecodeOp parses and authenticates the wire bytes of an op for network
// netID: size, canonical CBOR, version, network, kind and body schema,
// author key and signature. It does not check authorisation or deps
// (Service.Ingest does). Every error wraps ErrInvalidOp.
func DecodeOp(raw []byte, netID string) (*Op, error) {
	return decodeOp(raw, netID, nil)
}

// decodeOp is DecodeOp that skips the signature check of an op sigs holds
// as verified (sigs may be nil).
func decodeOp(raw []byte, netID string, sigs *SignatureCache) (*Op, error) {
	if len(raw) > maxOpSize {
		return nil, errOversize
	}
	var w wireOp
	if err := decodeStrict(raw, &w); err != nil {
		return nil, err
	}
	var u unsignedOp
	if err := decodeStrict(w.Op, &u); err != nil {
		return nil, err
	}
	if u.V != opVersion {
		return nil, fmt.Errorf("%w: version %d", ErrInvalidOp, u.V)
	}
	if u.Net != netID {
		return nil, fmt.Errorf("%w: %q", errWrongNetwork, u.Net)
	}
	author, err := peer.IDFromBytes(u.Author)
	if err != nil {
		return nil, fmt.Errorf("%w: author: %v", ErrInvalidOp, err)
	}
	pub, err := author.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: author %s has no inline Ed25519 key", ErrInvalidOp, author)
	}
	if u.Seq == 0 {
		return nil, fmt.Errorf("%w: seq must start at 1", ErrInvalidOp)
	}
	if u.Deps == nil {
		return nil, fmt.Errorf("%w: deps must be an array", ErrInvalidOp)
	}
	if len(u.Deps) > maxDeps {
		return nil, fmt.Errorf("%w: %d deps (max %d)", ErrInvalidOp, len(u.Deps), maxDeps)
	}
	op := &Op{
		Kind: u.Kind, Author: author, Seq: u.Seq, Lamport: u.Lamport,
		TS: time.UnixMilli(u.TS).UTC(), Raw: raw,
	}
	for i, d := range u.Deps {
		var id OpID
		if len(d) != len(id) {
			return nil, fmt.Errorf("%w: dep %d is %d bytes", ErrInvalidOp, i, len(d))
		}
		copy(id[:], d)
		if i > 0 && bytes.Compare(u.Deps[i-1], d) >= 0 {
			return nil, fmt.Errorf("%w: deps not sorted and unique", ErrInvalidOp)
		}
		op.Deps = append(op.Deps, id)
	}
	if err := op.decodeBody(u.Body); err != nil {
		return nil, err
	}
	op.ID = opID(w.Op)
	if !sigs.verified(op.ID, w.Sig) {
		ok, err := pub.Verify(sigMessage(netID, w.Op), w.Sig)
		if err != nil || !ok {
			return nil, errBadSignature
		}
		sigs.add(op.ID, w.Sig)
	}
	return op, nil
}

func (op *Op) decodeBody(b []byte) error {
	switch op.Kind {
	case KindProposal:
		var p proposalBody
		if err := decodeStrict(b, &p); err != nil {
			return err
		}
		switch p.Type {
		case TypeCodeUpgrade, TypeCancel, TypeRollback:
		default:
			return fmt.Errorf("%w: proposal type %q", errUnknownKind, p.Type)
		}
		body := ProposalBody{Type: p.Type, Title: p.Title, Description: p.Description, Version: p.Version,
			PackageURL: p.PackageURL, PackageHash: p.PackageHash, PackageSize: p.PackageSize,
			Target: p.Target, ActivateAt: p.ActivateAt, ActivateAfter: p.ActivateAfter}
		if err := body.check(); err != nil {
			return err
		}
		if y := op.TS.Year(); y < 1970 || y > 9999 {
			return fmt.Errorf("%w: proposal ts %d is outside years 1970..9999", ErrInvalidOp, op.TS.UnixMilli())
		}
		if body.ActivateAt != 0 && (body.ActivateAt < op.TS.Unix()-maxClockSkew || body.ActivateAt > op.TS.Unix()+MaxActivationDelay) {
			return fmt.Errorf("%w: activate_at %d is not within %d s after the proposal's time %d", ErrInvalidOp,
				body.ActivateAt, MaxActivationDelay, op.TS.Unix())
		}
		op.Proposal = &body
	case KindVote:
		var v voteBody
		if err := decodeStrict(b, &v); err != nil {
			return err
		}
		if v.Choice != ChoiceApproval && v.Choice != ChoiceRejection {
			return fmt.Errorf("%w: vote choice %q", ErrInvalidOp, v.Choice)
		}
		if v.ProposalID == "" {
			return fmt.Errorf("%w: vote without proposal_id", ErrInvalidOp)
		}
		op.Vote = &VoteBody{ProposalID: v.ProposalID, Choice: v.Choice}
	case KindRatify, KindAttest:
		var r ratifyBody
		if err := decodeStrict(b, &r); err != nil {
			return err
		}
		e := r.Entry
		if err := checkEntry(e); err != nil {
			return err
		}
		if e.Hash() != r.EntryHash {
			return fmt.Errorf("%w: %s entry_hash does not match the entry", ErrInvalidOp, op.Kind)
		}
		if len(r.PackageCID) > maxShort || (e.Void && r.PackageCID != "") {
			return fmt.Errorf("%w: %s package_cid", ErrInvalidOp, op.Kind)
		}
		op.Ratify = &RatifyBody{Entry: e, EntryHash: r.EntryHash, PackageCID: r.PackageCID}
	case KindReport:
		var r reportBody
		if err := decodeStrict(b, &r); err != nil {
			return err
		}
		rep := Report(r)
		if err := rep.check(); err != nil {
			return err
		}
		op.Report = &rep
	default:
		return fmt.Errorf("%w: %q", errUnknownKind, op.Kind)
	}
	return nil
}

func opID(unsigned []byte) OpID {
	h := sha256.New()
	h.Write([]byte(opIDDomain))
	h.Write(unsigned)
	var id OpID
	copy(id[:], h.Sum(nil))
	return id
}

func sigMessage(netID string, unsigned []byte) []byte {
	m := make([]byte, 0, len(sigDomain)+len(netID)+len(unsigned))
	m = append(m, sigDomain...)
	m = append(m, netID...)
	return append(m, unsigned...)
}

// opDraft is an op before signing.
type opDraft struct {
	Kind    string
	Seq     uint64
	Lamport uint64
	TS      time.Time
	Deps    []OpID
	Body    any
}

// encodeOp signs and encodes a draft with key for netID and returns the
// decoded op (so what is published is exactly what peers will decode).
func encodeOp(key crypto.PrivKey, netID string, d opDraft) (*Op, error) {
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	body, err := encMode.Marshal(d.Body)
	if err != nil {
		return nil, err
	}
	deps := append([]OpID(nil), d.Deps...)
	sort.Slice(deps, func(i, j int) bool { return bytes.Compare(deps[i][:], deps[j][:]) < 0 })
	u := unsignedOp{V: opVersion, Net: netID, Kind: d.Kind, Author: []byte(author),
		Seq: d.Seq, Lamport: d.Lamport, TS: d.TS.UnixMilli(), Deps: [][]byte{}, Body: body}
	for i, dep := range deps {
		if i > 0 && deps[i-1] == dep {
			continue
		}
		u.Deps = append(u.Deps, append([]byte(nil), dep[:]...))
	}
	ub, err := encMode.Marshal(u)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(sigMessage(netID, ub))
	if err != nil {
		return nil, err
	}
	raw, err := encMode.Marshal(wireOp{Op: ub, Sig: sig})
	if err != nil {
		return nil, err
	}
	return DecodeOp(raw, netID)
}

// proposalIDFor derives the canonical proposal ID of a proposal op:
// upgrade_<yyyymmdd_hhmmss of its ts in UTC>_<first 32 hex (128 bits) of
// its op ID>. 128 bits cannot be ground: naming a second proposal like an
// existing one takes about 2^128 hashes.
func proposalIDFor(op *Op) string {
	return "upgrade_" + op.TS.UTC().Format("20060102_150405") + "_" + op.ID.String()[:32]
}

// shortProposalID is the readable alias of a proposal ID:
// upgrade_<yyyymmdd_hhmmss>_<first 8 hex of its op ID>. It carries only 32
// bits, so it is accepted only while it names exactly one proposal.
func shortProposalID(op *Op) string {
	return "upgrade_" + op.TS.UTC().Format("20060102_150405") + "_" + op.ID.String()[:8]
}

// normalizeChoice maps a vote choice (approval, rejection, yes, no; any
// case) to approval or rejection.
func normalizeChoice(c string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(c)) {
	case "approval", "approve", "yes":
		return ChoiceApproval, nil
	case "rejection", "reject", "no":
		return ChoiceRejection, nil
	}
	return "", fmt.Errorf("%w: %q (want approval or rejection)", ErrBadChoice, c)
}
