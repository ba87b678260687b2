package attachnet

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/ipv4"
	"github.com/netprov/netprov/stack/ipv6"
	"github.com/netprov/netprov/stack/neighbor"
)

// AddPermanentNeighbor copies a `nud permanent` entry (ARP or NDP) into
// the NIC's neighbour table: the stack never resolves that address.
func AddPermanentNeighbor(nic *stack.NIC, nb kernelnet.Neighbor) error {
	if len(nb.MAC) != len(header.MAC{}) {
		return fmt.Errorf("link address %v: %w", nb.MAC, unix.EINVAL)
	}
	var table *neighbor.Table
	switch addr := nb.Addr.Unmap(); {
	case addr.Is4():
		if ep, ok := nic.NetworkEndpoint(header.EtherTypeIPv4).(*ipv4.Endpoint); ok {
			table = ep.Neighbors()
		}
	case addr.Is6():
		if ep, ok := nic.NetworkEndpoint(header.EtherTypeIPv6).(*ipv6.Endpoint); ok {
			table = ep.Neighbors()
		}
	}
	if table == nil {
		return fmt.Errorf("no neighbour table for %v on the NIC: %w", nb.Addr, unix.EAFNOSUPPORT)
	}
	table.AddStatic(nb.Addr.Unmap(), header.MAC(nb.MAC))
	return nil
}
