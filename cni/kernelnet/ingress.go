package kernelnet

import (
	"context"
	"fmt"
	"strings"
)

// IngressDrop keeps the kernel from seeing what arrives on an interface:
// an nftables netdev table whose ingress chain drops everything. Packet
// sockets still get every frame: __netif_receive_skb_core delivers to taps
// (ptype_all, where AF_PACKET sits) before the ingress hooks run. So the
// kernel neither answers ARP or neighbour solicitations for its (inert)
// addresses nor resets connections it has no socket for, while the stack
// on the packet socket serves the interface. Deleting the table gives the
// interface back to the kernel with its addresses and routes untouched.
//
// nftables rather than tc: a tc drop needs act_gact (and matchall), which
// kernels without modules often lack; the netdev family is built in
// wherever nftables is.
type IngressDrop struct {
	ns, dev, table string
}

// TableName is the nftables netdev table that holds the drop for dev.
func TableName(dev string) string {
	var b strings.Builder
	b.WriteString("netprov_attach_")
	for _, r := range dev {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// InstallIngressDrop adds the drop on dev in namespace ns ("" = ours). It
// fails if the table exists: another netprov serves dev, or one that died
// left it (nft delete table netdev TABLE).
func InstallIngressDrop(ctx context.Context, ns, dev string) (*IngressDrop, error) {
	d := &IngressDrop{ns: ns, dev: dev, table: TableName(dev)}
	if _, err := command(ctx, ns, "nft", "create", "table", "netdev", d.table); err != nil {
		if strings.Contains(err.Error(), "File exists") {
			return nil, fmt.Errorf("ingress drop on %s: already attached (or left by a netprov that was killed: nft delete table netdev %s): %w", dev, d.table, err)
		}
		return nil, fmt.Errorf("ingress drop on %s: %w", dev, err)
	}
	// Priority -500 runs before other ingress chains (filter is 0).
	chain := fmt.Sprintf(`{ type filter hook ingress device %q priority -500; policy drop; }`, dev)
	if _, err := command(ctx, ns, "nft", "add", "chain", "netdev", d.table, "ingress", chain); err != nil {
		command(ctx, ns, "nft", "delete", "table", "netdev", d.table)
		return nil, fmt.Errorf("ingress drop on %s: %w", dev, err)
	}
	return d, nil
}

// ExistingIngressDrop is the drop on dev in ns that an earlier process
// installed (to Remove it).
func ExistingIngressDrop(ns, dev string) *IngressDrop {
	return &IngressDrop{ns: ns, dev: dev, table: TableName(dev)}
}

// Remove deletes the drop's table.
func (d *IngressDrop) Remove(ctx context.Context) error {
	if _, err := command(ctx, d.ns, "nft", "delete", "table", "netdev", d.table); err != nil {
		return fmt.Errorf("remove ingress drop on %s: %w", d.dev, err)
	}
	return nil
}

// Installed reports whether the drop's table for dev exists in ns.
func Installed(ctx context.Context, ns, dev string) (bool, error) {
	out, err := command(ctx, ns, "nft", "list", "tables", "netdev")
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "table netdev "+TableName(dev) {
			return true, nil
		}
	}
	return false, nil
}
