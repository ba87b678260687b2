package netstack

import (
	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack"
)

// ssStates are ss's names of Linux's TCP states (include/net/tcp_states.h).
var ssStates = [...]string{
	1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
	6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
	11: "CLOSING", 12: "NEW-SYN-RECV",
}

// Connections implements provider.Lister from the node's endpoints.
// node.Connections lists UDP and ICMP; TCP's Endpoints returns endpoints,
// not infos, so TCP is listed here directly.
func (p *Provider) Connections() []provider.Connection {
	infos := p.node.Connections()
	out := make([]provider.Connection, 0, len(infos))
	for _, in := range infos {
		out = append(out, connection(in))
	}
	return out
}

func connection(in stack.EndpointInfo) provider.Connection {
	c := provider.Connection{Local: in.Local, Remote: in.Remote, RecvQ: in.RecvQ, SendQ: in.SendQ}
	switch in.Protocol {
	case 6:
		c.Protocol = "tcp"
	case 17:
		c.Protocol = "udp"
	default:
		c.Protocol = "icmp"
	}
	if int(in.State) < len(ssStates) && ssStates[in.State] != "" {
		c.State = ssStates[in.State]
	}
	if c.Protocol == "tcp" && in.State == 7 {
		c.State = "CLOSE"
	}
	return c
}
