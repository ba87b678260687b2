package stackd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/netprov/netprov/cni/attachnet"
	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/sniffer"
	"github.com/netprov/netprov/stack/node"
)

// AttachFile in a sandbox's state directory makes it an attach-mode
// sandbox: the stack takes over an interface the runtime's interface
// plugin put into the sandbox netns (SandboxConfig.Netns) instead of
// opening a TAP. The CNI plugin writes it before it starts the stack
// process; DEL and GC read it to give the interface back.
const AttachFile = "attach.json"

// AttachConfig is AttachFile. The stack's addresses are
// SandboxConfig.Addresses; its routes are Routes here (with mtu and
// advmss, which control.Route lacks).
type AttachConfig struct {
	// Interface is the kernel interface in Netns (CNI_IFNAME).
	Interface string           `json:"interface"`
	Netns     string           `json:"netns"`
	MAC       string           `json:"mac,omitempty"` // the interface's, which the stack uses
	MTU       int              `json:"mtu,omitempty"`
	Routes    []AttachRoute    `json:"routes,omitempty"`
	Neighbors []AttachNeighbor `json:"neighbors,omitempty"`
	// Unconnected are address subnets without a connected route in the
	// kernel (ptp): the stack has none either.
	Unconnected []netip.Prefix `json:"unconnected,omitempty"`
}

// AttachRoute is one route of the stack out of the interface.
type AttachRoute struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gw,omitzero"`
	Src     netip.Addr   `json:"src,omitzero"`
	MTU     int          `json:"mtu,omitempty"`
	AdvMSS  int          `json:"advmss,omitempty"`
	Metric  int          `json:"metric,omitempty"`
}

// AttachNeighbor is a permanent neighbour entry of the kernel, taken over.
type AttachNeighbor struct {
	Addr netip.Addr `json:"addr"`
	MAC  string     `json:"mac"`
}

// KernelRoutes converts to kernelnet routes.
func (c *AttachConfig) KernelRoutes() []kernelnet.Route {
	var out []kernelnet.Route
	for _, r := range c.Routes {
		out = append(out, kernelnet.Route{Dst: r.Dst, Gateway: r.Gateway, Src: r.Src, MTU: r.MTU, AdvMSS: r.AdvMSS, Metric: r.Metric})
	}
	return out
}

// KernelNeighbors converts to kernelnet neighbours (bad MACs are skipped).
func (c *AttachConfig) KernelNeighbors() []kernelnet.Neighbor {
	var out []kernelnet.Neighbor
	for _, n := range c.Neighbors {
		if mac, err := net.ParseMAC(n.MAC); err == nil {
			out = append(out, kernelnet.Neighbor{Addr: n.Addr, MAC: mac})
		}
	}
	return out
}

// ReadAttachConfig reads dir's AttachFile; (nil, nil) when there is none
// (a TAP-mode sandbox).
func ReadAttachConfig(dir string) (*AttachConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, AttachFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c AttachConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, AttachFile), err)
	}
	return &c, nil
}

// WriteAttachConfig writes dir's AttachFile atomically.
func WriteAttachConfig(dir string, c *AttachConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, AttachFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, AttachFile))
}

// buildAttachProvider serves the attached interface: ingress drop, packet
// socket (behind the capture sniffer), stack node.
func (d *daemon) buildAttachProvider() (provider.Provider, string, error) {
	a := d.attach
	if a.Netns == "" || a.Interface == "" {
		return nil, "", errors.New("attach: no netns or interface in " + AttachFile)
	}
	l, err := attachnet.Open(context.Background(), attachnet.Config{
		Netns: a.Netns, Interface: a.Interface, MTU: a.MTU,
		Addrs: d.cfg.Addresses, Routes: a.KernelRoutes(), Neighbors: a.KernelNeighbors(), Unconnected: a.Unconnected,
		Node: node.Options{}, Log: d.log,
		WrapLink: func(ep link.Endpoint) (link.Endpoint, error) {
			// Recording is off until `netprov capture` asks for it.
			s, err := sniffer.New(ep, nil, sniffer.Config{})
			d.sniffer = s
			return s, err
		},
	})
	if err != nil {
		return nil, "", err
	}
	d.attached = l
	d.log.Info("attached", "netns", a.Netns, "iface", a.Interface, "routes", len(a.Routes), "neighbors", len(a.Neighbors))
	return netstack.NewWithConfig(l.Node, netstack.Config{OwnsNode: true}), l.Endpoint.LinkAddress().String(), nil
}

// releaseAttach gives the interface back to the namespace's kernel (after
// the provider, and with it the packet socket, is closed).
func (d *daemon) releaseAttach() {
	if d.attached == nil {
		return
	}
	if err := d.attached.RemoveDrop(context.Background()); err != nil {
		d.log.Error("attach: removing the ingress drop", "iface", d.attach.Interface, "err", err)
		return
	}
	d.log.Info("attach: interface given back to the kernel", "iface", d.attach.Interface)
}
