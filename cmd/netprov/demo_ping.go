package main

import (
	"context"
	"fmt"
	"net/netip"
)

// pingStack pings the userspace stack from the kernel, IPv4 and IPv6.
func (d *demo) pingStack(ctx context.Context) error {
	for _, a := range []netip.Addr{demoStackV4.Addr(), demoStackV6.Addr()} {
		args := []string{"ping", "-c", "3", "-i", "0.2", "-W", "2"}
		if a.Is6() {
			args = append(args, "-6")
		}
		args = append(args, a.String())
		fmt.Fprintf(d.out, "   kernel$ ping -c 3 %s\n", a)
		out, err := d.topo.run(ctx, d.topo.kernelNS, args...)
		if err != nil {
			return err
		}
		fmt.Fprintln(d.out, indent(out))
	}
	return nil
}
