// Package semantics is the differential socket-semantics suite (issue 3
// item 1): one C program, probe.c, with a few hundred scenarios drawn from
// shared/spec/linux-tcp-behaviors.md sections A–M and the architecture
// brief's "Linux semantics that are easy to get wrong". It runs on the
// Linux kernel in a fresh network namespace (the oracle) and under
// `netprov run --provider X` for each provider; every scenario's output
// (errno names, poll/epoll masks, normalised addresses) must be identical.
// A scenario that differs is a failing test, not a skipped one.
//
// The tests need root (network namespaces) and gcc; they skip without root.
package semantics
