package httpapi

import "encoding/json"

// ProposeRequest is the body of POST /upgrades/propose.
type ProposeRequest struct {
	// Type is "code_upgrade" (default), "cancel" or "rollback".
	Type        string `json:"type,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description"`
	// Version: the version a code upgrade or a rollback sets.
	Version     string `json:"version,omitempty"`
	PackageURL  string `json:"package_url,omitempty"`
	PackageHash string `json:"package_hash,omitempty"`
	PackageSize int64  `json:"package_size,omitempty"`
	// Target: the proposal a cancel or a rollback acts on.
	Target string `json:"target,omitempty"`
	// ActivateAt (RFC 3339) or ActivateAfterSeconds schedule a code
	// upgrade: it runs at that time, or that long after its entry is final.
	ActivateAt           string `json:"activate_at,omitempty"`
	ActivateAfterSeconds int64  `json:"activate_after_seconds,omitempty"`
}

// Proposal types.
const (
	TypeCodeUpgrade = "code_upgrade"
	TypeCancel      = "cancel"
	TypeRollback    = "rollback"
)

// ProposalLimits are the network's limits on what a proposal may ask of
// every node; they come from the network state's governance parameters.
type ProposalLimits struct {
	// MaxPackageBytes is the largest package_size any node will fetch
	// (global.governance.limits.max_package_bytes, 64 MiB by default).
	MaxPackageBytes int64 `json:"max_package_bytes"`
}

// ProposeResponse answers POST /upgrades/propose.
type ProposeResponse struct {
	ProposalID string `json:"proposal_id"`
	// Type is code_upgrade, cancel or rollback; Target the proposal a
	// cancel or rollback acts on.
	Type      string   `json:"type"`
	Target    string   `json:"target,omitempty"`
	Status    string   `json:"status"`
	NextSteps []string `json:"next_steps"`
}

// VoteRequest is the body of POST /proposals/{id}/vote.
type VoteRequest struct {
	Vote string `json:"vote"`
}

// VoteResult answers POST /proposals/{id}/vote.
type VoteResult struct {
	ProposalID string `json:"proposal_id"`
	Vote       string `json:"vote"`
	// Changed is true when this replaced an earlier, different vote.
	Changed bool   `json:"changed"`
	Status  string `json:"status"`
	Tally   Tally  `json:"tally"`
}

// Proposal is a proposal as the API shows it.
type Proposal struct {
	ProposalID string `json:"proposal_id"`
	Type       string `json:"type"`
	// Target: the proposal a cancel or rollback acts on.
	Target      string `json:"target,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Version     string `json:"version"`
	PackageURL  string `json:"package_url"`
	PackageHash string `json:"package_hash"`
	PackageSize int64  `json:"package_size"`
	Proposer    string `json:"proposer"`
	// CreatedAt is the proposer's advisory timestamp (RFC 3339).
	CreatedAt string `json:"created_at"`
	// Status: voting, approved, rejected, ratified, scheduled, cancelled,
	// too_late (a cancel whose upgrade already ran), executed, failed,
	// rolled_back (the last three as seen on this node).
	Status       string        `json:"status"`
	Votes        []Vote        `json:"votes"`
	Tally        Tally         `json:"tally"`
	Ratification *Ratification `json:"ratification,omitempty"`
	// ActivateAt / ActivateAfterSeconds: the schedule of a code upgrade.
	ActivateAt           string `json:"activate_at,omitempty"`
	ActivateAfterSeconds int64  `json:"activate_after_seconds,omitempty"`
	// Equivocators voted twice with the same op seq; their vote counts as
	// none (docs/governance.md).
	Equivocators []string `json:"equivocators,omitempty"`
	// VotingEndsAt is when the voting period ends as this node measures it:
	// from when it first saw the proposal (RFC 3339).
	VotingEndsAt string `json:"voting_ends_at,omitempty"`
}

// Vote is one voter's effective vote.
type Vote struct {
	Voter  string  `json:"voter"`
	Choice string  `json:"choice"`
	Weight float64 `json:"weight"`
	// OpID is the vote op; a voter's new vote has another one (the older
	// vote is superseded and leaves the op set).
	OpID string `json:"op_id,omitempty"`
	// Seq is the op's per-author sequence number.
	Seq uint64 `json:"seq,omitempty"`
}

// Tally is the weighted count of a proposal.
type Tally struct {
	Approval  float64 `json:"approval"`
	Rejection float64 `json:"rejection"`
	// Eligible is the total weight of every eligible voter.
	Eligible float64 `json:"eligible"`
	Quorum   float64 `json:"quorum"`
	Voters   int     `json:"voters"`
	// VotedShare is (approval + rejection) / eligible, which the quorum
	// is compared with.
	VotedShare float64 `json:"voted_share"`
	// EarlyApproval: the proposal is approved as soon as approval exceeds
	// half of the eligible weight, before the voting period ends.
	EarlyApproval bool `json:"early_approval"`
}

// Ratification says where a proposal stands in the execution log.
type Ratification struct {
	Seq        uint64 `json:"seq"`
	EntryHash  string `json:"entry_hash"`
	Signatures int    `json:"signatures"`
	Required   int    `json:"required"`
	Final      bool   `json:"final"`
	// Signers are the validators whose signatures on the entry this node
	// holds.
	Signers []string `json:"signers,omitempty"`
	// Attesters are the validators that announced they are ready to sign
	// the entry (only while it is not final).
	Attesters []string `json:"attesters,omitempty"`
}

// LogEntry is one execution-log entry.
type LogEntry struct {
	Seq           uint64 `json:"seq"`
	ProposalID    string `json:"proposal_id"`
	Version       string `json:"version"`
	PackageURL    string `json:"package_url"`
	PackageHash   string `json:"package_hash"`
	PackageSize   int64  `json:"package_size"`
	PrevEntryHash string `json:"prev_entry_hash"`
	EntryHash     string `json:"entry_hash"`
	Final         bool   `json:"final"`
	// Void: the validators voided this seq; every executor skips it.
	Void bool `json:"void,omitempty"`
	// Action: "" runs (or, with a schedule, schedules) the package;
	// "activate", "cancel" or "rollback" act on the entry at Target.
	Action        string   `json:"action,omitempty"`
	Target        uint64   `json:"target,omitempty"`
	ActivateAt    int64    `json:"activate_at,omitempty"`
	ActivateAfter int64    `json:"activate_after_seconds,omitempty"`
	Signers       []string `json:"signers"`
	// Required is how many signatures the validator set in force for
	// this entry needs for finality.
	Required int `json:"required,omitempty"`
	// Stuck is set while this node's executor keeps failing on the entry.
	Stuck *StuckEntry `json:"stuck,omitempty"`
	// Executed and Success describe this node's run of the entry, and
	// PostStateSHA256 the state it left.
	Executed        bool   `json:"executed"`
	Success         bool   `json:"success"`
	PostStateSHA256 string `json:"post_state_sha256,omitempty"`
	// Reports counts the network's signed execution reports by post-state
	// hash; more than one key means nodes disagree.
	Reports map[string]int `json:"reports,omitempty"`
	// Reporters lists the reporting nodes per post-state hash (sorted).
	Reporters map[string][]string `json:"reporters,omitempty"`
}

// ValidatorSet describes the validators.
type ValidatorSet struct {
	Validators []Validator `json:"validators"`
	Leader     string      `json:"leader"`
	// Self is true when this node is a validator.
	Self bool `json:"self"`
	// FinalityNeeded is how many of the current validators must sign an
	// entry for it to be final (more than the finality threshold).
	FinalityNeeded int `json:"finality_needed"`
	// Equivocations are validators this node holds two signatures from on
	// different entries at one seq; they count toward neither.
	Equivocations []Equivocation `json:"equivocations"`
}

// Equivocation is the evidence that a validator signed two different
// entries at one seq.
type Equivocation struct {
	Seq         uint64   `json:"seq"`
	Validator   string   `json:"validator"`
	EntryHashes []string `json:"entry_hashes"`
	OpIDs       []string `json:"op_ids"`
}

// Validator is one member of the validator set.
type Validator struct {
	PeerID    string `json:"peer_id"`
	Leader    bool   `json:"leader"`
	Connected bool   `json:"connected"`
	// BannedUntil is set while this node refuses raft traffic with the
	// validator (it stalled the log or left approved proposals unordered
	// as leader).
	BannedUntil string `json:"banned_until,omitempty"`
}

// TestResult answers POST /upgrades/{id}/test.
type TestResult struct {
	ProposalID string `json:"proposal_id"`
	Success    bool   `json:"success"`
	Version    string `json:"version"`
	// StateHash is the SHA-256 of the would-be state.
	StateHash  string `json:"state_hash,omitempty"`
	Diff       string `json:"diff,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Status answers GET /upgrades/status.
type Status struct {
	SystemAvailable bool          `json:"system_available"`
	CurrentVersion  string        `json:"current_version"`
	TotalUpgrades   int           `json:"total_upgrades"`
	WasmAvailable   bool          `json:"wasm_available"`
	IPFSAvailable   bool          `json:"ipfs_available"`
	LastExecutedSeq uint64        `json:"last_executed_seq"`
	FinalSeq        uint64        `json:"final_seq"`
	Paused          bool          `json:"paused"`
	PausedReason    string        `json:"paused_reason,omitempty"`
	StateHash       string        `json:"state_hash"`
	LastUpgrade     *HistoryEntry `json:"last_upgrade,omitempty"`
	// Halted is set when a different entry became final at a seq this
	// node executed: the executor stopped (PausedReason says where).
	Halted bool `json:"halted,omitempty"`
	// Stuck describes the final entry the executor keeps failing on
	// transiently (a package it cannot fetch, a crashing sandbox).
	Stuck *StuckEntry `json:"stuck,omitempty"`
	// Scheduled is the scheduled upgrade that waits for its activation,
	// with the countdown on this node.
	Scheduled *ScheduledEntry `json:"scheduled,omitempty"`
	// Voided lists the latest entries that will never run: seqs the
	// validators voided and scheduled upgrades a cancel entry cancelled.
	Voided []VoidedEntry `json:"voided,omitempty"`
}

// VoidedEntry is an entry of the execution log that never runs.
type VoidedEntry struct {
	Seq uint64 `json:"seq"`
	// ProposalID is the cancelled upgrade ("" for a void seq).
	ProposalID string `json:"proposal_id,omitempty"`
	// CancelledBy is the seq of the cancel entry (0 for a void seq).
	CancelledBy uint64 `json:"cancelled_by,omitempty"`
}

// ScheduledEntry is a scheduled upgrade waiting for its time.
type ScheduledEntry struct {
	Seq         uint64 `json:"seq"`
	ProposalID  string `json:"proposal_id"`
	Version     string `json:"version"`
	ActivatesAt string `json:"activates_at"`
	SecondsLeft int64  `json:"seconds_left"`
}

// StuckEntry is an entry the executor retries with backoff.
type StuckEntry struct {
	Seq        uint64 `json:"seq"`
	ProposalID string `json:"proposal_id,omitempty"`
	Since      string `json:"since"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
	NextTry    string `json:"next_try"`
}

// HistoryEntry is one attempt or rollback in the upgrade history.
type HistoryEntry struct {
	Event           string `json:"event"`
	ProposalID      string `json:"proposal_id"`
	Seq             uint64 `json:"seq,omitempty"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
	ExecutedAt      string `json:"executed_at"`
	Success         bool   `json:"success"`
	Result          string `json:"result,omitempty"`
	Error           string `json:"error,omitempty"`
	PostStateSHA256 string `json:"post_state_sha256,omitempty"`
	// PreStateSHA256 is the state hash before the entry.
	PreStateSHA256 string `json:"pre_state_sha256,omitempty"`
	DurationMS     int64  `json:"duration_ms"`
}

// RollbackResult answers POST /upgrades/{id}/rollback.
type RollbackResult struct {
	Message         string `json:"message"`
	RestoredVersion string `json:"restored_version"`
	PreviousVersion string `json:"previous_version"`
}

// PackageInfo answers POST /packages.
type PackageInfo struct {
	CID    string `json:"cid"`
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// StateView answers GET /state.
type StateView struct {
	Version   string          `json:"version"`
	StateHash string          `json:"state_hash"`
	State     json.RawMessage `json:"state"`
}

// Fetch is one package download by bitswap (ipfs://) that this node runs
// or recently finished.
type Fetch struct {
	Package string `json:"package"`
	// Done is how many bytes arrived; Total is the size the package's root
	// declares (0 until the root block is there).
	Done       int64  `json:"done"`
	Total      int64  `json:"total"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at,omitempty"`
	// Complete is set when every declared byte arrived.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
}
