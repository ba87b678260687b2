// Package cni is netprov's CNI plugin (type "netprov"): CNI spec 1.1.0 and
// the versions a runtime may still ask for (0.4.0, 1.0.0), with ADD, DEL,
// CHECK, GC, STATUS and VERSION.
//
// ADD delegates IPAM (host-local unless configured otherwise), makes sure
// the host bridge exists, writes the sandbox's state directory (see package
// control), starts the per-sandbox stack process (`netprov stack`)
// detached, waits until it answers on its control socket, attaches the TAP
// the stack process created to the bridge, adds the ipMasq rules and
// returns a result whose container-side interface carries the stack's MAC
// and the sandbox netns. The TAP is created by the stack process (not
// persistent), so it vanishes with the process whatever way it ends.
//
// DEL is idempotent and tolerates every missing piece. GC removes the
// sandboxes of the network that are not in cni.dev/valid-attachments.
// Errors are CNI error JSON with the spec's codes.
package cni
