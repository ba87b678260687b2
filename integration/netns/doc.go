// Package netns builds test topologies out of Linux network namespaces: the
// Linux kernel in a namespace is the peer and the oracle for netprov's tests.
//
// Every namespace and device gets a unique short name (UniqueName) and is
// removed by t.Cleanup, also when the test stops with t.Fatal. Tests that
// use this package need root; they call RequireRoot (New does it for them)
// and skip with a clear message otherwise.
//
// A typical topology keeps the host's own namespace out of the picture:
//
//	a := netns.New(t, "a")
//	b := netns.New(t, "b")
//	netns.Veth(t, a, "veth0", b, "veth0")
//	a.AddAddr(t, "veth0", "10.213.0.1/24")
//	b.AddAddr(t, "veth0", "10.213.0.2/24")
//	a.Run(t, "ping", "-c1", "-W1", "10.213.0.2")
//
// Commands run inside a namespace with `ip netns exec`; Go code runs inside
// one with NS.Do, and sockets it creates there stay in that namespace.
package netns
