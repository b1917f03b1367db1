package p2p

import "github.com/libp2p/go-libp2p/p2p/protocol/holepunch"

// holePunchTracer counts DCUtR events.
type holePunchTracer struct{ st *natState }

func (t holePunchTracer) Trace(evt *holepunch.Event) {
	switch e := evt.Evt.(type) {
	case *holepunch.HolePunchAttemptEvt:
		t.st.hpAttempts.Add(1)
	case *holepunch.EndHolePunchEvt:
		if e.Success {
			t.st.hpSuccesses.Add(1)
		} else {
			t.st.hpFailures.Add(1)
		}
		if e.Success {
			t.st.log.Info("hole punch succeeded", "peer", evt.Remote, "took", e.EllapsedTime)
		} else {
			t.st.log.Info("hole punch failed", "peer", evt.Remote, "took", e.EllapsedTime, "err", e.Error)
		}
	case *holepunch.DirectDialEvt:
		t.st.directDials.Add(1)
		if e.Success {
			t.st.directDialsOK.Add(1)
		}
	}
}
