package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/synapse-p2p/synapse-p2p/httpapi"
)

type fakeBackend struct{}

const testPeer = "12D3KooWQS1x2b5u39Ua7ZXxcHFVSh5kX7Cz4MTG7mQG5ENn8rdC"

func (fakeBackend) ID() peer.ID { id, _ := peer.Decode(testPeer); return id }
func (fakeBackend) Addrs() []ma.Multiaddr {
	return []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/" + testPeer)}
}
func (fakeBackend) Peers() []peer.AddrInfo {
	id, _ := peer.Decode(testPeer)
	return []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}}
}

func TestConfigValidate(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8000": true,
		"[::1]:8000":     true,
		"localhost:8000": true,
		"":               true, // disabled
		"0.0.0.0:8000":   false,
		":8000":          false,
		"10.1.2.3:8000":  false,
		"nonsense":       false,
	} {
		t.Run(addr, func(t *testing.T) {
			c := httpapi.DefaultConfig()
			c.Addr = addr
			err := c.Validate()
			if (err == nil) != ok {
				t.Errorf("addr %q: err = %v", addr, err)
			}
			if err != nil && !errors.Is(err, httpapi.ErrInvalidConfig) {
				t.Errorf("addr %q: err %v not ErrInvalidConfig", addr, err)
			}
		})
	}
	c := httpapi.DefaultConfig()
	c.Addr, c.Token = "0.0.0.0:8000", "secret"
	if err := c.Validate(); err != nil {
		t.Fatalf("exposed with token: %v", err)
	}
}

func get(t *testing.T, s http.Handler, path string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://localhost:8000"+path, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: not JSON: %q", path, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", path, ct)
	}
	return rec.Code, body
}

func TestEndpoints(t *testing.T) {
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, s, "/healthz"); code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, body)
	}
	if code, body := get(t, s, "/id"); code != 200 || body["id"] != testPeer {
		t.Fatalf("id %d %v", code, body)
	}
	if code, body := get(t, s, "/peers"); code != 200 || body["count"] != float64(1) {
		t.Fatalf("peers %d %v", code, body)
	}
	if code, body := get(t, s, "/nope"); code != 404 || body["error"] == nil {
		t.Fatalf("unknown path %d %v", code, body)
	}
}

func TestStartClose(t *testing.T) {
	c := httpapi.DefaultConfig()
	c.Addr = "127.0.0.1:0"
	s, err := httpapi.New(c, httpapi.Deps{Node: fakeBackend{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
