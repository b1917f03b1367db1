package node

import (
	"encoding/json"
	"maps"
)

// Source is where a value of the effective configuration came from.
type Source string

// Sources, from lowest to highest precedence.
const (
	SourceDefault Source = "default" // DefaultConfig
	SourceFile    Source = "file"    // <data>/config.json
	SourceEnv     Source = "env"     // a SYNAPSE_* variable
	SourceFlag    Source = "flag"    // the command line
)

// ConfigSources maps config.json keys, dotted ("p2p.listen_addrs"), to
// the source of their value; a key it does not hold has its default.
// A list is one value.
type ConfigSources map[string]Source

// setKeys records every value the JSON document doc holds as from source.
func (s ConfigSources) setKeys(doc []byte, source Source) error {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return err
	}
	for k := range leafKeys(v, "") {
		s[k] = source
	}
	return nil
}

// leafKeys are the dotted keys of the values in v (objects are walked,
// anything else is a value).
func leafKeys(v any, prefix string) map[string]any {
	out := map[string]any{}
	obj, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return out
	}
	for k, sub := range obj {
		if prefix != "" {
			k = prefix + "." + k
		}
		maps.Copy(out, leafKeys(sub, k))
	}
	return out
}

// redacted replaces the API token in ShowConfig.
const redacted = "(redacted)"

// ShowConfig is what `synapse-p2p config show` prints: the config as
// config.json holds it (the API token redacted) and the source of every
// key, as indented JSON:
//
//	{"config": {...}, "sources": {"api.addr": "flag", "genesis": "file", ...}}
func ShowConfig(c Config, src ConfigSources) ([]byte, error) {
	if c.API.Token != "" {
		c.API.Token = redacted
	}
	doc, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	keys := leafKeys(v, "")
	sources := make(map[string]Source, len(keys))
	for k := range keys {
		if sources[k] = src[k]; sources[k] == "" {
			sources[k] = SourceDefault
		}
	}
	b, err := json.MarshalIndent(struct {
		Config  json.RawMessage   `json:"config"`
		Sources map[string]Source `json:"sources"` // sorted by key
	}{doc, sources}, "", "  ")
	return append(b, '\n'), err
}
