package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// legacySeconds are keys of config files written before every duration was
// text: integer seconds under a name with the unit, now a duration under
// the name without it.
var legacySeconds = []struct {
	section  []string
	old, key string
}{
	{[]string{"p2p"}, "discovery_seconds", "discovery_interval"},
	{[]string{"p2p", "relay_service"}, "connection_duration_seconds", "connection_duration"},
	{[]string{"p2p", "relay_service"}, "reservation_ttl_seconds", "reservation_ttl"},
}

// migrateConfig rewrites the legacy keys of a config.json document into
// today's form ("discovery_seconds": 30 becomes "discovery_interval":
// "30s"). A document without them, or one that is not a JSON object, is
// returned as it is (the strict decoder reports what is wrong with it).
func migrateConfig(b []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(b, &doc) != nil {
		return b, nil
	}
	changed := false
	for _, l := range legacySeconds {
		c, err := migrateKey(doc, l.section, l.old, l.key)
		if err != nil {
			return nil, err
		}
		changed = changed || c
	}
	if !changed {
		return b, nil
	}
	return json.Marshal(doc)
}

// migrateKey replaces old by key in the object at path inside doc.
func migrateKey(doc map[string]json.RawMessage, path []string, old, key string) (bool, error) {
	name := path[0]
	raw, ok := doc[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return false, nil
	}
	var sec map[string]json.RawMessage
	if json.Unmarshal(raw, &sec) != nil {
		return false, nil // not an object: the strict decoder says so
	}
	var changed bool
	if len(path) > 1 {
		c, err := migrateKey(sec, path[1:], old, key)
		if err != nil {
			return false, fmt.Errorf("%s.%w", name, err)
		}
		changed = c
	} else if v, ok := sec[old]; ok {
		if _, both := sec[key]; both {
			return false, fmt.Errorf("%s: %s and %s are the same setting (%s is its old name): keep %s", name, old, key, old, key)
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 32)
		if err != nil || n < 0 {
			return false, fmt.Errorf("%s: %s %s: want whole seconds (or %s: \"30s\")", name, old, v, key)
		}
		delete(sec, old)
		sec[key], _ = json.Marshal(fmt.Sprintf("%ds", n))
		changed = true
	}
	if !changed {
		return false, nil
	}
	b, err := json.Marshal(sec)
	doc[name] = b
	return true, err
}
