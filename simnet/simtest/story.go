package simtest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/synapse-p2p/synapse-p2p/gossip"
	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

// Dist summarises one stage over the nodes that reached it: milliseconds
// of virtual time since the proposal was published.
type Dist struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50_ms"`
	P99   int64 `json:"p99_ms"`
	Max   int64 `json:"max_ms"`
}

func dist(ms []int64) Dist {
	if len(ms) == 0 {
		return Dist{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	q := func(p float64) int64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Dist{Count: len(s), P50: q(0.50), P99: q(0.99), Max: s[len(s)-1]}
}

// Story is what RunStory measured, in virtual time.
type Story struct {
	Nodes      int    `json:"nodes"`
	ProposalID string `json:"proposal_id"`
	PackageURL string `json:"package_url"`
	Seq        uint64 `json:"seq"`
	// Visible, Final, Fetched and Executed: when each node saw the
	// proposal, held the entry as final, had fetched the package (nodes
	// that fetched it over bitswap; node 0 holds it), executed it.
	Visible  Dist `json:"visible"`
	Final    Dist `json:"final"`
	Fetched  Dist `json:"fetched"`
	Executed Dist `json:"executed"`
	// Approved: node 0 sees the proposal approved. Ratified: the raft
	// leader committed its slot. ReportedAll: node 0 holds a report from
	// every node.
	Approved    int64 `json:"approved_ms"`
	Ratified    int64 `json:"ratified_ms"`
	ReportedAll int64 `json:"reported_all_ms"`
	// RatifiedToExecutedAll is Executed.Max − Ratified.
	RatifiedToExecutedAll int64 `json:"ratified_to_executed_all_ms"`
	// StateHashes counts the distinct post-state hashes the nodes report
	// (1: every node reached the same state).
	StateHashes int `json:"state_hashes"`
	// LeaderChanges counts raft leader changes the validators saw during
	// the story; MaxHeartbeatLag is the longest time a follower went
	// without hearing from the leader (sampled every 10 ms).
	LeaderChanges   uint64        `json:"leader_changes"`
	MaxHeartbeatLag time.Duration `json:"max_heartbeat_lag_ns"`
	// Drops sums what GossipSub dropped on all nodes for lack of queue
	// room (from the start of the network, not only the story).
	Drops gossip.Drops `json:"gossip_drops"`
	// Slowest are the last nodes to execute (indexes, the last first; at
	// most 8): who the tail is.
	Slowest []int `json:"slowest"`
}

// RunStory carries one upgrade through the network: node 0 imports pkg
// into its content store and proposes it as ipfs://CID; every node votes
// for it as soon as it sees it; the validators ratify it; every node
// fetches the package over bitswap, executes it and publishes its report.
// It returns when node 0 holds every node's report, or with an error when
// ctx (virtual time) ends first.
func (n *Net) RunStory(ctx context.Context, pkg []byte, version string) (Story, error) {
	st := Story{Nodes: len(n.Nodes)}
	origin := n.Nodes[0]
	gov, _, pkgs := origin.APIBackends()
	info, err := pkgs.AddPackage(ctx, bytes.NewReader(pkg))
	if err != nil {
		return st, fmt.Errorf("simtest: import package: %w", err)
	}
	st.PackageURL = info.URL

	var changesBefore uint64
	for i := 0; i < n.cfg.Validators; i++ {
		changesBefore += n.Nodes[i].Raft().LeaderChanges()
	}

	rec := newRecorder(len(n.Nodes))
	n.story.Store(rec)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i, nd := range n.Nodes {
		events, cancel := nd.Gossip().Subscribe(gossip.ProposalChanged, gossip.EntryFinal)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			n.follow(sctx, i, events, rec)
		}()
	}

	p, err := gov.Propose(ctx, httpapi.ProposeRequest{
		Title:       "Set version",
		Description: "simtest story",
		Version:     version,
		PackageURL:  info.URL,
		PackageHash: info.SHA256,
		PackageSize: info.Size,
	})
	if err != nil {
		return st, fmt.Errorf("simtest: propose: %w", err)
	}
	rec.start(p.ProposalID)
	st.ProposalID = p.ProposalID

	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !n.poll(rec, &st, info.CID) {
		select {
		case <-ctx.Done():
			n.summarise(rec, &st, changesBefore)
			return st, fmt.Errorf("simtest: story stopped (%d visible, %d final, %d executed of %d): %w",
				st.Visible.Count, st.Final.Count, st.Executed.Count, len(n.Nodes), ctx.Err())
		case <-t.C:
		}
	}
	n.summarise(rec, &st, changesBefore)
	if st.StateHashes != 1 {
		return st, fmt.Errorf("simtest: the nodes report %d different post-states", st.StateHashes)
	}
	return st, nil
}

// Progress counts the nodes that reached each stage of the running story
// (zeros before RunStory).
func (n *Net) Progress() (visible, final, executed int) {
	r := n.story.Load()
	if r == nil {
		return 0, 0, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	count := func(ds []time.Duration) (c int) {
		for _, d := range ds {
			if d >= 0 {
				c++
			}
		}
		return c
	}
	if r.t0.IsZero() {
		return 0, 0, 0
	}
	return count(r.visible), count(r.final), count(r.executed)
}

// recorder holds per-node stage times.
type recorder struct {
	mu       sync.Mutex
	t0       time.Time
	proposal string
	seq      uint64
	visible  []time.Duration
	final    []time.Duration
	fetched  []time.Duration
	executed []time.Duration
	approved time.Duration
	ratified time.Duration
	reported time.Duration
	lag      time.Duration
}

func newRecorder(n int) *recorder {
	return &recorder{
		visible: make([]time.Duration, n), final: make([]time.Duration, n),
		fetched: make([]time.Duration, n), executed: make([]time.Duration, n),
		approved: -1, ratified: -1, reported: -1,
	}
}

func (r *recorder) start(proposal string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t0, r.proposal = time.Now(), proposal
	for i := range r.visible {
		r.visible[i], r.final[i], r.fetched[i], r.executed[i] = -1, -1, -1, -1
	}
}

// mark sets (*slot)[i] to now unless set; it reports whether it did.
func (r *recorder) mark(slot []time.Duration, i int) bool {
	if r.t0.IsZero() || slot[i] >= 0 {
		return false
	}
	slot[i] = time.Since(r.t0)
	return true
}

// follow watches node i's gossip events: it votes for the proposal as soon
// as the node sees it and records when the entry became final there.
func (n *Net) follow(ctx context.Context, i int, events <-chan gossip.Event, r *recorder) {
	nd := n.Nodes[i]
	gov, _, _ := nd.APIBackends()
	for {
		var ev gossip.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-events:
			if !ok {
				return
			}
		}
		r.mu.Lock()
		prop := r.proposal
		r.mu.Unlock()
		if prop == "" {
			continue
		}
		switch {
		case ev.Kind == gossip.ProposalChanged && ev.ProposalID == prop:
			r.mu.Lock()
			first := r.mark(r.visible, i)
			r.mu.Unlock()
			if first {
				if _, err := gov.Vote(ctx, prop, "approval"); err != nil && ctx.Err() == nil {
					r.mu.Lock()
					r.visible[i] = -1 // vote again on the next event
					r.mu.Unlock()
				}
			}
		case ev.Kind == gossip.EntryFinal:
			if e, ok := nd.Gossip().Final(ev.Seq); ok && e.ProposalID == prop {
				r.mu.Lock()
				r.mark(r.final, i)
				if r.seq == 0 {
					r.seq = ev.Seq
				}
				r.mu.Unlock()
			}
		}
	}
}

// poll looks at what events do not announce (the leader's slot, fetches,
// executions, reports at node 0) and reports whether the story is over.
func (n *Net) poll(r *recorder, st *Story, cid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.t0.IsZero() {
		return false
	}
	since := time.Since(r.t0)
	for i := 0; i < n.cfg.Validators; i++ {
		r.lag = max(r.lag, n.Nodes[i].Raft().HeartbeatLag())
	}
	if r.approved < 0 {
		if p, err := n.Nodes[0].Gossip().Proposal(r.proposal, time.Now()); err == nil && p.Status != gossip.StatusVoting {
			r.approved = since
		}
	}
	if r.ratified < 0 {
		if l := n.Leader(); l >= 0 {
			for _, s := range n.Nodes[l].Raft().Slots() {
				if s.ProposalID == r.proposal {
					r.ratified = since
				}
			}
		}
	}
	done := 0
	for i, nd := range n.Nodes {
		if r.fetched[i] < 0 && i > 0 && !nd.FetchedAt(cid).IsZero() {
			r.mark(r.fetched, i)
		}
		if r.executed[i] < 0 && r.seq > 0 && nd.Upgrades().LastExecutedSeq() >= r.seq {
			r.mark(r.executed, i)
		}
		if r.executed[i] >= 0 {
			done++
		}
	}
	if done == len(n.Nodes) && r.reported < 0 {
		reports := 0
		for _, ids := range n.Nodes[0].Gossip().Reports(r.seq) {
			reports += len(ids)
		}
		if reports >= len(n.Nodes) {
			r.reported = since
		}
	}
	return r.reported >= 0
}

func (n *Net) summarise(r *recorder, st *Story, changesBefore uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := func(ds []time.Duration) []int64 {
		var out []int64
		for _, d := range ds {
			if d >= 0 {
				out = append(out, d.Milliseconds())
			}
		}
		return out
	}
	st.Seq = r.seq
	st.Visible, st.Final = dist(ms(r.visible)), dist(ms(r.final))
	st.Fetched, st.Executed = dist(ms(r.fetched)), dist(ms(r.executed))
	st.Approved, st.Ratified, st.ReportedAll = r.approved.Milliseconds(), r.ratified.Milliseconds(), r.reported.Milliseconds()
	if r.ratified >= 0 && st.Executed.Count == len(n.Nodes) {
		st.RatifiedToExecutedAll = st.Executed.Max - st.Ratified
	}
	st.MaxHeartbeatLag = r.lag
	order := make([]int, 0, len(r.executed))
	for i, d := range r.executed {
		if d >= 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(r.executed[b], r.executed[a]) })
	st.Slowest = order[:min(8, len(order))]
	var changes uint64
	for i := 0; i < n.cfg.Validators; i++ {
		changes += n.Nodes[i].Raft().LeaderChanges()
	}
	st.LeaderChanges = changes - changesBefore
	hashes := map[string]bool{}
	for _, nd := range n.Nodes {
		hashes[nd.Upgrades().Status().StateSHA256] = true
	}
	st.StateHashes = len(hashes)
	st.Drops = n.Drops()
}

// Drops sums what GossipSub dropped on every node so far.
func (n *Net) Drops() gossip.Drops {
	var d gossip.Drops
	for _, nd := range n.Nodes {
		x := nd.Gossip().Drops()
		d.RPCs += x.RPCs
		d.Validation += x.Validation
		d.Undeliverable += x.Undeliverable
	}
	return d
}
