package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"text/tabwriter"
)

// tcpStateNames are ss's names of Linux's TCP state numbers.
var tcpStateNames = [...]string{
	1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
	7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING",
}

func stateName(s uint8) string {
	if int(s) < len(tcpStateNames) && tcpStateNames[s] != "" {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("state%d", s)
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1, 58:
		return "icmp"
	}
	return fmt.Sprintf("proto%d", p)
}

// connections prints the stack's sockets like ss, with one connection
// held open to the kernel, and its TCP counters.
func (d *demo) connections(ctx context.Context) error {
	n := d.topo.node
	held, err := n.DialContext(ctx, "tcp", netip.AddrPortFrom(demoKernelV6.Addr(), kernelHTTPPort).String())
	if err != nil {
		return fmt.Errorf("open a connection to hold: %w", err)
	}
	defer held.Close()
	fmt.Fprintf(d.out, "   (holding a connection %v -> %v open)\n", held.LocalAddr(), held.RemoteAddr())

	conns := n.Connections()
	sort.SliceStable(conns, func(i, j int) bool {
		if conns[i].Protocol != conns[j].Protocol {
			return conns[i].Protocol < conns[j].Protocol
		}
		return conns[i].State > conns[j].State
	})
	tw := tabwriter.NewWriter(d.out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "   Netid\tState\tRecv-Q\tSend-Q\tLocal Address:Port\tPeer Address:Port")
	for _, c := range conns {
		peer := "*:*"
		if c.Remote.IsValid() && !c.Remote.Addr().IsUnspecified() {
			peer = c.Remote.String()
		}
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%s\t%s\n", protoName(c.Protocol), stateName(c.State), c.RecvQ, c.SendQ, c.Local, peer)
	}
	tw.Flush()

	s := n.Stack.Stats()
	fmt.Fprintf(d.out, "\n   TCP counters (netstat -s names): ActiveOpens %d  PassiveOpens %d  InSegs %d  OutSegs %d  RetransSegs %d  CurrEstab %d\n",
		s.TCP.ActiveOpens.Load(), s.TCP.PassiveOpens.Load(), s.TCP.InSegs.Load(), s.TCP.OutSegs.Load(),
		s.TCP.RetransSegs.Load(), s.TCP.CurrEstab.Load())
	fmt.Fprintf(d.out, "   ICMP echo: IPv4 %d requests in, %d replies out; IPv6 %d requests in, %d replies out\n",
		s.ICMP.InEchos.Load(), s.ICMP.OutEchoReps.Load(), s.ICMPv6.InEchos.Load(), s.ICMPv6.OutEchoReps.Load())
	return nil
}
