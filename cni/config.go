package cni

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netprov/netprov/cni/control"
)

// NetConf is the plugin's network configuration.
type NetConf struct {
	types.PluginConf
	// Bridge is the host bridge the sandboxes' TAPs join (default
	// "netprov0"; created if missing).
	Bridge string `json:"bridge"`
	// MTU of the TAP and the stack's link (default 1500).
	MTU int `json:"mtu"`
	// IsGateway gives the bridge the subnet's gateway address and enables
	// IP forwarding; IsDefaultGateway also adds a default route via it.
	IsGateway        bool `json:"isGateway"`
	IsDefaultGateway bool `json:"isDefaultGateway"`
	// IPMasq masquerades the sandbox's traffic leaving the subnet.
	IPMasq bool `json:"ipMasq"`
	// Provider serves the sandbox's sockets: "netstack" (default, the
	// userspace stack on a TAP) or "host" (kernel sockets of the host
	// namespace; no bridge, TAP or IPAM).
	Provider string `json:"provider"`
	// Mode is how the stack reaches the network: "tap" (default: its own
	// TAP on Bridge, addresses from IPAM) or "attach" (a chained plugin
	// after an interface plugin such as bridge, macvlan, ipvlan or ptp:
	// the stack takes over the sandbox interface of prevResult through a
	// packet socket; no bridge, TAP or IPAM of its own).
	Mode string `json:"mode"`
	// StateDir holds one directory per sandbox (default /run/netprov).
	StateDir string `json:"stateDir"`
	// AgentSocket, when set, is checked by STATUS (the seccomp agent's
	// listenerPath socket).
	AgentSocket string `json:"agentSocket"`
	// HandoffWarnSeconds: see control.SandboxConfig (default 30).
	HandoffWarnSeconds int `json:"handoffWarnSeconds"`
	// ReadyTimeoutSeconds bounds ADD's wait for the stack process
	// (default 10).
	ReadyTimeoutSeconds int `json:"readyTimeoutSeconds"`

	RuntimeConfig struct {
		PortMappings []json.RawMessage `json:"portMappings,omitempty"`
		// MAC is the "mac" capability: the container-side interface's
		// MAC (see args.go).
		MAC string `json:"mac,omitempty"`
	} `json:"runtimeConfig"`

	// containerMAC is the validated MAC the runtime asked for ("" =
	// derive one); set by resolveContainerMAC.
	containerMAC string
}

// Modes of the plugin (NetConf.Mode).
const (
	ModeTAP    = "tap"
	ModeAttach = "attach"
)

const (
	defaultBridge = "netprov0"
	defaultMTU    = 1500
)

// parseConfig decodes and validates stdin. Errors are *types.Error.
func parseConfig(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network configuration is not valid JSON", err.Error())
	}
	if c.RawPrevResult != nil {
		if err := parsePrevResult(c); err != nil {
			return nil, err
		}
	}
	if c.Bridge == "" {
		c.Bridge = defaultBridge
	}
	if c.MTU == 0 {
		c.MTU = defaultMTU
	}
	if c.StateDir == "" {
		c.StateDir = control.DefaultStateDir
	}
	if c.Provider == "" {
		c.Provider = "netstack"
	}
	if c.Mode == "" {
		c.Mode = ModeTAP
	}
	invalid := func(msg string) error { return types.NewError(types.ErrInvalidNetworkConfig, msg, "") }
	switch c.Mode {
	case ModeTAP:
	case ModeAttach:
		if err := validateAttachConf(c); err != nil {
			return nil, err
		}
	default:
		return nil, invalid(fmt.Sprintf("unknown mode %q: set \"mode\" to \"tap\" (default) or \"attach\"", c.Mode))
	}
	switch c.Provider {
	case "netstack", "host":
	default:
		return nil, invalid(fmt.Sprintf("unknown provider %q: set \"provider\" to \"netstack\" or \"host\"", c.Provider))
	}
	if len(c.Bridge) > 15 || net.ParseIP(c.Bridge) != nil {
		return nil, invalid(fmt.Sprintf("bridge name %q: want 1..15 characters", c.Bridge))
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return nil, invalid(fmt.Sprintf("mtu %d out of range 576..65535", c.MTU))
	}
	if c.Provider == "netstack" && c.Mode == ModeTAP && c.IPAM.Type == "" {
		return nil, invalid("provider netstack needs an \"ipam\" section (e.g. {\"type\": \"host-local\", \"ranges\": [[{\"subnet\": \"10.88.0.0/16\"}]]})")
	}
	if c.HandoffWarnSeconds < 0 || c.ReadyTimeoutSeconds < 0 {
		return nil, invalid("handoffWarnSeconds and readyTimeoutSeconds must not be negative")
	}
	if c.IsDefaultGateway {
		c.IsGateway = true
	}
	return c, nil
}
