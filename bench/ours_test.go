package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/netprov/netprov/stack/link/pipe"
)

// KnownBugsEnv, when set to 1, runs the tests of stack bugs that are known
// and not fixed yet (they fail until the owner fixes them).
const KnownBugsEnv = "NETPROV_BENCH_KNOWN_BUGS"

// TestOursLosslessLinkNoFastRetransmit checks that on the benchmark's link (with a deeper queue),
// when it neither drops, duplicates nor reorders a frame (the pipe's own
// counters prove it for the run; otherwise the test skips), a bulk
// transfer makes no fast retransmission and enters no fast recovery: with
// every segment arriving once and in order, a Linux receiver never sends
// three identical pure ACKs, so a fast retransmit is spurious (and the
// receiver's D-SACK says so). Timer-driven retransmissions (RTO, tail-loss
// probes) are not checked: on a loaded machine a descheduled link
// goroutine can legitimately delay an ACK past a ~2 ms probe timeout.
//
// The link queue is made deeper than the largest window the receiver can
// offer (tcp_rmem[2] / 2 = 3 MiB, about 2200 frames at MTU 1500), so that
// a sender whose cwnd outgrows the benchmark's 1000-frame queue cannot
// make the link drop: otherwise the run would be skipped below.
//
// This caught a stack/tcp bug (fixed): window.go (*endpoint).consumeLocked
// decided to send a window update from the raw free buffer space, while
// the window transmit then offered (selectWindow) is also capped by
// rcv_ssthresh (Linux's __tcp_cleanup_rbuf compares __tcp_select_window's
// result instead). So each application read sent an ACK identical to the
// previous one, the sender counted them as duplicate ACKs and after three
// made a spurious fast retransmit and cut cwnd.
func TestOursLosslessLinkNoFastRetransmit(t *testing.T) {
	for _, mtu := range bulkMTUs {
		t.Run(fmt.Sprintf("mtu%d", mtu), func(t *testing.T) {
			cfg := DefaultConfig(mtu)
			cfg.LinkQueueLen = 4096
			n := newNetwork(t, Implementation{Name: "ours", New: newOursNetwork}, cfg).(*oursNetwork)
			client, server := connectPair(t, n)
			guard := newStallGuard(t, stallTimeout)
			guard.track(client)
			guard.track(server)
			const total = 64 << 20
			recv := newSink(server, bulkReadBuf)
			recv.drain(total)
			payload := make([]byte, bulkBytesPerOp)
			for range total / bulkBytesPerOp {
				if err := writeAll(client, payload, bulkWriteChunk); err != nil {
					t.Fatalf("write: %v", guard.explain(err))
				}
				guard.step()
			}
			recv.wait(t)

			ab, ba := n.clientEnd.ImpairmentStats(), n.serverEnd.ImpairmentStats()
			if ab != (pipe.ImpairmentStats{}) || ba != (pipe.ImpairmentStats{}) {
				t.Skipf("the link impaired frames this run (client→server %+v, server→client %+v): nothing to check", ab, ba)
			}
			ext := &n.client.Stack.Stats().TCPExt
			if fr, rec := ext.TCPFastRetrans.Load(), ext.TCPSackRecovery.Load()+ext.TCPRenoRecovery.Load(); fr != 0 || rec != 0 {
				var snmp strings.Builder
				n.client.Stack.Stats().WriteSNMP(&snmp)
				t.Errorf("lossless in-order link: sender made %d fast retransmissions and entered recovery %d times (receiver D-SACKs: %d)\n%s",
					fr, rec, n.server.Stack.Stats().TCPExt.TCPDSACKOldSent.Load(), snmp.String())
			}
		})
	}
}
