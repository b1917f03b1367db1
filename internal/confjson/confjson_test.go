package confjson

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type level int

func (l level) MarshalText() ([]byte, error) { return []byte([]string{"low", "high"}[l]), nil }

func (l *level) UnmarshalText(b []byte) error {
	*l = map[string]level{"low": 0, "high": 1}[string(b)]
	return nil
}

type inner struct {
	Wait  time.Duration `json:"wait"`
	Count int           `json:"count"`
}

type plain struct {
	Name string `json:"name"`
}

type section struct {
	Interval time.Duration `json:"interval"`
	Inner    inner         `json:"inner"`
	Plain    plain         `json:"plain"`
	List     []string      `json:"list"`
	Level    level         `json:"level"`
	Hidden   time.Duration `json:"-"`
	Optional time.Duration `json:"optional,omitempty"`
	secret   int
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                 "0s",
		50 * time.Millisecond:             "50ms",
		30 * time.Second:                  "30s",
		2 * time.Minute:                   "2m",
		90 * time.Second:                  "1m30s",
		12 * time.Hour:                    "12h",
		time.Hour + 30*time.Minute:        "1h30m",
		time.Hour + 5*time.Second:         "1h0m5s",
		1500 * time.Millisecond:           "1.5s",
		-2 * time.Minute:                  "-2m",
		10*time.Minute + time.Millisecond: "10m0.001s",
	} {
		t.Run(want, func(t *testing.T) {
			if got := duration(d).String(); got != want {
				t.Fatalf("%v: got %q", d, got)
			}
			back, err := time.ParseDuration(want)
			if err != nil || back != d {
				t.Fatalf("%q parses back as %v, %v", want, back, err)
			}
		})
	}
}

func TestMarshalWritesDurationsAsText(t *testing.T) {
	v := section{Interval: 2 * time.Minute, Inner: inner{Wait: 50 * time.Millisecond, Count: 3},
		Plain: plain{"x"}, List: []string{"a"}, Level: 1, Hidden: time.Second, secret: 7}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"interval":"2m","inner":{"wait":"50ms","count":3},"plain":{"name":"x"},"list":["a"],"level":"high"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestUnmarshal(t *testing.T) {
	def := section{Interval: time.Minute, Inner: inner{Wait: time.Second, Count: 1}, List: []string{"d"}, secret: 7}
	for _, tc := range []struct {
		name, doc string
		want      section
	}{
		{"text", `{"interval":"30s","inner":{"wait":"1h30m"}}`,
			section{Interval: 30 * time.Second, Inner: inner{Wait: 90 * time.Minute, Count: 1}, List: []string{"d"}, secret: 7}},
		{"old integer nanoseconds", `{"interval":30000000000,"inner":{"wait":500000000,"count":2}}`,
			section{Interval: 30 * time.Second, Inner: inner{Wait: 500 * time.Millisecond, Count: 2}, List: []string{"d"}, secret: 7}},
		{"absent keys keep their value", `{}`, def},
		{"trailing white space", "{\"optional\":\"1s\"}\n\n",
			section{Interval: time.Minute, Inner: inner{Wait: time.Second, Count: 1}, List: []string{"d"}, Optional: time.Second, secret: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := def
			got.List = []string{"d"}
			if err := Unmarshal([]byte(tc.doc), &got); err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tc.want)
			if string(a) != string(b) || got.secret != tc.want.secret {
				t.Fatalf("got  %s\nwant %s", a, b)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", `{"intervall":"1s"}`, `unknown field "intervall"`},
		{"unknown nested key", `{"inner":{"wiat":"1s"}}`, `unknown field "wiat"`},
		{"bad duration text", `{"interval":"3 seconds"}`, `duration "3 seconds"`},
		{"fractional nanoseconds", `{"interval":1.5}`, `duration 1.5`},
		{"duration as bool", `{"interval":true}`, `duration true`},
		{"second document", `{} {}`, "trailing data"},
		{"stray brace", `{}}`, "trailing data"},
		{"not an object", `[]`, "cannot unmarshal array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v section
			err := Unmarshal([]byte(tc.doc), &v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := Unmarshal([]byte(`{}`), section{}); err == nil {
		t.Fatal("non-pointer accepted")
	}
}

func TestRoundTrip(t *testing.T) {
	v := section{Interval: 12 * time.Hour, Level: 1, Inner: inner{Wait: 250 * time.Millisecond, Count: 9}, List: []string{"a", "b"}}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back section
	if err := Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the document:\n%s\n%s", b, b2)
	}
	if back.Interval != v.Interval || back.Inner != v.Inner {
		t.Fatalf("round trip: %+v", back)
	}
}
