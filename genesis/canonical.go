package genesis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// Canonical returns the canonical JSON form of a JSON document: object keys
// sorted, no insignificant white space, numbers exactly as written. Two
// documents that differ only in key order or spacing have the same canonical
// form, so hashes over it are stable.
func Canonical(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("genesis: canonical JSON: %w", err)
	}
	if !atEOF(dec) {
		return nil, fmt.Errorf("genesis: canonical JSON: trailing data after the document")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encoding/json writes map keys in sorted order.
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("genesis: canonical JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CanonicalHash is the hex SHA-256 of Canonical(doc).
func CanonicalHash(doc []byte) (string, error) {
	c, err := Canonical(doc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// atEOF reports whether dec has nothing but white space left after the
// value it decoded. Decoder.More cannot tell: it reports false before a
// stray ']' or '}'.
func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}
