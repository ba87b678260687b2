package sniffer

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/loopback"
	"github.com/netprov/netprov/stack/link/pipe"
)

type counter struct {
	mu sync.Mutex
	n  int
	ch chan struct{}
}

func (c *counter) DeliverLinkPacket(p *buffer.Packet) {
	p.Release()
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *counter) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got := c.n
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %d frames, want %d", got, n)
		}
	}
}

type record struct {
	sec, nsec uint32
	orig      int
	data      []byte
}

// parsePcap checks the file header and returns the link type and records.
func parsePcap(t *testing.T, b []byte) (uint32, []record) {
	t.Helper()
	if len(b) < pcapFileHdrLen {
		t.Fatalf("pcap of %d bytes", len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b) != pcapMagicNanos || le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 {
		t.Fatalf("bad pcap header %x", b[:pcapFileHdrLen])
	}
	if le.Uint32(b[16:]) != DefaultSnaplen {
		t.Fatalf("snaplen %d", le.Uint32(b[16:]))
	}
	lt := le.Uint32(b[20:])
	var recs []record
	for b = b[pcapFileHdrLen:]; len(b) > 0; {
		if len(b) < pcapRecordHdrLen {
			t.Fatalf("truncated record header")
		}
		r := record{sec: le.Uint32(b), nsec: le.Uint32(b[4:]), orig: int(le.Uint32(b[12:]))}
		n := int(le.Uint32(b[8:]))
		if len(b) < pcapRecordHdrLen+n {
			t.Fatalf("truncated record")
		}
		r.data = b[pcapRecordHdrLen : pcapRecordHdrLen+n]
		recs = append(recs, r)
		b = b[pcapRecordHdrLen+n:]
	}
	return lt, recs
}

func ethFrame(src, dst header.MAC, fill byte, n int) *buffer.Packet {
	p := buffer.New(buffer.Headroom, n)
	b := p.Append(n)
	for i := range b {
		b[i] = fill
	}
	header.EthernetFields{Dst: dst, Src: src, EtherType: 0x88b5}.Emit(b)
	return p
}

func TestSnifferRecordsBothDirectionsEthernet(t *testing.T) {
	clk := clock.NewFake()
	a, b := pipe.New(pipe.Config{})
	t.Cleanup(func() { a.Close() })
	var buf bytes.Buffer
	s, err := New(a, &buf, Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := &counter{ch: make(chan struct{}, 1)}, &counter{ch: make(chan struct{}, 1)}
	s.Attach(ra)
	b.Attach(rb)
	if _, err := s.WritePackets([]*buffer.Packet{ethFrame(a.LinkAddress(), b.LinkAddress(), 0xaa, 60), ethFrame(a.LinkAddress(), b.LinkAddress(), 0xab, 100)}); err != nil {
		t.Fatal(err)
	}
	rb.waitFor(t, 2)
	if _, err := b.WritePackets([]*buffer.Packet{ethFrame(b.LinkAddress(), a.LinkAddress(), 0xbb, 70)}); err != nil {
		t.Fatal(err)
	}
	ra.waitFor(t, 1)
	lt, recs := parsePcap(t, buf.Bytes())
	if lt != LinkTypeEthernet {
		t.Fatalf("link type %d, want 1", lt)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	wantFill := []byte{0xaa, 0xab, 0xbb}
	wantLen := []int{60, 100, 70}
	ts := clk.Now().UnixNano()
	for i, r := range recs {
		if len(r.data) != wantLen[i] || r.orig != wantLen[i] || r.data[20] != wantFill[i] {
			t.Errorf("record %d: len %d orig %d fill %x", i, len(r.data), r.orig, r.data[20])
		}
		if int64(r.sec)*1e9+int64(r.nsec) != ts {
			t.Errorf("record %d timestamp %d.%09d, want %d", i, r.sec, r.nsec, ts)
		}
	}
	if got := header.Ethernet(recs[2].data).Src(); got != b.LinkAddress() {
		t.Errorf("received frame src %v", got)
	}
}

func TestSnifferSnaplenTruncates(t *testing.T) {
	a, b := pipe.New(pipe.Config{})
	t.Cleanup(func() { a.Close() })
	var buf bytes.Buffer
	s, err := New(a, &buf, Config{Snaplen: 32})
	if err != nil {
		t.Fatal(err)
	}
	rb := &counter{ch: make(chan struct{}, 1)}
	b.Attach(rb)
	s.WritePackets([]*buffer.Packet{ethFrame(a.LinkAddress(), b.LinkAddress(), 1, 200)})
	rb.waitFor(t, 1)
	raw := buf.Bytes()
	rec := raw[pcapFileHdrLen:]
	if got, orig := binary.LittleEndian.Uint32(rec[8:]), binary.LittleEndian.Uint32(rec[12:]); got != 32 || orig != 200 {
		t.Fatalf("captured %d of %d, want 32 of 200", got, orig)
	}
	if len(rec) != pcapRecordHdrLen+32 {
		t.Fatalf("record of %d bytes", len(rec))
	}
}

// ipv4Packet is a minimal IPv4/UDP packet to 127.0.0.1 (checksums zero:
// the readers only decode it).
func ipv4Packet() []byte {
	p := []byte{
		0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
		0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 'p', 'i', 'n', 'g',
	}
	return p
}

func TestSnifferPcapReadableByTools(t *testing.T) {
	dir := t.TempDir()
	ethPath := filepath.Join(dir, "eth.pcap")
	rawPath := filepath.Join(dir, "raw.pcap")

	// Ethernet capture from a pipe.
	f, err := os.Create(ethPath)
	if err != nil {
		t.Fatal(err)
	}
	a, b := pipe.New(pipe.Config{})
	t.Cleanup(func() { a.Close() })
	s, err := New(a, f, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rb := &counter{ch: make(chan struct{}, 1)}
	b.Attach(rb)
	p := buffer.New(buffer.Headroom, 14+32)
	header.EthernetFields{Dst: b.LinkAddress(), Src: a.LinkAddress(), EtherType: header.EtherTypeIPv4}.Emit(p.Append(14))
	copy(p.Append(32), ipv4Packet())
	s.WritePackets([]*buffer.Packet{p})
	rb.waitFor(t, 1)
	f.Close()

	// Raw IP capture from loopback.
	f, err = os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	lo := loopback.New(loopback.Config{})
	t.Cleanup(func() { lo.Close() })
	sl, err := New(lo, f, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rl := &counter{ch: make(chan struct{}, 1)}
	sl.Attach(rl)
	sl.WritePackets([]*buffer.Packet{buffer.FromBytes(ipv4Packet())})
	rl.waitFor(t, 1) // recorded once out, once in
	f.Close()
	if raw, _ := os.ReadFile(rawPath); binary.LittleEndian.Uint32(raw[20:]) != LinkTypeRaw {
		t.Fatal("loopback capture is not LINKTYPE_RAW")
	}

	ran := false
	if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
		ran = true
		out, err := exec.Command(tcpdump, "-n", "-e", "-r", ethPath).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "02:00:00:00:00:01 > 02:00:00:00:00:02") ||
			!strings.Contains(string(out), "127.0.0.1.12345 > 127.0.0.1.53") {
			t.Errorf("tcpdump on Ethernet capture: %v\n%s", err, out)
		}
		out, err = exec.Command(tcpdump, "-n", "-r", rawPath).CombinedOutput()
		if err != nil || strings.Count(string(out), "127.0.0.1.12345 > 127.0.0.1.53") != 2 {
			t.Errorf("tcpdump on raw capture (want 2 packets): %v\n%s", err, out)
		}
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		ran = true
		out, err := exec.Command(tshark, "-n", "-r", ethPath, "-T", "fields", "-e", "eth.src", "-e", "udp.dstport").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "02:00:00:00:00:01\t53") {
			t.Errorf("tshark on Ethernet capture: %v\n%s", err, out)
		}
	}
	if !ran {
		t.Skip("neither tcpdump nor tshark installed; file format checked by the other tests only")
	}
}

// A sniffer made without a writer records nothing until Start, and only
// until Stop (netprov capture attaching to a running stack).
func TestSnifferStartStop(t *testing.T) {
	a, b := pipe.New(pipe.Config{})
	t.Cleanup(func() { a.Close() })
	s, err := New(a, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rb := &counter{ch: make(chan struct{}, 1)}
	b.Attach(rb)
	send := func(fill byte) {
		if _, err := s.WritePackets([]*buffer.Packet{ethFrame(a.LinkAddress(), b.LinkAddress(), fill, 60)}); err != nil {
			t.Fatal(err)
		}
	}
	send(0x01)
	var buf bytes.Buffer
	if err := s.Start(&buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(&bytes.Buffer{}); err != ErrRecording {
		t.Fatalf("second Start: %v, want ErrRecording", err)
	}
	send(0x02)
	s.Stop()
	send(0x03)
	rb.waitFor(t, 3)
	_, recs := parsePcap(t, buf.Bytes())
	if len(recs) != 1 || recs[0].data[20] != 0x02 {
		t.Fatalf("recorded %d frames, want only the one sent while started", len(recs))
	}
}
