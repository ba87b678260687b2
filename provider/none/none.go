// Package none is the provider of a sandbox without a network: its
// sockets are served by a userspace stack that has only the loopback
// device (127.0.0.1/8 and ::1), like a fresh network namespace with lo up
// (runsc --network=none).
package none

import (
	"fmt"

	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack/node"
)

// New returns a provider named "none" over a new loopback-only node; the
// provider owns the node (Close closes it).
func New() (*netstack.Provider, error) {
	return NewWithOptions(node.Options{})
}

// NewWithOptions is New with the node's options (clock, protocol
// configuration).
func NewWithOptions(o node.Options) (*netstack.Provider, error) {
	n, err := node.New(o)
	if err != nil {
		return nil, fmt.Errorf("none provider: %w", err)
	}
	return netstack.NewWithConfig(n, netstack.Config{Name: "none", OwnsNode: true}), nil
}
