// Package programs runs real, unmodified programs under `netprov run` and
// checks what they do: curl, wget, python3, nc, socat, iperf3, nginx,
// redis, node, a static Go binary, dig/getent against dnsmasq, and ping.
//
// Each test builds its own topology out of namespaces it creates; the
// machine's root namespace holds only the netprov supervisor process:
//
//	sandbox (netprov's stack) ─TAP─ bridge  [host ns H]  veth ─ [peer ns P]
//	 10.213.A.10/24                 10.213.A.1   10.213.B.1    10.213.B.2
//
// H is netprov's host side (--host-netns: bridge, TAP, NAT, published
// ports); P is the kernel peer, routed through H, so traffic from the
// sandbox to P is masqueraded to 10.213.B.1 as on a real host, while P
// reaches the sandbox's address directly. Programs in one sandbox also
// talk to each other over the sandbox's loopback, which is the stack's.
//
// The package has only tests (and this file). They need root and skip
// without it; a program whose binary is missing fails the test when
// scripts/setup installs it (run sudo scripts/setup), and skips it only
// when it does not.
package programs
