package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// SandboxConfig is config.json: everything the stack process needs, written
// by the CNI plugin's ADD before it starts the stack process, and what DEL,
// CHECK and GC read back.
type SandboxConfig struct {
	ContainerID string `json:"container_id"`
	Network     string `json:"network"`
	IfName      string `json:"ifname"`
	Netns       string `json:"netns"`
	Provider    string `json:"provider"` // netstack or host
	// Bridge and TAP (host side) and the stack's MAC (container side).
	Bridge string `json:"bridge,omitempty"`
	TAP    string `json:"tap,omitempty"`
	MAC    string `json:"mac,omitempty"`
	MTU    int    `json:"mtu"`
	// Addresses, gateways and routes of the stack node.
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	Routes    []Route        `json:"routes,omitempty"`
	// IPMasqChain is the nat chain ADD made for ipMasq ("" = none).
	IPMasqChain string `json:"ipmasq_chain,omitempty"`
	// HandoffWarnSeconds: the stack logs a warning naming the container
	// when no seccomp fd arrived this long after start (0 = 30 s).
	HandoffWarnSeconds int `json:"handoff_warn_seconds,omitempty"`
	// NetConf is the network configuration ADD got (for releasing IPAM
	// from GC, which has no per-sandbox config).
	NetConf json.RawMessage `json:"netconf,omitempty"`
}

// Route is one route of the stack node; Gateway invalid = on-link.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gw,omitzero"`
}

// ReadSandboxConfig reads dir/config.json.
func ReadSandboxConfig(dir string) (*SandboxConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	var c SandboxConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return &c, nil
}

// WriteSandboxConfig writes dir/config.json atomically.
func WriteSandboxConfig(dir string, c *SandboxConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ConfigFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ConfigFile))
}
