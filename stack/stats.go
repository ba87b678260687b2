package stack

import (
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
)

// Counter is a statistics counter, safe for concurrent use.
type Counter = atomic.Uint64

// Stats are the stack's counters, named as in Linux's /proc/net/snmp,
// /proc/net/snmp6 and /proc/net/netstat (`netstat -s`).
type Stats struct {
	IP      IPStats
	ICMP    ICMPStats
	TCP     TCPStats
	UDP     UDPStats
	TCPExt  TCPExtStats
	IPv6    IPStats
	ICMPv6  ICMPStats
	ARP     NeighborStats
	NDP     NeighborStats
	Dropped DropStats
}

// IPStats are the Ip: (and Ip6:) lines.
type IPStats struct {
	InReceives, InHdrErrors, InAddrErrors, InUnknownProtos, InDiscards, InDelivers Counter
	OutRequests, OutDiscards, OutNoRoutes                                          Counter
	ReasmTimeout, ReasmReqds, ReasmOKs, ReasmFails                                 Counter
	FragOKs, FragFails, FragCreates                                                Counter
}

// ICMPStats are the Icmp: (and Icmp6:) lines.
type ICMPStats struct {
	InMsgs, InErrors, InCsumErrors, InDestUnreachs, InTimeExcds, InEchos, InEchoReps Counter
	OutMsgs, OutErrors, OutDestUnreachs, OutEchos, OutEchoReps                       Counter
}

// TCPStats are the Tcp: line.
type TCPStats struct {
	ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab Counter
	InSegs, OutSegs, RetransSegs, InErrs, OutRsts, InCsumErrors     Counter
}

// UDPStats are the Udp: line.
type UDPStats struct {
	InDatagrams, NoPorts, InErrors, OutDatagrams, RcvbufErrors, SndbufErrors, InCsumErrors Counter
}

// TCPExtStats are the TcpExt: counters of netstat -s that the stack keeps.
type TCPExtStats struct {
	SyncookiesSent, SyncookiesRecv, SyncookiesFailed Counter
	ListenOverflows, ListenDrops                     Counter
	TCPTimeouts, TCPLossProbes, TCPFastRetrans       Counter
	TCPSackRecovery, TCPRenoRecovery                 Counter
	TCPSACKReneging, TCPDSACKRecv, TCPDSACKOldSent   Counter
	TCPChallengeACK, TCPSYNChallenge                 Counter
	PAWSEstab, TCPAbortOnData, TCPAbortOnClose       Counter
	TCPAbortOnTimeout, TCPAbortOnLinger              Counter
	TCPKeepAlive, TCPWinProbe, DelayedACKs           Counter
	TCPOFOQueue, TCPOFODrop, TCPRcvQDrop             Counter
	TW, TWRecycled, TCPTimeWaitOverflow              Counter
	EmbryonicRsts, TCPReqQFullDrop                   Counter
}

// NeighborStats count ARP / NDP activity.
type NeighborStats struct {
	RequestsSent, RequestsReceived, RepliesSent, RepliesReceived Counter
	ResolutionFailed, QueueDropped, Malformed                    Counter
}

// DropStats count packets dropped as malformed, per layer, so that bad
// input is visible rather than silent.
type DropStats struct {
	MalformedIPv4, MalformedIPv6, MalformedARP Counter
	MalformedICMP, MalformedUDP, MalformedTCP  Counter
	MalformedFrames, UnknownNetworkProtocol    Counter
}

// WriteSNMP writes the counters in the "Group: Name Name...\nGroup: v v..."
// layout of /proc/net/snmp (IPv4, ICMP, TCP, UDP) and /proc/net/netstat
// (TcpExt).
func (s *Stats) WriteSNMP(w io.Writer) error {
	for _, g := range []struct {
		name string
		v    any
	}{{"Ip", &s.IP}, {"Icmp", &s.ICMP}, {"Tcp", &s.TCP}, {"Udp", &s.UDP}, {"TcpExt", &s.TCPExt},
		{"Ip6", &s.IPv6}, {"Icmp6", &s.ICMPv6}, {"Arp", &s.ARP}, {"Ndp", &s.NDP}, {"Drop", &s.Dropped}} {
		names, values := "", ""
		rv := reflect.ValueOf(g.v).Elem()
		for i := 0; i < rv.NumField(); i++ {
			c := rv.Field(i).Addr().Interface().(*Counter)
			names += " " + rv.Type().Field(i).Name
			values += fmt.Sprintf(" %d", c.Load())
		}
		if _, err := fmt.Fprintf(w, "%s:%s\n%s:%s\n", g.name, names, g.name, values); err != nil {
			return fmt.Errorf("write %s counters: %w", g.name, err)
		}
	}
	return nil
}
