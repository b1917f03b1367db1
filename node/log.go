package node

import (
	"fmt"
	"io"
	"log/slog"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger returns a text logger at the configured level writing to w.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, _, err := NewLoggerVar(w, level)
	return l, err
}

// NewLoggerVar is NewLogger with the level held in a LevelVar, so the
// caller can change it later (simnet silences the teardown, where every
// peer disappearing is expected).
func NewLoggerVar(w io.Writer, level string) (*slog.Logger, *slog.LevelVar, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	lv := new(slog.LevelVar)
	lv.Set(l)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), lv, nil
}
