// Package kernelnet reads the kernel's view of one interface in a network
// namespace (addresses, main-table routes, permanent neighbours) and keeps
// the kernel from answering for it with an nftables netdev ingress drop,
// for `netprov run --attach` and the CNI plugin's attach mode. It drives
// ip(8) and nft(8) and parses ip's JSON output: simple, and what an
// administrator would type to check it.
package kernelnet
