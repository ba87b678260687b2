package icmp_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/icmp"
	"github.com/netprov/netprov/stack/socket/sockopt"
)

// ping (iputils) sets IP_RECVTTL and IP_RETOPTS on its echo socket: Linux
// accepts them on every inet socket (do_ip_setsockopt), so they succeed
// and read back (the programs suite saw ENOPROTOOPT). A foreign level in
// getsockopt is EOPNOTSUPP on IPv4 (ping_prot's getsockopt is
// ip_getsockopt; semantics scenario m-option-errors shows the kernel's
// value) and ENOPROTOOPT on IPv6 (ipv6_getsockopt).
func TestPingAncillaryOptions(t *testing.T) {
	_, p := newStack(t, icmp.DefaultConfig())
	ep, err := p.V4().NewEndpoint(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	buf := make([]byte, 4)
	for _, name := range []int{unix.IP_RECVTTL, unix.IP_RETOPTS, unix.IP_RECVOPTS, unix.IP_RECVTOS, unix.IP_PKTINFO} {
		if n, err := ep.GetSockOpt(unix.SOL_IP, name, buf); err != nil || n != 4 || buf[0] != 0 {
			t.Errorf("getsockopt(SOL_IP, %d) default = %d %v %v, want 0", name, n, buf, err)
		}
		if err := ep.SetSockOpt(unix.SOL_IP, name, []byte{1, 0, 0, 0}); err != nil {
			t.Errorf("setsockopt(SOL_IP, %d, 1) = %v, want success", name, err)
		}
		if v, err := sockopt.Int(buf[:getOpt(t, ep.GetSockOpt, unix.SOL_IP, name, buf)]); err != nil || v != 1 {
			t.Errorf("getsockopt(SOL_IP, %d) after set = %d %v, want 1", name, v, err)
		}
	}
	// do_ip_setsockopt reads an int, a byte or nothing: optlen 0 is the
	// value 0 (the kernel oracle in provider/netstack's
	// TestDatagramRecvOptionsLikeLinux shows it).
	if err := ep.SetSockOpt(unix.SOL_IP, unix.IP_RECVTTL, nil); err != nil {
		t.Errorf("setsockopt(IP_RECVTTL) without a value = %v, want success (0)", err)
	}
	if n := getOpt(t, ep.GetSockOpt, unix.SOL_IP, unix.IP_RECVTTL, buf); n != 4 || buf[0] != 0 {
		t.Errorf("getsockopt(IP_RECVTTL) after an empty set = %v, want 0", buf[:n])
	}
	if _, err := ep.GetSockOpt(9999, 1, buf); err != unix.EOPNOTSUPP {
		t.Errorf("getsockopt(level 9999) on IPv4 = %v, want EOPNOTSUPP", err)
	}
	if _, err := ep.GetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, buf); err != unix.EOPNOTSUPP {
		t.Errorf("getsockopt(SOL_IPV6) on IPv4 = %v, want EOPNOTSUPP", err)
	}
	ep6, err := p.V6().NewEndpoint(unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	defer ep6.Close()
	if err := ep6.SetSockOpt(unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT, []byte{1, 0, 0, 0}); err != nil {
		t.Errorf("setsockopt(IPV6_RECVHOPLIMIT) = %v, want success", err)
	}
	if _, err := ep6.GetSockOpt(9999, 1, buf); err != unix.ENOPROTOOPT {
		t.Errorf("getsockopt(level 9999) on IPv6 = %v, want ENOPROTOOPT", err)
	}
}

func getOpt(t *testing.T, get func(level, name int, buf []byte) (int, error), level, name int, buf []byte) int {
	t.Helper()
	n, err := get(level, name, buf)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d) = %v", level, name, err)
	}
	return n
}
