// Package control is the protocol spoken on a sandbox's control socket: how
// the CNI plugin, `netprov agent`, `netprov ss`/`ls` and tests talk to the
// per-sandbox stack process (`netprov stack`).
//
// # State directory
//
// Every sandbox has a directory StateDir/<container id>/ (StateDir is
// DefaultStateDir unless the network config's "stateDir" says otherwise):
//
//	pid           the stack process's pid (decimal, newline)
//	control.sock  the control socket (unix, SOCK_STREAM)
//	stack.log     the stack process's log (slog text)
//	config.json   the sandbox's network (SandboxConfig, written by ADD)
//
// # Wire format
//
// One request per connection. The client connects to control.sock and
// writes one JSON Request followed by '\n' in a single sendmsg; a request
// that carries a file descriptor (op "handoff") attaches exactly one fd with
// SCM_RIGHTS to that message. The server answers with one JSON Response
// followed by '\n' and closes the connection. Requests are at most
// MaxRequestSize bytes.
//
// Ops:
//
//	status       → Response.Status
//	connections  → Response.Connections (the rows of `netprov ss`)
//	handoff      fd = a seccomp user-notification fd (from an OCI runtime's
//	             listenerPath or a stage); ContainerID must be the
//	             sandbox's own; PID is the container's init (host pid
//	             namespace), informational. The stack process takes
//	             ownership of the fd and serves it with one socketshim
//	             Server over its provider; the answer comes once serving
//	             has started. A target that ends only ends its Server.
//
// A failed op answers OK=false with Error set; unknown ops fail the same
// way, so new ops can be added without breaking old clients. Fields are
// only ever added.
package control

import (
	"net/netip"
	"path/filepath"
	"time"
)

// Version is the protocol version a server reports in Status.
const Version = 1

// DefaultStateDir holds one directory per sandbox, named by container id.
const DefaultStateDir = "/run/netprov"

// File names inside a sandbox's state directory.
const (
	PIDFile    = "pid"
	SocketFile = "control.sock"
	LogFile    = "stack.log"
	ConfigFile = "config.json"
)

// MaxRequestSize bounds one request line.
const MaxRequestSize = 64 << 10

// Ops.
const (
	OpStatus      = "status"
	OpConnections = "connections"
	OpHandoff     = "handoff"
	// OpAnnounce sends gratuitous ARP for the sandbox's addresses.
	OpAnnounce = "announce"
	// OpCapture streams the sandbox link as pcap: after the answer line
	// {"ok":true} the connection carries a pcap file until the client
	// closes it.
	OpCapture = "capture"
)

// SandboxDir is the state directory of container id under stateDir ("" =
// DefaultStateDir).
func SandboxDir(stateDir, id string) string {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	return filepath.Join(stateDir, id)
}

// SocketPath is the control socket of container id under stateDir ("" =
// DefaultStateDir).
func SocketPath(stateDir, id string) string {
	return filepath.Join(SandboxDir(stateDir, id), SocketFile)
}

// Request is one client request.
type Request struct {
	Op string `json:"op"`
	// ContainerID and PID describe the target of a handoff.
	ContainerID string `json:"container_id,omitempty"`
	PID         int    `json:"pid,omitempty"`
	// Metadata is the OCI listenerMetadata, for the log.
	Metadata string `json:"metadata,omitempty"`
}

// Response is the server's answer.
type Response struct {
	OK          bool         `json:"ok"`
	Error       string       `json:"error,omitempty"`
	Status      *Status      `json:"status,omitempty"`
	Connections []Connection `json:"connections,omitempty"`
}

// Status describes a running stack process.
type Status struct {
	Version     int       `json:"version"`
	ContainerID string    `json:"container_id"`
	PID         int       `json:"pid"`
	Provider    string    `json:"provider"` // netstack or host
	Ready       bool      `json:"ready"`
	Started     time.Time `json:"started"`
	// TAP is the host-side device on Bridge; MAC is the stack's own
	// (container-side) link address.
	TAP       string         `json:"tap,omitempty"`
	Bridge    string         `json:"bridge,omitempty"`
	MAC       string         `json:"mac,omitempty"`
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	// Handoffs counts seccomp fds received; Serving counts those whose
	// targets are still running.
	Handoffs int `json:"handoffs"`
	Serving  int `json:"serving"`
}

// Connection is one socket of the sandbox (a row of `netprov ss`).
type Connection struct {
	Protocol string         `json:"protocol"`
	State    string         `json:"state"`
	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	RecvQ    int            `json:"recv_q"`
	SendQ    int            `json:"send_q"`
}
