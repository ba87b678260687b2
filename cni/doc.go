// Package cni is netprov's CNI plugin (type "netprov"): CNI spec 1.1.0 and
// the versions a runtime may still ask for (0.4.0, 1.0.0), with ADD, DEL,
// CHECK, GC, STATUS and VERSION.
//
// ADD delegates IPAM (host-local unless configured otherwise), makes sure
// the host bridge exists, writes the sandbox's state directory (see package
// control), starts the per-sandbox stack process (`netprov stack`)
// detached, waits until it answers on its control socket, attaches the TAP
// the stack process created to the bridge, adds the ipMasq rules and
// returns a result whose container-side interface carries the stack's MAC
// and the sandbox netns. The TAP is created by the stack process (not
// persistent), so it vanishes with the process whatever way it ends.
//
// DEL is idempotent and tolerates every missing piece. GC removes the
// sandboxes of the network that are not in cni.dev/valid-attachments.
// Errors are CNI error JSON with the spec's codes.
//
// # Container-side MAC
//
// The stack NIC's MAC (the result's sandbox interface) is, in this order:
// runtimeConfig "mac" (declare "capabilities": {"mac": true} on netprov's
// entry), CNI_ARGS MAC= (podman run --mac-address), else one derived from
// container id and interface name. It must be a unicast Ethernet address:
// anything else fails ADD before anything is set up, with code 4 (invalid
// environment variables) for CNI_ARGS, 7 (invalid network config) for
// runtimeConfig, and a message naming the value and the problem (args.go).
//
// # Chaining with the reference plugins (containernetworking-plugins 1.1.1)
//
// In the default "tap" mode the sandbox's kernel netns has only lo: the
// container's interface lives in the userspace stack and its host end is
// a TAP on the bridge, not a veth. That decides what a chained plugin can
// do after netprov (tests: chain_test.go):
//
//   - portmap (runtimeConfig portMappings) and firewall work. CHECK of a
//     list with portmap < 1.2 always fails with "could not check ipv6 dnat:
//     chain CNI-DN-... not found in iptables table nat" when ip6tables is
//     usable: portmap's bug (containernetworking/plugins #819, fixed in
//     1.2.0), the same after the bridge plugin; netprov's own CHECK passes.
//     podman 4.3 never calls CHECK.
//   - tuning "sysctl" with netns-wide keys (net.core.somaxconn,
//     net.ipv4.ping_group_range, ...) works: the values are written to the
//     sandbox's kernel netns. They govern what that kernel serves (lo),
//     not netprov's stack, whose settings are its own (Linux's defaults).
//   - tuning "mac", "mtu", "promisc", "allmulti" and per-interface sysctls
//     (net.ipv4.conf.eth0.*) fail ADD with tuning's own error (`failed to
//     get "eth0": Link not found`, `open /proc/sys/net/ipv4/conf/eth0/...:
//     no such file or directory`); tuning 1.1.1 also applies CNI_ARGS MAC=
//     as its "mac", so any tuning fails for a container started with
//     --mac-address. Use netprov's own settings instead: the MAC as above
//     (move the "mac" capability from tuning's entry to netprov's), "mtu"
//     in netprov's entry.
//   - bandwidth fails ADD with "container interface eth0 has no veth peer":
//     netprov does not shape traffic; leave bandwidth out of the list.
//
// The errors of the last two items are the other plugins' (netprov cannot
// reword them); podman prints them as `plugin type="tuning" failed (add):
// ...`. The DEL that follows a failed ADD leaves nothing behind. In
// "attach" mode the sandbox interface is a kernel device made by the
// interface plugin before netprov, so these plugins have one to act on
// when they run before netprov (not covered by these tests).
package cni
