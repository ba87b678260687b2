// Package shim measures `netprov run` end to end against the Linux kernel
// in the same run: bulk throughput each way (iperf3), 1-byte
// request/response on one persistent connection, connections per second
// (connect + 1-byte echo + close) and the cost of one intercepted call
// (getsockname), for a kernel client on a veth, the netstack provider on a
// TAP, netprov's stack attached to a veth (`netprov run --netns --attach`,
// AF_PACKET), the host provider, and slirp4netns.
//
// Topology (every namespace and device is created by the benchmark and
// removed after it; the machine's own namespace holds only the netprov
// supervisor processes):
//
//	[kernel ns K] veth ─┐
//	[netprov netstack]  TAP ─┤ bridge 10.213.S.1/24 [host ns H] ── veth [peer ns P] 10.213.S.250
//	[attach ns A] veth ─┤    ├─ netprov --provider host: sockets in H
//	  (netprov run --netns A --attach eth0: the stack on eth0 via AF_PACKET)
//	[slirp ns L] tap0 ── slirp4netns (process in H, its sockets in H)
//
// The peer P runs iperf3 -s and `shimload serve`; every client setup runs
// the same client programs (iperf3 and cmd/shimload). The benchmark needs
// root and skips without it. See run.sh and RESULTS.md.
package shim
