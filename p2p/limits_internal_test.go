package p2p

import (
	"testing"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// A node told to keep 1016 connections (a validator of a 1000-node
// network) gets a resource manager that admits them, their handshakes and
// their streams; a node with the default watermark keeps libp2p's limits,
// and no limit is ever lowered.
func TestResourceLimitsFollowConnHigh(t *testing.T) {
	def := rcmgr.DefaultLimits.AutoScale().ToPartialLimitConfig()
	big := resourceLimits(1016).ToPartialLimitConfig()
	for name, c := range map[string]struct {
		got  rcmgr.LimitVal
		want int
	}{
		"system conns inbound":      {big.System.ConnsInbound, 1080},
		"system conns":              {big.System.Conns, 1080},
		"system streams inbound":    {big.System.StreamsInbound, 1080 * streamsPerConn},
		"transient conns inbound":   {big.Transient.ConnsInbound, 540},
		"protocol streams inbound":  {big.ProtocolDefault.StreamsInbound, 2160},
		"service streams inbound":   {big.ServiceDefault.StreamsInbound, 2160},
		"peer conns (unchanged)":    {big.PeerDefault.Conns, int(def.PeerDefault.Conns)},
		"system memory (unchanged)": {rcmgr.LimitVal(big.System.Memory >> 20), int(def.System.Memory >> 20)},
	} {
		if int(c.got) < c.want {
			t.Errorf("%s: %d, want at least %d", name, c.got, c.want)
		}
	}
	small := resourceLimits(DefaultConfig().ConnHigh).ToPartialLimitConfig()
	for name, c := range map[string][2]rcmgr.LimitVal{
		"system conns inbound":    {small.System.ConnsInbound, def.System.ConnsInbound},
		"system streams":          {small.System.Streams, def.System.Streams},
		"transient conns inbound": {small.Transient.ConnsInbound, def.Transient.ConnsInbound},
	} {
		if c[0] < c[1] {
			t.Errorf("%s lowered: %d < libp2p's %d", name, c[0], c[1])
		}
	}
}
