package upgrade

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every Validate error wraps ErrInvalidConfig and names the JSON key.
func TestConfigValidate(t *testing.T) {
	ok := Config{DataDir: "x"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	def := DefaultConfig()
	def.DataDir = "x"
	if err := def.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, c := range []struct {
		key string
		cfg Config
	}{
		{"data_dir", Config{}},
		{"max_package_bytes", Config{DataDir: "x", MaxPackageBytes: -1}},
		{"timeout", Config{DataDir: "x", Timeout: -time.Second}},
		{"max_output_bytes", Config{DataDir: "x", MaxOutputBytes: -1}},
		{"download_base_timeout", Config{DataDir: "x", DownloadBaseTimeout: -1}},
		{"download_min_rate", Config{DataDir: "x", DownloadMinRate: -1}},
		{"download_min_rate", Config{DataDir: "x", DownloadMinRate: minDownloadMinRate - 1}},
		{"download_idle_timeout", Config{DataDir: "x", DownloadIdleTimeout: -1}},
		{"memory_limit_bytes", Config{DataDir: "x", MemoryLimitBytes: pageSize - 1}},
		{"memory_limit_bytes", Config{DataDir: "x", MemoryLimitBytes: 4<<30 + 1}},
		{"isolation", Config{DataDir: "x", Isolation: 7}},
	} {
		t.Run(c.key, func(t *testing.T) {
			err := c.cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), c.key+":") {
				t.Fatalf("err = %q does not name %s", err, c.key)
			}
		})
	}
}
