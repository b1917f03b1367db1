package upgrades_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// guides are the documents whose code blocks must be copies of files that
// are compiled, built or run by tests (or, for the Rust sources, by
// scripts/build-rust-guests.sh in CI).
var guides = []string{"docs/authoring.md", "docs/wasm-abi.md"}

var snippetRef = regexp.MustCompile(`^<!-- snippet: ([^ #]+)(?:#([a-z0-9-]+))? -->$`)

// snippet is one fenced code block of a guide and the file it copies.
type snippet struct {
	line   int
	path   string
	region string
	body   string
}

// guideSnippets reads every fenced code block of a Markdown file. Each must
// follow a line <!-- snippet: PATH[#REGION] --> naming what it copies.
func guideSnippets(t *testing.T, doc string) []snippet {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, doc))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []snippet
	var prev string
	var cur *snippet
	var body []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			m := snippetRef.FindStringSubmatch(prev)
			if m == nil {
				t.Errorf("%s:%d: code block without a <!-- snippet: PATH[#REGION] --> line before it", doc, n)
				m = []string{"", "", ""}
			}
			cur = &snippet{line: n, path: m[1], region: m[2]}
			body = nil
		case cur != nil && line == "```":
			cur.body = strings.Join(body, "\n")
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s:%d: unterminated code block", doc, cur.line)
	}
	return out
}

// source returns a file, or the lines between "snippet:begin REGION" and
// "snippet:end REGION" markers in it.
func source(path, region string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		return "", err
	}
	text := strings.TrimRight(string(b), "\n")
	if region == "" {
		return text, nil
	}
	var lines []string
	in, found := false, false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasSuffix(l, "snippet:begin "+region):
			in, found = true, true
		case strings.HasSuffix(l, "snippet:end "+region):
			in = false
		case in:
			lines = append(lines, l)
		}
	}
	if !found {
		return "", fmt.Errorf("%s has no region %q", path, region)
	}
	return strings.Join(lines, "\n"), nil
}

// TestGuideSnippetsAreTested checks that every code block of the guides is
// an exact copy of a file (or a marked region of one) in the repository,
// so the guides cannot drift from code that is built and run.
func TestGuideSnippetsAreTested(t *testing.T) {
	for _, doc := range guides {
		snips := guideSnippets(t, doc)
		if doc == "docs/authoring.md" && len(snips) < 10 {
			t.Errorf("%s has %d code blocks; the guide shows ten files", doc, len(snips))
		}
		for _, s := range snips {
			if s.path == "" {
				continue
			}
			want, err := source(s.path, s.region)
			if err != nil {
				t.Errorf("%s:%d: %v", doc, s.line, err)
				continue
			}
			if s.body != want {
				t.Errorf("%s:%d: the block differs from %s%s; copy it again:\n%s", doc, s.line, s.path,
					map[bool]string{true: "#" + s.region}[s.region != ""], want)
			}
		}
	}
}
