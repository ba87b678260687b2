package cni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/netprov/netprov/cni/hostnet"
)

// sandboxKey hashes the attachment (container id, ifname) into the names
// of its host objects: same attachment, same names, so DEL finds them
// without state.
func sandboxKey(id, ifname string) string {
	h := sha256.Sum256([]byte(id + "/" + ifname))
	return hex.EncodeToString(h[:6])
}

// tapName is the attachment's host-side TAP ("np" + 12 hex = 14 chars).
func tapName(id, ifname string) string { return "np" + sandboxKey(id, ifname) }

// masqChain is the attachment's nat chain for ipMasq.
func masqChain(id, ifname string) string { return "NETPROV-" + strings.ToUpper(sandboxKey(id, ifname)) }

// stackMAC is the stack's (container-side) MAC: locally administered,
// unicast, derived from the attachment so a re-ADD keeps it.
func stackMAC(id, ifname string) string {
	h := sha256.Sum256([]byte("mac/" + id + "/" + ifname))
	h[0] = h[0]&^0x01 | 0x02
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5])
}

func linkExists(name string) bool { return ownNS().LookupLink(context.Background(), name) != nil }

func linkMAC(name string) string {
	if l := ownNS().LookupLink(context.Background(), name); l != nil {
		return l.MAC
	}
	return ""
}

// Devices are looked up in the plugin's own namespace (where the
// runtime runs it).

// linkMaster is the bridge a device is attached to ("" = none).
func linkMaster(name string) string {
	if l := ownNS().LookupLink(context.Background(), name); l != nil {
		return l.Master
	}
	return ""
}

// loopbackUp brings lo up in the sandbox netns (its kernel side has only
// loopback: the sandbox's network is the stack's).
func loopbackUp(ctx context.Context, netns string) error {
	if netns == "" {
		return nil
	}
	return hostnet.Host{NS: netns}.IP(ctx, "link", "set", "lo", "up")
}

// ownNS is the plugin's own network namespace, where the runtime runs it
// and where the bridge, TAPs and rules live.
func ownNS() hostnet.Host { return hostnet.Host{} }
