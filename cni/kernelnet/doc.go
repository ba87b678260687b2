// Package kernelnet reads the kernel's view of one interface in a network
// namespace (addresses, main-table routes, permanent neighbours) and keeps
// the kernel from answering for it with a tc ingress drop, for `netprov run
// --attach`. It drives ip(8) and tc(8) and parses their JSON output: simple,
// and what an administrator would type to check it.
package kernelnet
