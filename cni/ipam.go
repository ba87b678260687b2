package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// ipamStdin is the configuration to delegate to the IPAM plugin. An IPAM
// plugin older than the network's cniVersion (Debian 12's host-local
// stops at 1.0.0, while runtimes send 1.1.0) gets the newest version it
// supports that is not newer than the network's: IPAM's ADD, DEL and
// CHECK did not change between those versions.
func ipamStdin(ctx context.Context, conf *NetConf, stdin []byte) []byte {
	path, err := invoke.FindInPath(conf.IPAM.Type, filepath.SplitList(os.Getenv("CNI_PATH")))
	if err != nil {
		return stdin // the delegation reports the missing plugin
	}
	info, err := invoke.GetVersionInfo(ctx, path, nil)
	if err != nil {
		return stdin
	}
	supported := info.SupportedVersions()
	if slices.Contains(supported, conf.CNIVersion) {
		return stdin
	}
	best := ""
	for _, v := range supported {
		older, err := version.GreaterThanOrEqualTo(conf.CNIVersion, v)
		if err != nil || !older {
			continue
		}
		if newer, err := version.GreaterThan(v, best); best == "" || (err == nil && newer) {
			best = v
		}
	}
	if best == "" {
		return stdin
	}
	var m map[string]any
	if err := json.Unmarshal(stdin, &m); err != nil {
		return stdin
	}
	m["cniVersion"] = best
	delete(m, "prevResult") // its format follows cniVersion; IPAM ignores it
	b, err := json.Marshal(m)
	if err != nil {
		return stdin
	}
	return b
}
