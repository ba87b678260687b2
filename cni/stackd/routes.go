package stackd

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/node"
)

// addRoutes installs the sandbox's routes on NIC nic. Routes to the
// NIC's own subnets exist already (AddNIC adds them).
func addRoutes(n *node.Node, nic int, routes []control.Route) error {
	for _, r := range routes {
		if !r.Dst.IsValid() {
			continue
		}
		if r.Dst.Bits() == 0 && r.Gateway.IsValid() {
			if err := n.AddDefaultRoute(r.Gateway); err != nil {
				return fmt.Errorf("route %v via %v: %w", r.Dst, r.Gateway, err)
			}
			continue
		}
		n.AddRoute(stack.RouteEntry{Dst: r.Dst.Masked(), Gateway: r.Gateway, NIC: nic})
	}
	return nil
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
