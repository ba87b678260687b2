package neighbor

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

var (
	peer    = netip.MustParseAddr("10.213.0.2")
	peerMAC = header.MAC{2, 0, 0, 0, 0, 2}
	newMAC  = header.MAC{2, 0, 0, 0, 0, 3}
)

type probe struct {
	at      time.Duration
	target  netip.Addr
	unicast bool
	mac     header.MAC
}

type sent struct {
	mac  header.MAC
	data string
}

// harness records what a table sends.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	start time.Time
	tbl   *Table
	stats *stack.NeighborStats

	mu       sync.Mutex
	probes   []probe
	sent     []sent
	failures []string
}

func (h *harness) Probe(target netip.Addr, unicast *header.MAC) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := probe{at: h.clk.Now().Sub(h.start), target: target}
	if unicast != nil {
		p.unicast, p.mac = true, *unicast
	}
	h.probes = append(h.probes, p)
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, clk: clock.NewFake(), stats: new(stack.NeighborStats)}
	h.start = h.clk.Now()
	cfg.Stats = h.stats
	h.tbl = NewTable(cfg, h.clk, h, func(mac header.MAC, pkt *buffer.Packet) {
		h.mu.Lock()
		h.sent = append(h.sent, sent{mac: mac, data: string(pkt.Data())})
		h.mu.Unlock()
		pkt.Release()
	})
	h.tbl.SetUnreachableHandler(func(pkt *buffer.Packet) {
		h.mu.Lock()
		h.failures = append(h.failures, string(pkt.Data()))
		h.mu.Unlock()
		pkt.Release()
	})
	t.Cleanup(h.tbl.Close)
	return h
}

func (h *harness) output(data string) {
	h.t.Helper()
	if err := h.tbl.Output(peer, buffer.FromBytes([]byte(data))); err != nil {
		h.t.Fatalf("Output: %v", err)
	}
}

func (h *harness) state() State {
	e, ok := h.tbl.Lookup(peer)
	if !ok {
		return None
	}
	return e.State
}

func (h *harness) wantState(want State) {
	h.t.Helper()
	if got := h.state(); got != want {
		h.t.Fatalf("state = %v, want %v", got, want)
	}
}

// Resolution of an unknown neighbour: broadcast probes at 0, 1 and 2 s,
// FAILED at 3 s, queued packets reported unreachable (Linux: 3 ARP
// requests, then "Destination Host Unreachable").
func TestResolutionRetriesThenFails(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("a")
	h.output("b")
	h.wantState(Incomplete)
	if len(h.probes) != 1 || h.probes[0].unicast || h.probes[0].target != peer {
		t.Fatalf("probes after first output = %+v, want one broadcast probe", h.probes)
	}
	for i := 0; i < 30; i++ {
		h.clk.Advance(100 * time.Millisecond)
	}
	h.wantState(Failed)
	var ats []time.Duration
	for _, p := range h.probes {
		if p.unicast {
			t.Fatalf("unicast probe while INCOMPLETE: %+v", p)
		}
		ats = append(ats, p.at)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second}
	if len(ats) != len(want) || ats[0] != want[0] || ats[1] != want[1] || ats[2] != want[2] {
		t.Fatalf("probe times = %v, want %v", ats, want)
	}
	if len(h.sent) != 0 {
		t.Fatalf("sent %v to an unresolved neighbour", h.sent)
	}
	if len(h.failures) != 2 || h.failures[0] != "a" || h.failures[1] != "b" {
		t.Fatalf("unreachable packets = %q, want [a b]", h.failures)
	}
	if h.stats.ResolutionFailed.Load() != 1 {
		t.Fatalf("ResolutionFailed = %d, want 1", h.stats.ResolutionFailed.Load())
	}
	// A new packet starts resolution again.
	h.output("c")
	h.wantState(Incomplete)
	if len(h.probes) != 4 {
		t.Fatalf("probes = %d after retry, want 4", len(h.probes))
	}
}

func TestConfirmationFlushesQueue(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("1")
	h.output("2")
	h.clk.Advance(500 * time.Millisecond)
	if !h.tbl.HandleConfirmation(peer, peerMAC, true, false) {
		t.Fatal("confirmation found no entry")
	}
	h.wantState(Reachable)
	if len(h.sent) != 2 || h.sent[0] != (sent{peerMAC, "1"}) || h.sent[1] != (sent{peerMAC, "2"}) {
		t.Fatalf("sent = %v, want 1 and 2 to %v", h.sent, peerMAC)
	}
	// No more probes once resolved.
	h.clk.Advance(3 * time.Second)
	if len(h.probes) != 1 {
		t.Fatalf("probes = %d, want 1", len(h.probes))
	}
	h.output("3")
	if len(h.sent) != 3 {
		t.Fatalf("resolved output not sent at once")
	}
}

func TestQueueBoundDropsOldest(t *testing.T) {
	cfg := DefaultConfig()
	pkt := buffer.FromBytes([]byte("x"))
	size := len(pkt.Raw())
	pkt.Release()
	cfg.UnresQLenBytes = 3 * size
	h := newHarness(t, cfg)
	for _, s := range []string{"1", "2", "3", "4", "5"} {
		h.output(s)
	}
	if n := h.tbl.QueueLen(peer); n != 3 {
		t.Fatalf("queue length = %d, want 3", n)
	}
	if d := h.stats.QueueDropped.Load(); d != 2 {
		t.Fatalf("QueueDropped = %d, want 2", d)
	}
	h.tbl.HandleConfirmation(peer, peerMAC, true, true)
	if len(h.sent) != 3 || h.sent[0].data != "3" || h.sent[2].data != "5" {
		t.Fatalf("sent = %v, want the newest three", h.sent)
	}
}

// REACHABLE → STALE after the reachable time; use → DELAY; no
// confirmation for 5 s → PROBE with unicast probes at 1 s intervals →
// FAILED after 3.
func TestReachableStaleDelayProbeFailed(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("q")
	h.tbl.HandleConfirmation(peer, peerMAC, true, false)
	rt := h.tbl.ReachableTime()
	if rt < 15*time.Second || rt >= 45*time.Second {
		t.Fatalf("reachable time %v outside [15s,45s)", rt)
	}
	h.clk.Advance(rt - time.Millisecond)
	h.wantState(Reachable)
	h.clk.Advance(20 * time.Millisecond)
	h.wantState(Stale)

	h.output("r")
	h.wantState(Delay)
	if last := h.sent[len(h.sent)-1]; last != (sent{peerMAC, "r"}) {
		t.Fatalf("STALE output sent %v, want r to the cached address", last)
	}
	probesBefore := len(h.probes)
	h.clk.Advance(5 * time.Second)
	h.wantState(Probe)
	h.output("s") // still sent while probing
	if last := h.sent[len(h.sent)-1]; last != (sent{peerMAC, "s"}) {
		t.Fatalf("PROBE output sent %v", last)
	}
	h.clk.Advance(2500 * time.Millisecond)
	h.wantState(Probe)
	h.clk.Advance(time.Second)
	h.wantState(Failed)
	ps := h.probes[probesBefore:]
	if len(ps) != 3 {
		t.Fatalf("probes in PROBE = %+v, want 3", ps)
	}
	for i, p := range ps {
		if !p.unicast || p.mac != peerMAC {
			t.Fatalf("probe %d = %+v, want unicast to %v", i, p, peerMAC)
		}
	}
}

func TestDelayConfirmedReturnsToReachable(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.tbl.HandleProbe(peer, peerMAC)
	h.wantState(Stale)
	h.output("x")
	h.wantState(Delay)
	h.clk.Advance(2 * time.Second)
	h.tbl.Confirm(peer)
	h.clk.Advance(3 * time.Second)
	h.wantState(Reachable)
	if len(h.probes) != 0 {
		t.Fatalf("probes sent despite confirmation: %+v", h.probes)
	}
}

func TestHandleProbeCreatesStaleAndFlushes(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("w")
	h.tbl.HandleProbe(peer, peerMAC)
	h.wantState(Stale)
	if len(h.sent) != 1 || h.sent[0] != (sent{peerMAC, "w"}) {
		t.Fatalf("sent = %v", h.sent)
	}
	other := netip.MustParseAddr("10.213.0.9")
	h.tbl.HandleProbe(other, newMAC)
	if e, ok := h.tbl.Lookup(other); !ok || e.State != Stale || e.MAC != newMAC {
		t.Fatalf("entry from probe = %+v %v", e, ok)
	}
	// Confirmations never create entries.
	third := netip.MustParseAddr("10.213.0.10")
	if h.tbl.HandleConfirmation(third, newMAC, true, true) {
		t.Fatal("confirmation created an entry")
	}
}

func TestOverrideRules(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("x")
	h.tbl.Update(peer, peerMAC, Reachable, OverrideIfUnlocked)
	h.wantState(Reachable)
	// Within locktime a different address is ignored (ARP: first reply wins).
	h.clk.Advance(500 * time.Millisecond)
	h.tbl.Update(peer, newMAC, Reachable, OverrideIfUnlocked)
	if e, _ := h.tbl.Lookup(peer); e.MAC != peerMAC {
		t.Fatalf("address changed within locktime: %v", e.MAC)
	}
	h.clk.Advance(time.Second)
	h.tbl.Update(peer, newMAC, Reachable, OverrideIfUnlocked)
	if e, _ := h.tbl.Lookup(peer); e.MAC != newMAC {
		t.Fatalf("address not changed after locktime: %v", e.MAC)
	}
	// NDP weak override: a different address without O flag makes a
	// REACHABLE entry STALE and keeps the address.
	h.tbl.HandleConfirmation(peer, peerMAC, true, false)
	if e, _ := h.tbl.Lookup(peer); e.MAC != newMAC || e.State != Stale {
		t.Fatalf("weak override: %+v, want %v STALE", e, newMAC)
	}
}

func TestStaticEntries(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("a")
	h.tbl.AddStatic(peer, peerMAC)
	h.wantState(Permanent)
	if len(h.sent) != 1 {
		t.Fatalf("queued packet not sent on static add")
	}
	h.tbl.HandleConfirmation(peer, newMAC, true, true)
	h.tbl.HandleProbe(peer, newMAC)
	if e, _ := h.tbl.Lookup(peer); e.MAC != peerMAC || e.State != Permanent {
		t.Fatalf("permanent entry changed by protocol: %+v", e)
	}
	h.clk.Advance(10 * time.Minute)
	h.wantState(Permanent)
	if got := h.tbl.Entries(); len(got) != 1 || got[0] != (Entry{peer, peerMAC, Permanent}) {
		t.Fatalf("Entries = %+v", got)
	}
	if err := h.tbl.Remove(peer); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Remove(peer); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("second Remove = %v, want ENOENT", err)
	}
	if len(h.clk.Pending()) != 0 && len(h.tbl.Entries()) != 0 {
		t.Fatalf("entries left after remove")
	}
}

func TestTableFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GCThresh3 = 2
	h := newHarness(t, cfg)
	h.tbl.AddStatic(netip.MustParseAddr("10.213.0.20"), peerMAC)
	h.tbl.AddStatic(netip.MustParseAddr("10.213.0.21"), peerMAC)
	err := h.tbl.Output(peer, buffer.FromBytes([]byte("z")))
	if !errors.Is(err, unix.ENOBUFS) {
		t.Fatalf("Output with full table = %v, want ENOBUFS", err)
	}
}

func TestCloseStopsTimers(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.output("a")
	h.tbl.Close()
	if p := h.clk.Pending(); len(p) != 0 {
		t.Fatalf("timers pending after Close: %v", p)
	}
	if err := h.tbl.Output(peer, buffer.FromBytes([]byte("b"))); !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("Output after Close = %v", err)
	}
}

func TestResolvedOutputDoesNotAllocate(t *testing.T) {
	clk := clock.NewFake()
	tbl := NewTable(DefaultConfig(), clk, nopProber{}, func(_ header.MAC, pkt *buffer.Packet) { pkt.Release() })
	defer tbl.Close()
	tbl.AddStatic(peer, peerMAC)
	allocs := testing.AllocsPerRun(200, func() {
		p := buffer.New(buffer.Headroom, 100)
		_ = tbl.Output(peer, p)
	})
	if allocs != 0 {
		t.Fatalf("allocations per resolved Output = %v, want 0", allocs)
	}
}

type nopProber struct{}

func (nopProber) Probe(netip.Addr, *header.MAC) {}

func BenchmarkOutputResolved(b *testing.B) {
	tbl := NewTable(DefaultConfig(), clock.Real{}, nopProber{}, func(_ header.MAC, pkt *buffer.Packet) { pkt.Release() })
	defer tbl.Close()
	tbl.AddStatic(peer, peerMAC)
	b.ReportAllocs()
	for b.Loop() {
		_ = tbl.Output(peer, buffer.New(buffer.Headroom, 64))
	}
}

// Packets sent while the queue of a just-resolved entry is being flushed
// go out after the queued ones.
func TestFlushKeepsOrder(t *testing.T) {
	clk := clock.NewFake()
	var tbl *Table
	var order []string
	reentered := false
	tbl = NewTable(DefaultConfig(), clk, nopProber{}, func(_ header.MAC, pkt *buffer.Packet) {
		order = append(order, string(pkt.Data()))
		pkt.Release()
		if !reentered {
			reentered = true
			_ = tbl.Output(peer, buffer.FromBytes([]byte("late")))
		}
	})
	defer tbl.Close()
	for _, s := range []string{"q1", "q2", "q3"} {
		_ = tbl.Output(peer, buffer.FromBytes([]byte(s)))
	}
	tbl.HandleConfirmation(peer, peerMAC, true, false)
	want := []string{"q1", "q2", "q3", "late"}
	if len(order) != len(want) {
		t.Fatalf("sent %q, want %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("sent %q, want %q", order, want)
		}
	}
	// Afterwards the fast path is used again.
	_ = tbl.Output(peer, buffer.FromBytes([]byte("after")))
	if order[len(order)-1] != "after" {
		t.Fatal("not sent after the flush")
	}
}
