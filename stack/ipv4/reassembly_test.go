package ipv4

import (
	"bytes"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/header"
)

// fragmentsOf cuts a datagram's payload into fragments of chunk bytes
// (the last may be shorter) and returns the IP packets.
func fragmentsOf(id uint16, proto uint8, payload []byte, chunk int) [][]byte {
	var out [][]byte
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		f := header.IPv4Fields{Protocol: proto, Src: peerAddr, Dst: localAddr, ID: id, FragmentOffset: uint16(off)}
		if end < len(payload) {
			f.Flags = header.IPv4FlagMF
		}
		out = append(out, ipPacket(f, payload[off:end]))
	}
	return out
}

func fragment1(id uint16, off int, data []byte, more bool) []byte {
	f := header.IPv4Fields{Protocol: header.ProtoUDP, Src: peerAddr, Dst: localAddr, ID: id, FragmentOffset: uint16(off)}
	if more {
		f.Flags = header.IPv4FlagMF
	}
	return ipPacket(f, data)
}

func testPayload(n int) []byte {
	b := udpish(string(make([]byte, n-8)))
	for i := 8; i < n; i++ {
		b[i] = byte(i*13 + 1)
	}
	return b
}

func TestReassemblyOrders(t *testing.T) {
	payload := testPayload(3000)
	for _, tc := range []struct {
		name  string
		order []int
	}{
		{"in order", []int{0, 1, 2, 3}},
		{"reversed", []int{3, 2, 1, 0}},
		{"shuffled", []int{2, 0, 3, 1}},
		{"with duplicates", []int{1, 1, 0, 3, 0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			udp := &fakeTransport{num: header.ProtoUDP}
			c := newContext(t, 1500, DefaultConfig(), udp)
			frags := fragmentsOf(42, header.ProtoUDP, payload, 800)
			for _, i := range tc.order {
				c.inject(frags[i])
			}
			if len(udp.packets) != 1 {
				t.Fatalf("delivered %d datagrams, want 1", len(udp.packets))
			}
			if !bytes.Equal(udp.packets[0].data, payload) {
				t.Fatal("reassembled payload differs")
			}
			st := &c.s.Stats().IP
			if st.ReasmOKs.Load() != 1 || st.ReasmReqds.Load() != uint64(len(tc.order)) || st.ReasmFails.Load() != 0 {
				t.Fatalf("ReasmOKs=%d ReasmReqds=%d ReasmFails=%d", st.ReasmOKs.Load(), st.ReasmReqds.Load(), st.ReasmFails.Load())
			}
			if m := c.ip.FragMemUsage(); m != 0 {
				t.Fatalf("fragment memory %d after reassembly, want 0", m)
			}
			if p := c.clk.Pending(); len(p) != 0 {
				t.Fatalf("timers left: %v", p)
			}
		})
	}
}

// Overlapping fragments discard the whole datagram (Linux since 4.19);
// a fragment wholly inside received data is only a duplicate.
func TestReassemblyOverlap(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	data := testPayload(48)
	c.inject(fragment1(7, 0, data[:24], true))
	c.inject(fragment1(7, 16, data[16:40], true)) // overlaps [16,24)
	c.inject(fragment1(7, 40, data[40:], false))
	c.inject(fragment1(7, 24, data[24:40], true))
	if len(udp.packets) != 0 {
		t.Fatalf("datagram with overlapping fragments delivered")
	}
	if n := c.s.Stats().IP.ReasmFails.Load(); n != 1 {
		t.Fatalf("ReasmFails = %d, want 1", n)
	}
	// Duplicate inside a contiguous run: kept going.
	c.inject(fragment1(8, 0, data[:16], true))
	c.inject(fragment1(8, 16, data[16:32], true))
	c.inject(fragment1(8, 8, data[8:24], true)) // inside [0,32)
	c.inject(fragment1(8, 32, data[32:], false))
	if len(udp.packets) != 1 || !bytes.Equal(udp.packets[0].data, data) {
		t.Fatalf("datagram with a contained duplicate not reassembled")
	}
}

func TestReassemblyInconsistentLength(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	data := testPayload(64)
	c.inject(fragment1(9, 32, data[32:], false))
	c.inject(fragment1(9, 32, data[32:48], false)) // a second, different end
	c.inject(fragment1(9, 0, data[:32], true))
	if len(udp.packets) != 0 || c.s.Stats().IP.ReasmFails.Load() != 1 {
		t.Fatalf("corrupt datagram: delivered=%d ReasmFails=%d", len(udp.packets), c.s.Stats().IP.ReasmFails.Load())
	}
}

func TestReassemblyTimeoutSendsTimeExceeded(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	c := newContext(t, 1500, DefaultConfig(), udp)
	c.resolvePeer()
	data := testPayload(2000)
	frags := fragmentsOf(77, header.ProtoUDP, data, 1000)
	c.inject(frags[0])
	c.clk.Advance(29 * time.Second)
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("sent %d packets before ipfrag_time", len(got))
	}
	c.clk.Advance(time.Second)
	got := c.takeIP()
	if len(got) != 1 {
		t.Fatalf("sent %d packets at timeout, want 1 time exceeded", len(got))
	}
	m, err := header.ParseICMPv4(got[0].payload())
	if err != nil || m.Type != header.ICMPv4TimeExceeded || m.Code != header.ICMPv4CodeReassemblyExceeded {
		t.Fatalf("ICMP %+v %v, want time exceeded / reassembly", m, err)
	}
	if quote := got[0].payload()[8:]; !bytes.Equal(quote, frags[0][:548]) {
		t.Fatalf("quote is not the first fragment's first 548 bytes")
	}
	st := &c.s.Stats().IP
	if st.ReasmTimeout.Load() != 1 || st.ReasmFails.Load() != 1 {
		t.Fatalf("ReasmTimeout=%d ReasmFails=%d", st.ReasmTimeout.Load(), st.ReasmFails.Load())
	}
	// The late fragment starts a new queue that cannot complete.
	c.inject(frags[1])
	if len(udp.packets) != 0 {
		t.Fatal("delivered after timeout")
	}

	// Without the first fragment no ICMP is sent.
	c.clk.Advance(31 * time.Second)
	if got := c.takeIP(); len(got) != 0 {
		t.Fatalf("time exceeded sent without the first fragment: %d", len(got))
	}
	if st.ReasmTimeout.Load() != 2 {
		t.Fatalf("ReasmTimeout = %d, want 2", st.ReasmTimeout.Load())
	}
}

func TestReassemblyMemoryLimit(t *testing.T) {
	udp := &fakeTransport{num: header.ProtoUDP}
	cfg := DefaultConfig()
	cfg.FragHighThresh = 20000
	c := newContext(t, 1500, cfg, udp)
	chunk := make([]byte, 1000)
	// Many incomplete datagrams fill the memory.
	for id := uint16(1); id <= 40; id++ {
		c.inject(fragment1(id, 0, chunk, true))
	}
	used := c.ip.FragMemUsage()
	if used <= cfg.FragHighThresh || used > cfg.FragHighThresh+5000 {
		t.Fatalf("fragment memory %d, want just over %d", used, cfg.FragHighThresh)
	}
	fails := c.s.Stats().IP.ReasmFails.Load()
	if fails == 0 {
		t.Fatal("no fragments refused over ipfrag_high_thresh")
	}
	// A complete small datagram is refused too while over the limit.
	data := testPayload(32)
	c.inject(fragment1(500, 0, data[:16], true))
	c.inject(fragment1(500, 16, data[16:], false))
	if len(udp.packets) != 0 {
		t.Fatal("reassembled while over the memory limit")
	}
	// Timeouts free the memory; then reassembly works again.
	c.clk.Advance(30 * time.Second)
	if m := c.ip.FragMemUsage(); m != 0 {
		t.Fatalf("fragment memory %d after timeouts", m)
	}
	c.inject(fragment1(501, 0, data[:16], true))
	c.inject(fragment1(501, 16, data[16:], false))
	if len(udp.packets) != 1 {
		t.Fatal("reassembly did not recover after the memory was freed")
	}
}

func TestReassembledEchoIsAnsweredFragmented(t *testing.T) {
	c := newContext(t, 1500, DefaultConfig())
	c.resolvePeer()
	data := make([]byte, 4000)
	for i := range data {
		data[i] = byte(i)
	}
	req := icmpMessage(header.ICMPv4Fields{Type: header.ICMPv4Echo, Ident: 9, Seq: 3}, data)
	frags := fragmentsOf(1234, header.ProtoICMP, req, 1480)
	for _, f := range frags {
		c.inject(f)
	}
	got := c.takeIP()
	if len(got) != 3 {
		t.Fatalf("echo reply sent as %d packets, want 3 fragments", len(got))
	}
	var joined []byte
	for _, f := range got {
		joined = append(joined, f.payload()...)
	}
	m, err := header.ParseICMPv4(joined)
	if err != nil || m.Type != header.ICMPv4EchoReply || m.Ident != 9 || m.Seq != 3 || !bytes.Equal(joined[8:], data) {
		t.Fatalf("reassembled reply %+v %v", m, err)
	}
}
