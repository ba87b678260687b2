package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/netprov/netprov/cni/agent"
)

// installOptions are `netprov install`'s flags.
type installOptions struct {
	cniBinDir   string
	cniConfDir  string
	profilePath string
	baseProfile string
	name        string
	bridge      string
	subnet      netip.Prefix
	gateway     netip.Addr
	agentSocket string
	stateDir    string
	ipMasq      bool
	mode        string // the network's mode: "tap" or "attach" (cni/doc.go)
	uninstall   bool
	binary      string // the executable to copy (default: this one)
}

// defaultCNIBinDir is Debian's plugin directory, or /opt/cni/bin where
// that exists (the upstream convention).
func defaultCNIBinDir() string {
	if st, err := os.Stat("/opt/cni/bin"); err == nil && st.IsDir() {
		return "/opt/cni/bin"
	}
	return "/usr/lib/cni"
}

func parseInstallFlags(args []string) (*installOptions, error) {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &installOptions{}
	var subnet string
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", defaultCNIBinDir(), "directory of CNI plugin binaries")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory of CNI network configurations")
	fs.StringVar(&o.profilePath, "seccomp-profile", "/etc/netprov/seccomp.json", "seccomp profile to write")
	fs.StringVar(&o.baseProfile, "base-profile", defaultBaseProfile, "seccomp profile the generated one is based on")
	fs.StringVar(&o.name, "name", "netprov", "CNI network name")
	fs.StringVar(&o.bridge, "bridge", "", "host bridge of the network (default netprov0, or the name)")
	fs.StringVar(&subnet, "subnet", "10.214.0.0/24", "IPv4 subnet; the gateway is its first address")
	fs.StringVar(&o.agentSocket, "agent-socket", agent.DefaultSocket, "the seccomp agent's socket (profile listenerPath)")
	fs.StringVar(&o.stateDir, "state-dir", "", "sandbox state directory (default /run/netprov)")
	fs.BoolVar(&o.ipMasq, "ipmasq", true, "masquerade traffic leaving the subnet")
	fs.StringVar(&o.mode, "mode", "tap", "tap: netprov + portmap; attach: bridge + netprov (attach) + portmap, room for tuning and bandwidth")
	fs.BoolVar(&o.uninstall, "uninstall", false, "remove what install wrote")
	fs.StringVar(&o.binary, "binary", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("usage: netprov install [flags]   (netprov install --uninstall [flags] reverses it)")
			fs.VisitAll(func(f *flag.Flag) {
				if f.Usage != "" {
					fmt.Printf("  --%-16s %s (default %q)\n", f.Name, f.Usage, f.DefValue)
				}
			})
		}
		return nil, usageError{fmt.Sprintf("install: %v", err)}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("install: unexpected argument %q", fs.Arg(0))}
	}
	if o.name == "" || strings.ContainsAny(o.name, "/ \t\n") {
		return nil, usageError{fmt.Sprintf("install: --name %q: want a word without slashes or spaces", o.name)}
	}
	if o.bridge == "" {
		o.bridge = "netprov0"
		if o.name != "netprov" {
			o.bridge = o.name
		}
	}
	if o.mode != "tap" && o.mode != "attach" {
		return nil, usageError{fmt.Sprintf("install: --mode %q: want tap or attach", o.mode)}
	}
	if len(o.bridge) > 15 {
		return nil, usageError{fmt.Sprintf("install: bridge name %q is longer than 15 characters (set --bridge)", o.bridge)}
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return nil, usageError{fmt.Sprintf("install: --subnet %q: want an IPv4 CIDR of /30 or larger", subnet)}
	}
	o.subnet = p.Masked()
	o.gateway = o.subnet.Addr().Next()
	for _, d := range []*string{&o.cniBinDir, &o.cniConfDir, &o.profilePath, &o.agentSocket} {
		if !filepath.IsAbs(*d) {
			return nil, usageError{fmt.Sprintf("install: %q is not an absolute path", *d)}
		}
	}
	return o, nil
}

func runInstall(_ context.Context, args []string) error {
	o, err := parseInstallFlags(args)
	if err != nil {
		return err
	}
	if o.uninstall {
		return uninstall(o, os.Stdout)
	}
	return install(o, os.Stdout)
}

func (o *installOptions) conflistPath() string {
	return filepath.Join(o.cniConfDir, o.name+".conflist")
}

// conflist is the network configuration, chained with the reference
// portmap plugin for `podman run -p`. Mode tap: netprov with host-local
// IPAM makes the bridge and the stack's TAP. Mode attach: the reference
// bridge plugin (same bridge, subnet and IPAM; it also takes the "mac"
// capability, podman run --mac-address) makes a veth that netprov then
// takes over; tuning goes between the two, bandwidth after netprov
// (cni/doc.go).
func (o *installOptions) conflist() ([]byte, error) {
	ipam := map[string]any{
		"type":   "host-local",
		"ranges": [][]map[string]string{{{"subnet": o.subnet.String(), "gateway": o.gateway.String()}}},
		"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
	}
	np := map[string]any{"type": "netprov", "agentSocket": o.agentSocket}
	if o.stateDir != "" {
		np["stateDir"] = o.stateDir
	}
	var plugins []any
	switch o.mode {
	case "attach":
		np["mode"] = "attach"
		plugins = append(plugins, map[string]any{
			"type": "bridge", "bridge": o.bridge, "isGateway": true, "ipMasq": o.ipMasq, "hairpinMode": true,
			"capabilities": map[string]bool{"mac": true}, "ipam": ipam,
		}, np)
	default:
		np["bridge"], np["isGateway"], np["ipMasq"], np["ipam"] = o.bridge, true, o.ipMasq, ipam
		plugins = append(plugins, np)
	}
	plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	conf := map[string]any{
		// 1.0.0: the newest version podman 4.3's libcni knows.
		"cniVersion": "1.0.0",
		"name":       o.name,
		"plugins":    plugins,
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	return append(b, '\n'), err
}

func install(o *installOptions, out io.Writer) error {
	src := o.binary
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("install: find own binary: %w", err)
		}
		src = exe
	}
	base, err := os.ReadFile(o.baseProfile)
	if err != nil {
		return fmt.Errorf("install: read base seccomp profile (install golang-github-containers-common or pass --base-profile): %w", err)
	}
	prof, err := notifyProfile(base, o.agentSocket, "netprov")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	cl, err := o.conflist()
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	dst := filepath.Join(o.cniBinDir, "netprov")
	if err := copyExecutable(src, dst); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := writeFileAtomic(o.conflistPath(), cl, 0o644); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := writeFileAtomic(o.profilePath, prof, 0o644); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintf(out, "installed %s\nwrote %s (network %q, mode %s, subnet %v, gateway %v, bridge %s)\nwrote %s (listenerPath %s)\n",
		dst, o.conflistPath(), o.name, o.mode, o.subnet, o.gateway, o.bridge, o.profilePath, o.agentSocket)
	fmt.Fprintf(out, `
To use it with podman (CNI backend), put these lines in containers.conf:

[containers]
seccomp_profile = %q

[network]
network_backend = "cni"
cni_plugin_dirs = [%q]
network_config_dir = %q
default_network = %q

or per container: podman run --network %s --security-opt seccomp=%s ...
The seccomp agent (netprov agent --socket %s) is started by the first CNI ADD.
`, o.profilePath, o.cniBinDir, o.cniConfDir, o.name, o.name, o.profilePath, o.agentSocket)
	if o.mode == "attach" {
		fmt.Fprintf(out, "Mode attach: list tuning (mac, mtu, sysctls) between bridge and netprov, bandwidth after netprov.\n")
	}
	return nil
}

func uninstall(o *installOptions, out io.Writer) error {
	var errs []error
	rm := func(path string) {
		err := os.Remove(path)
		switch {
		case err == nil:
			fmt.Fprintf(out, "removed %s\n", path)
		case errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, err)
		}
	}
	if b, err := os.ReadFile(o.conflistPath()); err == nil {
		var c struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &c) == nil && c.Name == o.name {
			rm(o.conflistPath())
		} else {
			errs = append(errs, fmt.Errorf("%s is not network %q: left alone", o.conflistPath(), o.name))
		}
	}
	if b, err := os.ReadFile(o.profilePath); err == nil {
		if strings.Contains(string(b), `"netprov: socket calls served`) {
			rm(o.profilePath)
		} else {
			errs = append(errs, fmt.Errorf("%s was not written by netprov install: left alone", o.profilePath))
		}
	}
	// The binary serves every netprov network: keep it while another
	// configuration in the directory still uses it.
	if users := netprovNetworks(o.cniConfDir); len(users) > 0 {
		fmt.Fprintf(out, "kept %s: still used by %s\n", filepath.Join(o.cniBinDir, "netprov"), strings.Join(users, ", "))
	} else {
		rm(filepath.Join(o.cniBinDir, "netprov"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}

// netprovNetworks lists the conflists in dir that use plugin type netprov.
func netprovNetworks(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var users []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conflist") && !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var c struct {
			Type    string `json:"type"`
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		if json.Unmarshal(b, &c) != nil {
			continue
		}
		uses := c.Type == "netprov"
		for _, p := range c.Plugins {
			uses = uses || p.Type == "netprov"
		}
		if uses {
			users = append(users, e.Name())
		}
	}
	return users
}

// copyExecutable copies src to dst through a temporary file and a rename,
// so a running plugin binary is never overwritten in place.
func copyExecutable(src, dst string) error {
	if a, err := filepath.EvalSymlinks(src); err == nil {
		if b, err := filepath.EvalSymlinks(dst); err == nil && a == b {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".netprov-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
