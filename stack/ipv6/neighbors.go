package ipv6

import "github.com/netprov/netprov/stack/neighbor"

// Neighbors returns the NIC's IPv6 neighbour cache (`ip -6 neigh`), or nil
// on links without Ethernet addressing. It is the same table as
// Protocol.Table(nicID), reachable from the endpoint the way
// ipv4.Endpoint.Neighbors reaches the ARP table, so code holding a NIC
// (`netprov run --attach` installing the kernel's `nud permanent`
// entries) needs no Protocol.
func (e *Endpoint) Neighbors() *neighbor.Table { return e.neigh }
