package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/hostnet"
)

// ipamDir holds one file per address in use on a bridge, named by the
// address and containing the owner's pid; a file whose pid is gone is
// free again.
const ipamDir = "/run/netprov/ipam"

// hostNet is the host side of a sandbox: bridge, TAP, NAT and port
// mappings in the host namespace (ns: "" for ours), and how to undo them.
type hostNet struct {
	ns   string
	log  *slog.Logger
	tap  string
	id   string
	undo []func()
}

func (h *hostNet) teardown() {
	for i := len(h.undo) - 1; i >= 0; i-- {
		h.undo[i]()
	}
	h.undo = nil
}

// ipamPath is the directory of the bridge's addresses, per host namespace.
func (h *hostNet) ipamPath(o *runOptions) (string, error) {
	nsPath := h.ns
	if nsPath == "" {
		nsPath = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return "", fmt.Errorf("run: host netns %s: %w", nsPath, err)
	}
	return filepath.Join(ipamDir, fmt.Sprintf("%d-%s", st.Ino, o.bridge)), nil
}

// candidates lists the subnet's host addresses after the gateway.
func candidates(p netip.Prefix, yield func(netip.Addr) bool) {
	a := p.Addr().Next().Next() // network, gateway
	for p.Contains(a) {
		next := a.Next()
		if !p.Contains(next) { // a is the broadcast address
			return
		}
		if !yield(a) {
			return
		}
		a = next
	}
}

func ownerAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return unix.Kill(pid, 0) != unix.ESRCH
}

// peekFreeIP returns the address allocIP would take, without taking it.
func (h *hostNet) peekFreeIP(o *runOptions) (netip.Addr, error) {
	dir, err := h.ipamPath(o)
	if err != nil {
		return netip.Addr{}, err
	}
	var found netip.Addr
	candidates(o.subnet, func(a netip.Addr) bool {
		if ownerAlive(filepath.Join(dir, a.String())) {
			return true
		}
		found = a
		return false
	})
	if !found.IsValid() {
		return found, fmt.Errorf("run: no free address in %v", o.subnet)
	}
	return found, nil
}

// allocIP takes --ip or the next free address of the subnet.
func (h *hostNet) allocIP(o *runOptions) (netip.Addr, error) {
	dir, err := h.ipamPath(o)
	if err != nil {
		return netip.Addr{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return netip.Addr{}, fmt.Errorf("run: %w", err)
	}
	h.undo = append(h.undo, func() { os.Remove(dir) }) // once no address is left in it
	take := func(a netip.Addr) bool {
		path := filepath.Join(dir, a.String())
		for range 2 {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				fmt.Fprintf(f, "%d\n", os.Getpid())
				f.Close()
				h.undo = append(h.undo, func() { os.Remove(path) })
				return true
			}
			if !errors.Is(err, os.ErrExist) || ownerAlive(path) {
				return false
			}
			os.Remove(path) // stale: its owner is gone
		}
		return false
	}
	if o.ip.IsValid() {
		if o.ip == o.subnet.Addr() || o.ip == o.subnet.Addr().Next() {
			return netip.Addr{}, fmt.Errorf("run: --ip %v is the subnet's network or gateway address", o.ip)
		}
		if !take(o.ip) {
			return netip.Addr{}, fmt.Errorf("run: --ip %v is in use by another sandbox", o.ip)
		}
		return o.ip, nil
	}
	var got netip.Addr
	candidates(o.subnet, func(a netip.Addr) bool {
		if take(a) {
			got = a
			return false
		}
		return true
	})
	if !got.IsValid() {
		return got, fmt.Errorf("run: no free address in %v", o.subnet)
	}
	return got, nil
}

// host is the namespace of the bridge, TAP and NAT.
func (h *hostNet) host() hostnet.Host { return hostnet.Host{NS: h.ns} }

// ensureBridge creates the bridge if missing and gives it the subnet's
// first address (the sandboxes' gateway).
func (h *hostNet) ensureBridge(ctx context.Context, o *runOptions) error {
	addrs := []netip.Prefix{netip.PrefixFrom(o.subnet.Addr().Next(), o.subnet.Bits())}
	if o.ipv6Subnet.IsValid() {
		addrs = append(addrs, netip.PrefixFrom(o.ipv6Subnet.Addr().Next(), o.ipv6Subnet.Bits()))
	}
	if err := h.host().EnsureBridge(ctx, o.bridge, 0, addrs); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

func (h *hostNet) tapName() (string, error) {
	s, err := randomSuffix()
	if err != nil {
		return "", err
	}
	h.id = s
	return "nptap" + s, nil
}

func (h *hostNet) attachTAP(ctx context.Context, o *runOptions, name string) error {
	if err := h.host().AttachToBridge(ctx, name, o.bridge); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// iptables runs iptables in the host namespace.
func (h *hostNet) iptables(ctx context.Context, args ...string) error {
	_, err := nsCommand(ctx, h.ns, "iptables", append([]string{"-w", "5"}, args...)...)
	return err
}

// setUpNAT masquerades the sandbox's outbound traffic the way the CNI
// bridge plugin's ipMasq does (hostnet.SetUpMasq), in a per-sandbox chain.
func (h *hostNet) setUpNAT(ctx context.Context, o *runOptions, addr netip.Addr) error {
	chain := "NETPROV-" + strings.ToUpper(h.id)
	h.undo = append(h.undo, func() { h.host().TearDownMasq(context.Background(), chain) })
	if err := h.host().SetUpMasq(ctx, chain, netip.PrefixFrom(addr, o.subnet.Bits()), "netprov-sandbox-"+h.id); err != nil {
		return fmt.Errorf("run: NAT: %w", err)
	}
	return nil
}

// setUpPublish maps host ports to the sandbox with DNAT like the CNI
// portmap plugin: for traffic to local addresses from outside (PREROUTING)
// and from the host itself (OUTPUT), hairpin and localhost masqueraded.
func (h *hostNet) setUpPublish(ctx context.Context, o *runOptions, addr netip.Addr) error {
	if len(o.publish) == 0 {
		return nil
	}
	chain := "NETPROV-DN-" + strings.ToUpper(h.id)
	comment := []string{"-m", "comment", "--comment", "netprov sandbox " + h.id}
	if err := h.iptables(ctx, "-t", "nat", "-N", chain); err != nil {
		return fmt.Errorf("run: publish: %w", err)
	}
	h.undo = append(h.undo, func() {
		h.iptables(context.Background(), "-t", "nat", "-F", chain)
		h.iptables(context.Background(), "-t", "nat", "-X", chain)
	})
	for _, p := range o.publish {
		r := append([]string{"-t", "nat", "-A", chain, "-p", p.Proto, "--dport", strconv.Itoa(p.HostPort),
			"-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", addr, p.Port)}, comment...)
		if err := h.iptables(ctx, r...); err != nil {
			return fmt.Errorf("run: publish: %w", err)
		}
	}
	jumps := [][]string{
		append([]string{"PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chain}, comment...),
		append([]string{"OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chain}, comment...),
		append([]string{"POSTROUTING", "-s", "127.0.0.0/8", "-d", addr.String() + "/32", "-j", "MASQUERADE"}, comment...),
	}
	for _, j := range jumps {
		if err := h.iptables(ctx, append([]string{"-t", "nat", "-A"}, j...)...); err != nil {
			return fmt.Errorf("run: publish: %w", err)
		}
		h.undo = append(h.undo, func() { h.iptables(context.Background(), append([]string{"-t", "nat", "-D"}, j...)...) })
	}
	// Connections to 127.0.0.1:HOSTPORT are routed out of the bridge.
	if _, err := nsCommand(ctx, h.ns, "sysctl", "-q", "-w", "net.ipv4.conf."+o.bridge+".route_localnet=1"); err != nil {
		return fmt.Errorf("run: publish: %w", err)
	}
	return nil
}
