package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// diffSummary lists the paths that differ between two JSON documents, in
// sorted order, at most max lines.
func diffSummary(a, b []byte, max int) []string {
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return nil
	}
	var out []string
	total := 0
	add := func(s string) {
		total++
		if len(out) < max {
			out = append(out, s)
		}
	}
	var walk func(path string, x, y any)
	walk = func(path string, x, y any) {
		mx, okx := x.(map[string]any)
		my, oky := y.(map[string]any)
		if okx && oky {
			keys := map[string]bool{}
			for k := range mx {
				keys[k] = true
			}
			for k := range my {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				p := k
				if path != "" {
					p = path + "." + k
				}
				xv, inx := mx[k]
				yv, iny := my[k]
				switch {
				case !inx:
					add(fmt.Sprintf("+ %s = %s", p, short(yv)))
				case !iny:
					add(fmt.Sprintf("- %s", p))
				default:
					walk(p, xv, yv)
				}
			}
			return
		}
		if short(x) != short(y) || !jsonEqual(x, y) {
			add(fmt.Sprintf("~ %s: %s -> %s", path, short(x), short(y)))
		}
	}
	walk("", va, vb)
	if total > len(out) {
		out = append(out, fmt.Sprintf("… and %d more changes", total-len(out)))
	}
	return out
}

func jsonEqual(x, y any) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(bx, by)
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
