package node_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
)

// recordingLink keeps the headers of every IPv4 packet its endpoint
// sends (and a copy of each TCP packet, for replays).
type recordingLink struct {
	link.Endpoint
	mu   sync.Mutex
	sent []ipv4TCP
}

// ipv4TCP is one sent IPv4 packet; tcp and raw are set for TCP only, src
// and dst ports for UDP.
type ipv4TCP struct {
	ip               header.IPv4Fields
	tcp              header.TCPFields
	isTCP            bool
	srcPort, dstPort uint16 // UDP; srcPort is the echo identifier for ICMP
	raw              []byte // the whole frame (TCP)
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
		if err != nil {
			continue
		}
		rec := ipv4TCP{ip: ip}
		payload := ipb[header.IPv4(ipb).HeaderLen():]
		switch ip.Protocol {
		case header.ProtoTCP:
			tcp, err := header.ParseTCP(payload)
			if err != nil {
				continue
			}
			rec.tcp, rec.isTCP = tcp, true
			rec.raw = append([]byte(nil), b...)
		case header.ProtoICMP:
			if len(payload) >= 8 {
				rec.srcPort = uint16(payload[4])<<8 | uint16(payload[5])
			}
		case header.ProtoUDP:
			if len(payload) >= header.UDPLen {
				rec.srcPort = uint16(payload[0])<<8 | uint16(payload[1])
				rec.dstPort = uint16(payload[2])<<8 | uint16(payload[3])
			}
		}
		l.sent = append(l.sent, rec)
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

// takeTCP is take keeping only TCP packets.
func (l *recordingLink) takeTCP() []ipv4TCP {
	var tcp []ipv4TCP
	for _, p := range l.take() {
		if p.isTCP {
			tcp = append(tcp, p)
		}
	}
	return tcp
}

// linkedNodes returns two nodes joined by a pipe, 10.213.0.1 (a) and
// 10.213.0.2 (b), with recording links.
func linkedNodes(t *testing.T) (a, b *node.Node, ra, rb *recordingLink) {
	t.Helper()
	a, b = newNode(t), newNode(t)
	ea, eb := pipe.New(pipe.Config{})
	ra, rb = &recordingLink{Endpoint: ea}, &recordingLink{Endpoint: eb}
	if _, err := a.AddNIC(ra, "np0", netip.MustParsePrefix("10.213.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNIC(rb, "np0", netip.MustParsePrefix("10.213.0.2/24")); err != nil {
		t.Fatal(err)
	}
	return a, b, ra, rb
}

// Spec 32 (ip_select_ident_segs): segments of a connection carry the
// socket's own IP ID counter, advanced by one per segment (per resulting
// segment for a GSO super-segment), from a random seed; the listener's
// SYN-ACK and a reset, DF packets of no connected socket, carry ID 0.
func TestIPIDPerConnection(t *testing.T) {
	a, b, ra, rb := linkedNodes(t)
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
	checkCounters("client", ra.takeTCP(), false)
	checkCounters("server", rb.takeTCP(), true)

	// A reset from a port nobody listens on: ID 0.
	if _, err := a.Dial("tcp", "10.213.0.2:9"); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	var rst bool
	for _, p := range rb.takeTCP() {
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

// waitFor polls cond every millisecond for at most 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Spec 32 for datagram sockets: a socket with a destination (connect)
// numbers its datagrams from its own inet_id, seeded at random by
// ip4_datagram_connect, the first datagram carrying seed+1; an
// unconnected socket's datagrams take the shared per-destination counter.
// Sends alternate between two sockets, so a shared counter cannot give
// either socket consecutive IDs, and separate counters cannot give the
// unconnected pair one sequence.
func TestIPIDDatagramSockets(t *testing.T) {
	a, b, ra, _ := linkedNodes(t)
	sink, err := b.ListenPacket("udp", "10.213.0.2:5000")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.213.0.2:5000"))
	udpTo := func(pkts []ipv4TCP) []ipv4TCP {
		var out []ipv4TCP
		for _, p := range pkts {
			if p.ip.Protocol == header.ProtoUDP && p.dstPort == 5000 {
				out = append(out, p)
			}
		}
		return out
	}

	// Resolve the neighbour first, so datagrams leave in send order.
	warm, err := a.ListenPacket("udp", "10.213.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	if _, err := warm.WriteTo([]byte("warm"), dst); err != nil {
		t.Fatal(err)
	}
	var seen []ipv4TCP
	waitFor(t, "the first datagram", func() bool {
		seen = append(seen, udpTo(ra.take())...)
		return len(seen) > 0
	})

	const rounds = 6
	var conns [2]net.Conn
	for i := range conns {
		c, err := a.Dial("udp", "10.213.0.2:5000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i := 0; i < rounds; i++ {
		for _, c := range conns {
			if _, err := c.Write([]byte("connected")); err != nil {
				t.Fatal(err)
			}
		}
	}
	var unconns [2]net.PacketConn
	for i := range unconns {
		u, err := a.ListenPacket("udp", "10.213.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		unconns[i] = u
	}
	for i := 0; i < rounds; i++ {
		for _, u := range unconns {
			if _, err := u.WriteTo([]byte("unconnected"), dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	pkts := udpTo(ra.take())
	if len(pkts) != 4*rounds {
		t.Fatalf("%d datagrams sent, want %d", len(pkts), 4*rounds)
	}

	// Connected: per socket, one more each time.
	connected := pkts[:2*rounds]
	for _, c := range conns {
		port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
		var prev uint16
		n := 0
		for _, p := range connected {
			if p.srcPort != port {
				continue
			}
			if n > 0 && p.ip.ID != prev+1 {
				t.Errorf("connected socket %d: IP ID %d after %d, want consecutive IDs from its own counter", port, p.ip.ID, prev)
			}
			prev = p.ip.ID
			n++
		}
		if n != rounds {
			t.Errorf("connected socket %d: %d datagrams, want %d", port, n, rounds)
		}
	}

	// Unconnected: one counter for the destination, shared by both.
	unconnected := pkts[2*rounds:]
	for i := 1; i < len(unconnected); i++ {
		if got, want := unconnected[i].ip.ID, unconnected[i-1].ip.ID+1; got != want {
			t.Errorf("unconnected datagram %d (port %d): IP ID %d, want %d (the shared counter)", i, unconnected[i].srcPort, got, want)
		}
	}
	// The warm-up datagram used that counter too (same source, same
	// destination): the unconnected run continues from it.
	if got, want := unconnected[0].ip.ID, seen[0].ip.ID+1; got != want {
		t.Errorf("first unconnected datagram after the warm-up: IP ID %d, want %d", got, want)
	}
}

// Spec 32: Linux answers segments reaching a TIME_WAIT socket from the
// control socket (tcp_v4_timewait_ack), which has no inet_id and sets
// DF, so the ACK of a retransmitted FIN carries IP ID 0; the ACK of the
// first FIN, sent before the socket moves to TIME_WAIT, still takes the
// connection's counter.
func TestIPIDTimeWaitAck(t *testing.T) {
	a, b, ra, rb := linkedNodes(t)
	l, err := b.Listen("tcp", "10.213.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := a.Dial("tcp", "10.213.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	var sc net.Conn
	select {
	case sc = <-accepted:
		if sc == nil {
			t.Fatal("accept failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("accept timed out")
	}
	// a closes first and ends in TIME_WAIT once b's FIN arrives.
	c.Close()
	waitFor(t, "b in CLOSE_WAIT", func() bool { return hasState(b, 8) })
	sc.Close()
	const timeWait = 6
	waitFor(t, "a in TIME_WAIT", func() bool { return hasState(a, timeWait) })

	// b's FIN, sent again: a duplicate that a, in TIME_WAIT, ACKs.
	var fin []byte
	for _, p := range rb.takeTCP() {
		if p.tcp.Flags&header.TCPFlagFin != 0 {
			fin = p.raw
		}
	}
	if fin == nil {
		t.Fatal("b sent no FIN")
	}
	var before []ipv4TCP
	waitFor(t, "a's ACK of the FIN", func() bool {
		before = append(before, ra.takeTCP()...)
		n := len(before)
		return n > 0 && before[n-1].tcp.Flags&header.TCPFlagFin == 0 && hasFin(before)
	})
	lastACK := before[len(before)-1]
	if lastACK.ip.ID == 0 {
		t.Errorf("ACK of the FIN (sent before TIME_WAIT): IP ID 0, want the connection's counter")
	}
	if _, err := rb.Endpoint.WritePackets([]*buffer.Packet{buffer.FromBytes(fin)}); err != nil {
		t.Fatal(err)
	}
	var after []ipv4TCP
	waitFor(t, "a's ACK in TIME_WAIT", func() bool {
		after = append(after, ra.takeTCP()...)
		return len(after) > 0
	})
	for _, p := range after {
		if p.tcp.Flags != header.TCPFlagAck {
			t.Errorf("TIME_WAIT answer with flags %#x, want a bare ACK", p.tcp.Flags)
		}
		if p.ip.ID != 0 || p.ip.Flags&header.IPv4FlagDF == 0 {
			t.Errorf("ACK sent in TIME_WAIT: IP ID %d, flags %#x; want ID 0 with DF", p.ip.ID, p.ip.Flags)
		}
	}
}

// hasState reports whether one of n's TCP connections is in state.
func hasState(n *node.Node, state uint8) bool {
	for _, c := range n.Connections() {
		if c.State == state && c.Local.Port() != 0 && c.Remote.IsValid() {
			return true
		}
	}
	return false
}

func hasFin(pkts []ipv4TCP) bool {
	for _, p := range pkts {
		if p.tcp.Flags&header.TCPFlagFin != 0 {
			return true
		}
	}
	return false
}

// Spec 32 for ping sockets: connect (ip4_datagram_connect) gives an
// ICMP echo socket its own counter too; requests of two connected
// sockets, sent alternately, each carry consecutive IDs.
func TestIPIDPingSockets(t *testing.T) {
	a, _, ra, _ := linkedNodes(t)
	ctx := context.Background()
	var socks [2]*socket.Socket
	for i := range socks {
		so, err := a.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		if err != nil {
			t.Fatal(err)
		}
		defer so.Close()
		if err := so.ConnectAddr(ctx, netip.MustParseAddrPort("10.213.0.2:0")); err != nil {
			t.Fatal(err)
		}
		socks[i] = so
	}
	echo := []byte{header.ICMPv4Echo, 0, 0, 0, 0, 0, 0, 1, 'p', 'i', 'n', 'g'}
	const rounds = 5
	for i := 0; i < rounds; i++ {
		for _, so := range socks {
			if _, _, err := so.Write(ctx, echo); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pkts []ipv4TCP
	waitFor(t, "the echo requests", func() bool {
		for _, p := range ra.take() {
			if p.ip.Protocol == header.ProtoICMP {
				pkts = append(pkts, p)
			}
		}
		return len(pkts) >= 2*rounds
	})
	for _, so := range socks {
		ident := so.LocalAddr().Port()
		var prev uint16
		n := 0
		for _, p := range pkts {
			if p.srcPort != ident {
				continue
			}
			if n > 0 && p.ip.ID != prev+1 {
				t.Errorf("ping socket %d: IP ID %d after %d, want consecutive IDs from its own counter", ident, p.ip.ID, prev)
			}
			prev = p.ip.ID
			n++
		}
		if n != rounds {
			t.Errorf("ping socket %d: %d requests seen, want %d", ident, n, rounds)
		}
	}
}
