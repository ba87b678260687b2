package cni

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// The runtime may ask for the container-side interface's MAC (the stack
// NIC's link address) in two ways, as for the reference bridge plugin:
//   - CNI_ARGS "MAC=02:42:0a:58:09:4d" (podman run --mac-address; podman
//     also pins the previous MAC this way on network reload),
//   - runtimeConfig {"mac": "..."} when the plugin's conflist entry declares
//     the "mac" capability (CRI runtimes, libcni CapabilityArgs).
//
// runtimeConfig wins over CNI_ARGS, as in the bridge plugin. Without
// either, the MAC is derived from the attachment (stackMAC).

// cniArgsMAC returns the value of the MAC key of CNI_ARGS ("" = none).
// Other keys (IgnoreUnknown, K8S_POD_NAME, IP, ...) are not netprov's and
// are ignored, whatever IgnoreUnknown says: netprov never rejected them.
func cniArgsMAC(cniArgs string) string {
	mac := ""
	for _, pair := range strings.Split(cniArgs, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if ok && k == "MAC" {
			mac = v
		}
	}
	return mac
}

// resolveContainerMAC validates the MAC the runtime asked for and stores
// it in conf.containerMAC in canonical form. A bad value is a CNI error
// naming where it came from: invalid environment variables (code 4) for
// CNI_ARGS, invalid network config (code 7) for runtimeConfig.
func resolveContainerMAC(conf *NetConf, cniArgs string) error {
	if s := conf.RuntimeConfig.MAC; s != "" {
		mac, err := parseUnicastMAC(s)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("runtimeConfig mac %q: %v", s, err), "")
		}
		conf.containerMAC = mac
		return nil
	}
	if s := cniArgsMAC(cniArgs); s != "" {
		mac, err := parseUnicastMAC(s)
		if err != nil {
			return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_ARGS MAC=%s: %v", s, err), "")
		}
		conf.containerMAC = mac
	}
	return nil
}

// sandboxMAC is the container-side interface's MAC of attachment (id,
// ifname): the one the runtime asked for, else the derived one.
func (c *NetConf) sandboxMAC(id, ifname string) string {
	if c.containerMAC != "" {
		return c.containerMAC
	}
	return stackMAC(id, ifname)
}

// parseUnicastMAC parses an Ethernet MAC (any form net.ParseMAC accepts)
// that a NIC can own: six bytes, not multicast or broadcast, not zero. It
// returns it as lower-case colon-separated hex.
func parseUnicastMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("not an Ethernet MAC address; want six hex bytes like 02:42:0a:58:09:4d")
	}
	if hw[0]&0x01 != 0 {
		return "", fmt.Errorf("%s is a multicast address (lowest bit of the first byte set); an interface needs a unicast MAC such as 02:42:0a:58:09:4d", hw)
	}
	if string(hw) == string(make([]byte, 6)) {
		return "", fmt.Errorf("00:00:00:00:00:00 cannot be an interface's MAC")
	}
	return hw.String(), nil
}
