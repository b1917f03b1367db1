package raftnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// publishedFile records the highest seq this validator has published its
// ratify op for, so a restart does not publish them again.
const publishedFile = "published"

// publishLoop walks the committed entries in seq order; for each it calls
// Governance.CheckTally and then Governance.PublishRatify, retrying with
// backoff until both succeed, and only then moves on.
func (s *Service) publishLoop() {
	defer s.wg.Done()
	done, err := s.loadPublished()
	if err != nil {
		s.log.Error("cannot read the published watermark; publishing from seq 1", "err", err)
	}
	next := done + 1
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		rec, ok := s.fsm().record(next)
		if !ok {
			select {
			case <-s.ctx.Done():
				return
			case <-s.applied:
			case <-t.C:
			}
			continue
		}
		s.events.emit(Event{Kind: EventEntry, Entry: rec.Entry})
		if !s.publish(rec) {
			return
		}
		if err := s.storePublished(next); err != nil {
			s.log.Error("store the published watermark", "seq", next, "err", err)
		}
		s.events.emit(Event{Kind: EventPublished, Entry: rec.Entry})
		next++
	}
}

// publish retries CheckTally + PublishRatify for rec until they succeed; it
// returns false when the service closes first.
func (s *Service) publish(rec record) bool {
	var delay time.Duration
	for {
		err := s.deps.Governance.CheckTally(s.ctx, rec.Ratify.Candidate())
		if err != nil {
			err = fmt.Errorf("check tally: %w", err)
		} else if err = s.deps.Governance.PublishRatify(s.ctx, rec.Entry); err != nil {
			err = fmt.Errorf("publish ratify: %w", err)
		}
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		delay = s.retryDelay(delay)
		s.log.Warn("ratify op not published; retrying", "seq", rec.Entry.Seq, "proposal", rec.Entry.ProposalID, "err", err, "in", delay)
		s.events.emit(Event{Kind: EventPublishRetry, Entry: rec.Entry, Err: err})
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func (s *Service) loadPublished() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, publishedFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("raftnet: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("raftnet: corrupt %s: %w", publishedFile, err)
	}
	return n, nil
}

// storePublished writes the watermark atomically (temp + fsync + rename).
func (s *Service) storePublished(seq uint64) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(s.cfg.Dir, publishedFile)
	f, err := os.CreateTemp(s.cfg.Dir, publishedFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(strconv.FormatUint(seq, 10) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
