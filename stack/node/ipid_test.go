package node_test

import (
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/pipe"
)

// recordingLink keeps a copy of the IPv4 header of every TCP packet its
// endpoint sends.
type recordingLink struct {
	link.Endpoint
	mu   sync.Mutex
	sent []ipv4TCP
}

type ipv4TCP struct {
	ip  header.IPv4Fields
	tcp header.TCPFields
}

func (l *recordingLink) WritePackets(pkts []*buffer.Packet) (int, error) {
	l.mu.Lock()
	for _, p := range pkts {
		b := p.Data()
		if len(b) < header.EthernetLen {
			continue
		}
		eth, err := header.ParseEthernet(b)
		if err != nil || eth.EtherType != header.EtherTypeIPv4 {
			continue
		}
		ipb := b[header.EthernetLen:]
		ip, err := header.ParseIPv4(ipb)
		if err != nil || ip.Protocol != header.ProtoTCP {
			continue
		}
		tcp, err := header.ParseTCP(ipb[header.IPv4(ipb).HeaderLen():])
		if err != nil {
			continue
		}
		l.sent = append(l.sent, ipv4TCP{ip, tcp})
	}
	l.mu.Unlock()
	return l.Endpoint.WritePackets(pkts)
}

func (l *recordingLink) take() []ipv4TCP {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}

// Spec 32 (ip_select_ident_segs): segments of a connection carry the
// socket's own IP ID counter, advanced by one per segment (per resulting
// segment for a GSO super-segment), from a random seed; the listener's
// SYN-ACK and a reset, DF packets of no connected socket, carry ID 0.
func TestIPIDPerConnection(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ea, eb := pipe.New(pipe.Config{})
	ra, rb := &recordingLink{Endpoint: ea}, &recordingLink{Endpoint: eb}
	if _, err := a.AddNIC(ra, "np0", netip.MustParsePrefix("10.213.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNIC(rb, "np0", netip.MustParsePrefix("10.213.0.2/24")); err != nil {
		t.Fatal(err)
	}
	l, err := b.Listen("tcp", "10.213.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	send := func() {
		c, err := a.Dial("tcp", "10.213.0.2:8080")
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < 20; i++ {
			if _, err := c.Write(make([]byte, 3000)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	send()
	send()
	select { // both connections read to EOF and closed on B
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
	}

	checkCounters := func(name string, pkts []ipv4TCP, synAckZero bool) {
		t.Helper()
		next := map[[2]uint16]uint16{} // connection's ports → expected next ID
		seeds := map[[2]uint16]uint16{}
		for _, p := range pkts {
			if p.ip.Flags&header.IPv4FlagDF == 0 {
				t.Errorf("%s: TCP packet without DF: %+v", name, p.ip)
			}
			synAck := p.tcp.Flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn|header.TCPFlagAck
			if synAck && synAckZero {
				if p.ip.ID != 0 {
					t.Errorf("%s: listener SYN-ACK with IP ID %d, want 0", name, p.ip.ID)
				}
				continue
			}
			conn := [2]uint16{p.tcp.SrcPort, p.tcp.DstPort}
			want, seen := next[conn]
			if !seen {
				seeds[conn] = p.ip.ID
			} else if p.ip.ID != want {
				t.Fatalf("%s: ports %v: IP ID %d, want %d (one more than the previous segment's)", name, conn, p.ip.ID, want)
			}
			next[conn] = p.ip.ID + 1
		}
		if len(seeds) != 2 {
			t.Fatalf("%s: %d connections seen, want 2", name, len(seeds))
		}
		// Each connection has its own counter: the second does not go
		// on from the first (a shared per-destination counter would).
		for conn, seed := range seeds {
			for other, last := range next {
				if other != conn && seed == last {
					t.Errorf("%s: connection %v starts at IP ID %d, where %v stopped", name, conn, seed, other)
				}
			}
		}
	}
	checkCounters("client", ra.take(), false)
	checkCounters("server", rb.take(), true)

	// A reset from a port nobody listens on: ID 0.
	if _, err := a.Dial("tcp", "10.213.0.2:9"); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	var rst bool
	for _, p := range rb.take() {
		if p.tcp.Flags&header.TCPFlagRst != 0 {
			rst = true
			if p.ip.ID != 0 {
				t.Errorf("RST with IP ID %d, want 0", p.ip.ID)
			}
		}
	}
	if !rst {
		t.Error("no RST seen for the closed port")
	}
}
