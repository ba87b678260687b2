package cni

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/integration/netns"
)

func TestParseUnicastMAC(t *testing.T) {
	for _, c := range []struct {
		in, want string
		errHas   string
	}{
		{"02:42:0A:58:09:4D", "02:42:0a:58:09:4d", ""},
		{"02-42-0a-58-09-4d", "02:42:0a:58:09:4d", ""},
		{"0242.0a58.094d", "02:42:0a:58:09:4d", ""},
		{"00:16:3e:00:00:01", "00:16:3e:00:00:01", ""}, // universally administered is fine
		{"zz:42:0a:58:09:4d", "", "six hex bytes"},
		{"02:42:0a:58:09", "", "six hex bytes"},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "", "six hex bytes"}, // IPoIB, 20 bytes
		{"01:00:5e:00:00:01", "", "multicast"},
		{"ff:ff:ff:ff:ff:ff", "", "multicast"},
		{"00:00:00:00:00:00", "", "00:00:00:00:00:00"},
	} {
		got, err := parseUnicastMAC(c.in)
		if c.errHas == "" {
			if err != nil || got != c.want {
				t.Errorf("parseUnicastMAC(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("parseUnicastMAC(%q) = %q, %v; want an error mentioning %q", c.in, got, err, c.errHas)
		}
	}
}

func TestCNIArgsMAC(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"IgnoreUnknown=1;K8S_POD_NAME=web": "",
		"IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:42:0a:58:09:4d;IP=10.88.9.77": "02:42:0a:58:09:4d",
		"MAC=02:00:00:00:00:01":      "02:00:00:00:00:01",
		"mac=02:00:00:00:00:01":      "", // keys are case-sensitive, as in libcni
		"junk;MAC=02:00:00:00:00:02": "02:00:00:00:00:02",
		"MAC=":                       "",
	} {
		if got := cniArgsMAC(in); got != want {
			t.Errorf("cniArgsMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAddWithRequestedMAC: a MAC asked for in CNI_ARGS (podman run
// --mac-address) is the sandbox interface's MAC in ADD's result and the
// stack's (status, and on the wire: the host resolves the sandbox address
// to it by ARP); CHECK passes. runtimeConfig's "mac" capability wins over
// CNI_ARGS (as in the reference bridge plugin).
func TestAddWithRequestedMAC(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name    string
		cniArgs string
		capMAC  string
		want    string
	}{
		{"cni-args", "02:42:0A:58:09:4D", "", "02:42:0a:58:09:4d"},
		{"runtime-config", "02:42:0a:58:09:4e", "02:42:0a:58:09:4f", "02:42:0a:58:09:4f"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := e.netprovConf(map[string]any{"capabilities": map[string]bool{"mac": true}})
			l := e.confList("npmac", conf)
			id := uniqueID("mac")
			rt := e.rt(id)
			rt.Args = [][2]string{{"IgnoreUnknown", "1"}, {"MAC", c.cniArgs}}
			if c.capMAC != "" {
				rt.CapabilityArgs = map[string]any{"mac": c.capMAC}
			}
			r := e.addRT(l, rt)
			if len(r.Interfaces) != 3 || r.Interfaces[2].Mac != c.want || r.Interfaces[2].Sandbox != e.sandbox.Path() {
				t.Fatalf("result interfaces %+v, want the sandbox interface with MAC %s", r.Interfaces, c.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := control.GetStatus(ctx, control.SocketPath(e.stateDir, id))
			if err != nil {
				t.Fatal(err)
			}
			if st.MAC != c.want {
				t.Errorf("stack status MAC %s, want %s", st.MAC, c.want)
			}
			ip := r.IPs[0].Address.IP.String()
			netns.WaitFor(t, 10*time.Second, func() bool {
				e.host.Exec("ping", "-c", "1", "-W", "1", ip) // resolves ip by ARP; the echo reply is not needed
				out, _ := e.host.Exec("ip", "neigh", "show", ip, "dev", e.bridge)
				return strings.Contains(string(out), "lladdr "+c.want)
			})
			if err := e.inHost(func(ctx context.Context) error { return e.cni.CheckNetworkList(ctx, l, rt) }); err != nil {
				t.Errorf("CHECK with the requested MAC: %v", err)
			}
			pid := readPID(control.SandboxDir(e.stateDir, id))
			if err := e.inHost(func(ctx context.Context) error { return e.cni.DelNetworkList(ctx, l, rt) }); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			e.assertGone("npmac", id, pid)
		})
	}
}

// TestAddWithBadMAC: an unusable MAC fails ADD before anything is made,
// with invalid environment variables (4) for CNI_ARGS and invalid network
// config (7) for runtimeConfig, and a message naming the value and what
// is wrong with it; nothing is left behind.
func TestAddWithBadMAC(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, cniArgs, capMAC string
		code                  uint
		msg                   string
	}{
		{"cni-args-garbage", "02:42:zz:58:09:4d", "", types.ErrInvalidEnvironmentVariables, "CNI_ARGS MAC=02:42:zz:58:09:4d: not an Ethernet MAC"},
		{"cni-args-multicast", "01:00:5e:00:00:01", "", types.ErrInvalidEnvironmentVariables, "multicast"},
		{"runtime-config-broadcast", "", "ff:ff:ff:ff:ff:ff", types.ErrInvalidNetworkConfig, `runtimeConfig mac "ff:ff:ff:ff:ff:ff"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := e.confList("npbadmac", e.netprovConf(map[string]any{"capabilities": map[string]bool{"mac": true}}))
			id := uniqueID("bm")
			rt := e.rt(id)
			if c.cniArgs != "" {
				rt.Args = [][2]string{{"MAC", c.cniArgs}}
			}
			if c.capMAC != "" {
				rt.CapabilityArgs = map[string]any{"mac": c.capMAC}
			}
			err := e.inHost(func(ctx context.Context) error { _, err := e.cni.AddNetworkList(ctx, l, rt); return err })
			assertCode(t, err, c.code, c.msg)
			e.assertGone("npbadmac", id, 0)
			if l := e.leases("npbadmac"); len(l) > 0 {
				t.Errorf("IPAM leases after the refused ADD: %v", l)
			}
		})
	}
}
