// Package kernelpeer holds end-to-end tests with the Linux kernel as the
// userspace stack's peer: the stack runs in the test process on a TAP
// device or on a veth end opened with AF_PACKET, and real kernel programs
// (curl, nc, ping, python) in a network namespace the test creates talk to
// it over IPv4 and IPv6. The tests need root and skip otherwise.
package kernelpeer
