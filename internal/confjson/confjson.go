// Package confjson is the one JSON form of config.json: encoding/json with
// every time.Duration written as text ("30s", "2m", "12h") and read from
// that text or, as config files written before it, from integer
// nanoseconds. Components keep time.Duration fields in their Config
// structs; Marshal and Unmarshal map them to one text duration type at any depth of
// nested structs (struct types with JSON or text methods of their own are
// left to those methods).
package confjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// duration is a time.Duration in config.json.
type duration time.Duration

// String is the duration as config.json writes it: Go's form without
// zero minutes and seconds at the end ("12h", "2m", "1m30s", "50ms").
func (d duration) String() string {
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// MarshalText writes the duration as text.
func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a duration string ("30s") or an integer of
// nanoseconds (the form of config files written before durations were
// text).
func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a number with a unit, such as \"30s\" or \"2m\"", s)
		}
		*d = duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"30s\" (or integer nanoseconds)", b)
	}
	*d = duration(n)
	return nil
}

// Marshal is json.Marshal of v with its durations as text.
func Marshal(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	m := reflect.New(mirror(rv.Type())).Elem()
	convert(m, rv)
	return json.Marshal(m.Interface())
}

// Unmarshal decodes the JSON object in b over *v (a pointer to a struct):
// absent keys keep their value, unknown keys and data after the object are
// errors, durations are read as duration reads them.
func Unmarshal(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("confjson: Unmarshal needs a non-nil pointer")
	}
	m := reflect.New(mirror(rv.Elem().Type()))
	convert(m.Elem(), rv.Elem())
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m.Interface()); err != nil {
		return err
	}
	// A second document (two configs pasted into one file) would be
	// ignored silently otherwise.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	convert(rv.Elem(), m.Elem())
	return nil
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	textType     = reflect.TypeFor[duration]()
)

// mirror is t with every time.Duration replaced by duration, through
// nested structs; t itself when it holds none. A mirrored struct keeps the
// exported fields with their tags (unexported ones are never in JSON).
func mirror(t reflect.Type) reflect.Type {
	if t == durationType {
		return textType
	}
	if t.Kind() != reflect.Struct || hasOwnJSON(t) {
		return t
	}
	fields := make([]reflect.StructField, 0, t.NumField())
	changed := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if m := mirror(f.Type); m != f.Type {
			f.Type, changed = m, true
		}
		fields = append(fields, f)
	}
	if !changed {
		return t
	}
	return reflect.StructOf(fields)
}

// hasOwnJSON reports whether t encodes itself.
func hasOwnJSON(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(reflect.TypeFor[json.Marshaler]()) ||
		t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) ||
		p.Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// convert copies src into dst where one is the other's mirror: same
// types are assigned, durations converted, structs copied field by name
// (fields the mirror lacks keep their value).
func convert(dst, src reflect.Value) {
	switch {
	case dst.Type() == src.Type():
		dst.Set(src)
	case src.Kind() == reflect.Int64:
		dst.SetInt(src.Int())
	default:
		for i := range src.NumField() {
			if !src.Type().Field(i).IsExported() {
				continue
			}
			if f := dst.FieldByName(src.Type().Field(i).Name); f.IsValid() {
				convert(f, src.Field(i))
			}
		}
	}
}
