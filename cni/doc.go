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
// # Modes
//
// "mode" in netprov's conflist entry says how the stack reaches the
// network:
//
//   - "tap" (default): netprov is the interface plugin. It runs IPAM, makes
//     the bridge and gives the stack a TAP on it; the sandbox's kernel
//     netns keeps only lo (the container's interface lives in the stack).
//     Its own entry carries "bridge", "mtu", "ipam", "ipMasq" and the
//     "mac" capability. `netprov install` writes this list: netprov +
//     portmap.
//   - "attach" (attach.go): netprov follows an interface plugin (bridge,
//     macvlan, ipvlan in l2 mode, ptp) and takes over the kernel interface
//     that plugin put into the sandbox (CNI_IFNAME) with a packet socket,
//     using its MAC, MTU, addresses, routes and permanent neighbours as
//     they are when netprov's ADD runs. No "ipam", "bridge", "mtu" or "mac"
//     of its own: the interface plugin and tuning set those. `netprov
//     install --mode attach` writes bridge (host-local IPAM) + netprov
//     (attach) + portmap.
//
// # Chaining with the reference plugins (containernetworking-plugins 1.1.1)
//
// Which chained plugin works depends on the mode (tests: chain_test.go,
// integration/podman/tuning_bandwidth_test.go):
//
//	plugin                      tap mode              attach mode
//	portmap, firewall           yes (after netprov)   yes (after netprov)
//	tuning netns-wide sysctls   yes                   yes
//	tuning mac, mtu,            no: ADD fails         yes, listed BEFORE netprov
//	  eth0 sysctls
//	bandwidth                   no: ADD fails         yes (after netprov)
//
// (tuning's promisc and allmulti fail in tap mode like its mac; in attach
// mode they set the kernel device's flags, which the packet socket does
// not need; not covered by tests.)
//
// The order rule in attach mode: every plugin that changes the sandbox
// interface itself (the interface plugin, tuning's mac and mtu) comes
// before netprov, everything that works on the host side or on traffic
// (bandwidth, portmap, firewall) after it:
//
//	bridge → tuning → netprov (attach) → bandwidth → portmap
//
// The stack reads the interface's MAC and MTU once, at ADD, and cannot
// follow a later change: tuning's mac or mtu listed after netprov changes
// only the kernel's copy (the stack keeps announcing the old MAC and MSS).
// netprov cannot see the plugins after it, so such an ADD succeeds, but
// CHECK then fails with "interface eth0 has MAC ... and MTU ..., the stack
// serves it with MAC ... and MTU ...: ... list the plugin that sets them
// (tuning's mac or mtu) before netprov in the conflist". A MAC the runtime
// asks for (runtimeConfig "mac" on netprov's entry, CNI_ARGS MAC=) that
// the interface does not have when netprov's ADD runs fails that ADD with
// code 7 and the same advice, rather than serving another MAC: in attach
// mode declare the "mac" capability on the interface plugin or on a tuning
// entry before netprov (the bridge plugin 1.1.1 also applies CNI_ARGS
// MAC=, i.e. podman run --mac-address, by itself). bandwidth finds the host
// veth as the peer of the sandbox's eth0 and shapes it with tbf (traffic
// to the sandbox) and an ifb with tbf (traffic from it); the stack's
// packet socket sends and receives through that veth, so the limits apply
// to the stack's traffic; its DEL removes the ifb.
//
// In tap mode the sandbox has no kernel eth0 and its host end is a TAP,
// not a veth, so:
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
//     in netprov's entry; or use attach mode.
//   - bandwidth fails ADD with "container interface eth0 has no veth peer":
//     tap mode does not shape traffic; leave bandwidth out of the list, or
//     use attach mode (bridge → netprov attach → bandwidth).
//
// The errors of the last two items are the other plugins' (netprov cannot
// reword them); podman prints them as `plugin type="tuning" failed (add):
// ...`. Where you see `failed to get "eth0"`, `no such file or directory`
// for net.ipv4.conf.eth0.* or `has no veth peer` with a netprov network,
// the network is in tap mode: switch it to attach mode. The DEL that
// follows a failed ADD leaves nothing behind.
package cni
