// Package bench compares netprov's TCP stack with gVisor's netstack in one
// harness, in one process and one run, so the ratio ours/netstack is
// meaningful on a noisy shared machine (absolute numbers across runs are not).
//
// Each implementation provides a Network: two stacks ("client" and "server")
// joined by an in-memory link, with net.Conn/net.Listener adapters. The
// benchmarks (bulk_test.go, connect_test.go) are table-driven over
// Implementations(), so adding a stack is one entry in that table.
//
// This is its own Go module: the product never imports it, and gVisor is a
// dependency of the benchmark only.
package bench
