package p2p

import (
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func addrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

func strs(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

const relayID = "12D3KooWQS1x2b5u39Ua7ZXxcHFVSh5kX7Cz4MTG7mQG5ENn8rdC"

func TestAddrsFactory(t *testing.T) {
	found := addrs(t,
		"/ip4/127.0.0.1/tcp/4001",
		"/ip4/10.1.2.3/tcp/4001",
		"/ip4/192.0.2.7/udp/4001/quic-v1",
		"/ip4/198.51.100.1/tcp/4001/p2p/"+relayID+"/p2p-circuit",
	)
	cases := []struct {
		name               string
		announce, noAnnoun []string
		want               []string
	}{
		{
			name:     "announce replaces direct addresses, keeps relay addresses",
			announce: []string{"/ip4/203.0.113.9/tcp/4001", "/dns4/node.example/udp/4001/quic-v1"},
			want: []string{
				"/dns4/node.example/udp/4001/quic-v1",
				"/ip4/198.51.100.1/tcp/4001/p2p/" + relayID + "/p2p-circuit",
				"/ip4/203.0.113.9/tcp/4001",
			},
		},
		{
			name:     "no_announce drops exact addresses and ranges",
			noAnnoun: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/10.0.0.0/ipcidr/8"},
			want: []string{
				"/ip4/192.0.2.7/udp/4001/quic-v1",
				"/ip4/198.51.100.1/tcp/4001/p2p/" + relayID + "/p2p-circuit",
			},
		},
		{
			name:     "a range also drops relay addresses through relays inside it",
			noAnnoun: []string{"/ip4/198.51.100.0/ipcidr/24"},
			want:     []string{"/ip4/10.1.2.3/tcp/4001", "/ip4/127.0.0.1/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1"},
		},
		{
			name:     "no_announce applies to announced addresses too",
			announce: []string{"/ip4/203.0.113.9/tcp/4001", "/ip4/192.0.2.9/tcp/4001"},
			noAnnoun: []string{"/ip4/192.0.2.0/ipcidr/24", "/ip4/198.51.100.1/tcp/4001/p2p/" + relayID + "/p2p-circuit"},
			want:     []string{"/ip4/203.0.113.9/tcp/4001"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newAddrsFactory(tc.announce, tc.noAnnoun)
			if err != nil {
				t.Fatal(err)
			}
			got := strs(f.apply(slices.Clone(found)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	if f, err := newAddrsFactory(nil, nil); f != nil || err != nil {
		t.Fatalf("empty config: factory %v err %v, want libp2p's default", f, err)
	}
}

func TestAddrsFactoryRejects(t *testing.T) {
	for name, c := range map[string][2][]string{
		"announce not a multiaddr":  {{"203.0.113.9:4001"}, nil},
		"announce with own peer ID": {{"/ip4/203.0.113.9/tcp/4001/p2p/" + relayID}, nil},
		"no_announce garbage":       {nil, {"10.0.0.0/8"}},
		"prefix too long":           {nil, {"/ip4/10.0.0.0/ipcidr/33"}},
		"ipcidr without an IP":      {nil, {"/dns4/x.example/ipcidr/8"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := newAddrsFactory(c[0], c[1]); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestTransportAndRelayOf(t *testing.T) {
	relay, _ := peer.Decode(relayID)
	for addr, want := range map[string]string{
		"/ip4/203.0.113.9/tcp/4001":                                         "tcp",
		"/ip4/203.0.113.9/udp/4001/quic-v1":                                 "quic-v1",
		"/ip6/2001:db8::1/udp/4001/quic-v1/webtransport":                    "webtransport",
		"/dns4/a.example/tcp/443/wss":                                       "wss",
		"/ip4/203.0.113.9/udp/4001/quic-v1/p2p/" + relayID + "/p2p-circuit": "quic-v1",
		"/p2p/" + relayID + "/p2p-circuit":                                  "unknown",
	} {
		t.Run(addr, func(t *testing.T) {
			if got := transportOf(ma.StringCast(addr)); got != want {
				t.Errorf("transportOf(%s) = %s, want %s", addr, got, want)
			}
		})
	}
	if r, ok := relayOf(ma.StringCast("/ip4/203.0.113.9/tcp/4001/p2p/" + relayID + "/p2p-circuit")); !ok || r != relay {
		t.Fatalf("relayOf = %s %v", r, ok)
	}
	if _, ok := relayOf(ma.StringCast("/ip4/203.0.113.9/tcp/4001/p2p/" + relayID)); ok {
		t.Fatal("a direct address has no relay")
	}
	got := relaysOf(addrs(t,
		"/ip4/203.0.113.9/tcp/4001/p2p/"+relayID+"/p2p-circuit",
		"/ip4/203.0.113.9/udp/4001/quic-v1/p2p/"+relayID+"/p2p-circuit",
	))
	if len(got) != 1 || got[0] != relay {
		t.Fatalf("relaysOf = %v, want one relay", got)
	}
}
