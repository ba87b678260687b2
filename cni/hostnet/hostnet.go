// Package hostnet is the host side of a sandbox's network, shared by the
// CNI plugin and `netprov run`: the bridge, the TAP's place on it and the
// ipMasq rules, made with ip(8) and iptables(8) in one network namespace.
package hostnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// CommandTimeout bounds every command.
const CommandTimeout = 30 * time.Second

// Host is a network namespace: NS is its file (/run/netns/NAME,
// /proc/PID/ns/net), "" for ours. Commands for another namespace run
// through nsenter.
type Host struct {
	NS string
}

// Run runs a command in the namespace and returns its output.
func (h Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	if h.NS != "" {
		args = append([]string{"--net=" + h.NS, "--", name}, args...)
		name = "nsenter"
	}
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// IP runs ip(8).
func (h Host) IP(ctx context.Context, args ...string) error {
	_, err := h.Run(ctx, "ip", args...)
	return err
}

// Link is what `ip -j link show` tells about a device. ip(8) asks the
// kernel of the namespace; /sys/class/net shows the namespace sysfs was
// mounted in, which need not be the one meant.
type Link struct {
	Name   string `json:"ifname"`
	MAC    string `json:"address"`
	Master string `json:"master"`
}

// LookupLink returns the device, or nil when it does not exist.
func (h Host) LookupLink(ctx context.Context, name string) *Link {
	out, err := h.Run(ctx, "ip", "-j", "link", "show", "dev", name)
	if err != nil {
		return nil
	}
	var l []Link
	if json.Unmarshal([]byte(out), &l) != nil || len(l) != 1 {
		return nil
	}
	return &l[0]
}

// EnsureBridge creates the bridge if missing (mtu 0: the kernel's
// default), gives it the addresses it lacks and brings it up.
func (h Host) EnsureBridge(ctx context.Context, name string, mtu int, addrs []netip.Prefix) error {
	if h.LookupLink(ctx, name) == nil {
		args := []string{"link", "add", name}
		if mtu > 0 {
			args = append(args, "mtu", fmt.Sprint(mtu))
		}
		if err := h.IP(ctx, append(args, "type", "bridge")...); err != nil && h.LookupLink(ctx, name) == nil {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
	}
	if len(addrs) > 0 {
		out, err := h.Run(ctx, "ip", "-o", "addr", "show", "dev", name)
		if err != nil {
			return fmt.Errorf("bridge %s addresses: %w", name, err)
		}
		for _, a := range addrs {
			if strings.Contains(out, " "+a.String()+" ") {
				continue
			}
			args := []string{"addr", "add", a.String(), "dev", name}
			if a.Addr().Is6() {
				args = append([]string{"-6"}, append(args, "nodad")...)
			}
			if err := h.IP(ctx, args...); err != nil && !strings.Contains(err.Error(), "File exists") {
				return fmt.Errorf("bridge %s address %v: %w", name, a, err)
			}
		}
	}
	if err := h.IP(ctx, "link", "set", name, "up"); err != nil {
		return fmt.Errorf("bridge %s up: %w", name, err)
	}
	return nil
}

// AttachToBridge puts a device (a sandbox's TAP) on the bridge and brings
// it up.
func (h Host) AttachToBridge(ctx context.Context, dev, bridge string) error {
	if err := h.IP(ctx, "link", "set", dev, "master", bridge); err != nil {
		return fmt.Errorf("attach %s to %s: %w", dev, bridge, err)
	}
	if err := h.IP(ctx, "link", "set", dev, "up"); err != nil {
		return fmt.Errorf("%s up: %w", dev, err)
	}
	return nil
}

// DeleteLink removes a device; a missing one is fine.
func (h Host) DeleteLink(ctx context.Context, name string) error {
	if h.LookupLink(ctx, name) == nil {
		return nil
	}
	if err := h.IP(ctx, "link", "del", name); err != nil && h.LookupLink(ctx, name) != nil {
		return err
	}
	return nil
}

func (h Host) iptables(ctx context.Context, args ...string) error {
	_, err := h.Run(ctx, "iptables", append([]string{"-w", "5"}, args...)...)
	return err
}

// SetUpMasq masquerades addr's traffic the way the CNI bridge plugin's
// ipMasq does: a nat chain that accepts the subnet itself and masquerades
// everything but multicast, jumped to from POSTROUTING for addr, and IP
// forwarding on. comment must not contain spaces (TearDownMasq splits
// `iptables -S` lines). IPv6 addresses are left alone (as bridge's
// default).
func (h Host) SetUpMasq(ctx context.Context, chain string, addr netip.Prefix, comment string) error {
	if !addr.Addr().Is4() {
		return nil
	}
	if strings.ContainsAny(comment, " \t\"") {
		return fmt.Errorf("ipMasq comment %q: no spaces or quotes", comment)
	}
	if _, err := h.Run(ctx, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	cm := []string{"-m", "comment", "--comment", comment}
	if err := h.iptables(ctx, "-t", "nat", "-N", chain); err != nil && !strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("ipMasq chain: %w", err)
	}
	rules := [][]string{
		append([]string{"-t", "nat", "-A", chain, "-d", addr.Masked().String(), "-j", "ACCEPT"}, cm...),
		append([]string{"-t", "nat", "-A", chain, "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE"}, cm...),
		append([]string{"-t", "nat", "-A", "POSTROUTING", "-s", addr.Addr().String() + "/32", "-j", chain}, cm...),
	}
	for _, r := range rules {
		if err := h.iptables(ctx, r...); err != nil {
			return fmt.Errorf("ipMasq: %w", err)
		}
	}
	return nil
}

// TearDownMasq removes the chain and every POSTROUTING jump to it; what is
// missing is skipped.
func (h Host) TearDownMasq(ctx context.Context, chain string) error {
	out, err := h.Run(ctx, "iptables", "-w", "5", "-t", "nat", "-S", "POSTROUTING")
	if err != nil {
		return nil // no iptables or no nat table: nothing of ours
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasSuffix(line, "-j "+chain) && !strings.Contains(line, "-j "+chain+" ") {
			continue
		}
		// -S quotes comments; ours have no spaces, so the line splits
		// back into the rule's arguments.
		rule := strings.Fields(strings.Replace(line, "-A POSTROUTING", "-D POSTROUTING", 1))
		for i, f := range rule {
			rule[i] = strings.Trim(f, `"`)
		}
		if err := h.iptables(ctx, append([]string{"-t", "nat"}, rule...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if h.iptables(ctx, "-t", "nat", "-F", chain) == nil {
		if err := h.iptables(ctx, "-t", "nat", "-X", chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
