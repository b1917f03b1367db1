package gossip

import (
	"fmt"
	"regexp"

	"github.com/synapse-p2p/synapse-p2p/execlog"
	"github.com/synapse-p2p/synapse-p2p/genesis"
)

// Entry is one execution-log entry (docs/data-model.md), shared with
// raftnet through execlog so both hash it identically.
type Entry = execlog.Entry

// entryCBOR is how a ratify op carries its entry (the same CBOR map).
type entryCBOR = execlog.Entry

var (
	packageHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	hex64RE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Field limits of op bodies.
const (
	maxTitle       = 200
	maxDescription = 16 << 10
	maxURL         = 2048
	maxShort       = 128
)

// checkEntry validates an entry's fields.
func checkEntry(e Entry) error {
	if e.Void {
		switch {
		case e.Seq == 0:
			return fmt.Errorf("%w: entry seq must start at 1", ErrInvalidOp)
		case e.ProposalID != "" || e.Version != "" || e.PackageURL != "" || e.PackageHash != "" || e.PackageSize != 0:
			return fmt.Errorf("%w: a void entry carries no proposal or package", ErrInvalidOp)
		case e.Seq == 1 && e.PrevEntryHash != "":
			return fmt.Errorf("%w: entry 1 has a prev_entry_hash", ErrInvalidOp)
		case e.Seq > 1 && !hex64RE.MatchString(e.PrevEntryHash):
			return fmt.Errorf("%w: entry prev_entry_hash %q", ErrInvalidOp, e.PrevEntryHash)
		}
		return nil
	}
	switch {
	case e.Seq == 0:
		return fmt.Errorf("%w: entry seq must start at 1", ErrInvalidOp)
	case !execlog.ValidProposalID(e.ProposalID):
		return fmt.Errorf("%w: entry proposal_id %.80q is not a canonical proposal ID", ErrInvalidOp, e.ProposalID)
	case !genesis.ValidVersion(e.Version):
		return fmt.Errorf("%w: entry version %q", ErrInvalidOp, e.Version)
	case e.PackageURL == "" || len(e.PackageURL) > maxURL:
		return fmt.Errorf("%w: entry package_url", ErrInvalidOp)
	case !packageHashRE.MatchString(e.PackageHash):
		return fmt.Errorf("%w: entry package_hash %q (want sha256:<64 lowercase hex>)", ErrInvalidOp, e.PackageHash)
	case e.PackageSize <= 0:
		return fmt.Errorf("%w: entry package_size %d", ErrInvalidOp, e.PackageSize)
	case e.Seq == 1 && e.PrevEntryHash != "":
		return fmt.Errorf("%w: entry 1 has a prev_entry_hash", ErrInvalidOp)
	case e.Seq > 1 && !hex64RE.MatchString(e.PrevEntryHash):
		return fmt.Errorf("%w: entry prev_entry_hash %q", ErrInvalidOp, e.PrevEntryHash)
	}
	return nil
}

// ProposalBody is the content of a code-upgrade proposal.
type ProposalBody struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Version     string `json:"version"`
	PackageURL  string `json:"package_url"`
	PackageHash string `json:"package_hash"` // sha256:<64 lowercase hex>
	PackageSize int64  `json:"package_size"`
}

func (b ProposalBody) check() error {
	switch {
	case b.Title == "" || len(b.Title) > maxTitle:
		return fmt.Errorf("%w: proposal title must be 1..%d bytes", ErrInvalidOp, maxTitle)
	case len(b.Description) > maxDescription:
		return fmt.Errorf("%w: proposal description longer than %d bytes", ErrInvalidOp, maxDescription)
	case !genesis.ValidVersion(b.Version):
		return fmt.Errorf("%w: proposal version %q is not a semantic version", ErrInvalidOp, b.Version)
	case b.PackageURL == "" || len(b.PackageURL) > maxURL:
		return fmt.Errorf("%w: proposal package_url must be 1..%d bytes", ErrInvalidOp, maxURL)
	case !packageHashRE.MatchString(b.PackageHash):
		return fmt.Errorf("%w: proposal package_hash %q (want sha256:<64 lowercase hex>)", ErrInvalidOp, b.PackageHash)
	case b.PackageSize <= 0:
		return fmt.Errorf("%w: proposal package_size %d must be positive", ErrInvalidOp, b.PackageSize)
	}
	return nil
}

// Report is a node's signed result of executing a final entry.
type Report struct {
	Seq             uint64 `json:"seq"`
	EntryHash       string `json:"entry_hash"`
	ProposalID      string `json:"proposal_id"`
	Success         bool   `json:"success"`
	Version         string `json:"version"`
	PostStateSHA256 string `json:"post_state_sha256"`
	ErrorClass      string `json:"error_class"`
}

func (r Report) check() error {
	switch {
	case r.Seq == 0:
		return fmt.Errorf("%w: report seq must start at 1", ErrInvalidOp)
	case !hex64RE.MatchString(r.EntryHash):
		return fmt.Errorf("%w: report entry_hash %q", ErrInvalidOp, r.EntryHash)
	case r.ProposalID != "" && !execlog.ValidProposalID(r.ProposalID):
		return fmt.Errorf("%w: report proposal_id %.80q", ErrInvalidOp, r.ProposalID)
	case r.Version != "" && !genesis.ValidVersion(r.Version):
		return fmt.Errorf("%w: report version %q", ErrInvalidOp, r.Version)
	case r.Success && !hex64RE.MatchString(r.PostStateSHA256):
		return fmt.Errorf("%w: successful report needs post_state_sha256 (64 lowercase hex)", ErrInvalidOp)
	case !r.Success && r.PostStateSHA256 != "" && !hex64RE.MatchString(r.PostStateSHA256):
		return fmt.Errorf("%w: report post_state_sha256 %q", ErrInvalidOp, r.PostStateSHA256)
	case len(r.ErrorClass) > maxShort:
		return fmt.Errorf("%w: report error_class too long", ErrInvalidOp)
	case r.Success && r.ErrorClass != "":
		return fmt.Errorf("%w: successful report with an error_class", ErrInvalidOp)
	}
	return nil
}
