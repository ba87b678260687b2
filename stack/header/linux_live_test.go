package header

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// synOptionConfig is one combination of the sysctls that choose the SYN
// options (behaviour 36) and the SYN-ACK options (behaviour 56).
type synOptionConfig struct {
	timestamps, sack, windowScaling bool
}

// TestLiveLinuxSYNOptions makes the running kernel open connections over
// loopback in a private network namespace under each combination of
// net.ipv4.tcp_{timestamps,sack,window_scaling}, captures the SYN and
// SYN-ACK with an AF_PACKET socket, and checks that ParseTCPOptions sees
// exactly the options the sysctls enable and that EncodeSYNOptions
// reproduces Linux's option bytes exactly.
func TestLiveLinuxSYNOptions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN for a network namespace, CAP_NET_RAW for AF_PACKET)")
	}
	configs := []synOptionConfig{
		{true, true, true}, {false, true, true}, {true, false, true},
		{true, true, false}, {false, false, true}, {false, false, false},
	}
	type result struct {
		logs []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters a fresh namespace and is never unlocked, so
		// the runtime destroys it (and the namespace) when we return.
		runtime.LockOSThread()
		var r result
		r.err = runInPrivateNetns(&r.logs, configs)
		done <- r
	}()
	select {
	case r := <-done:
		for _, l := range r.logs {
			t.Log(l)
		}
		if errors.Is(r.err, errNoNetns) {
			t.Skipf("cannot create a network namespace: %v", r.err)
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
}

var errNoNetns = errors.New("unshare(CLONE_NEWNET) not permitted")

func runInPrivateNetns(logs *[]string, configs []synOptionConfig) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: %w", errNoNetns, err)
	}
	if err := setLinkUp("lo"); err != nil {
		return err
	}
	capfd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(capfd)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	if err := unix.Bind(capfd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		return fmt.Errorf("bind AF_PACKET: %w", err)
	}
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(capfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	for _, c := range configs {
		if err := checkSYNOptions(logs, capfd, c); err != nil {
			return fmt.Errorf("%+v: %w", c, err)
		}
	}
	return nil
}

func checkSYNOptions(logs *[]string, capfd int, c synOptionConfig) error {
	for name, on := range map[string]bool{"tcp_timestamps": c.timestamps, "tcp_sack": c.sack, "tcp_window_scaling": c.windowScaling} {
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/"+name, []byte(v), 0o644); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	conn, err := net.DialTimeout("tcp4", ln.Addr().String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()

	var syn, synack []byte
	buf := make([]byte, 65536)
	for i := 0; i < 100 && (syn == nil || synack == nil); i++ {
		n, from, err := unix.Recvfrom(capfd, buf, 0)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_OUTGOING {
			continue // loopback shows every packet twice
		}
		seg, ok := tcpOf(buf[:n])
		if !ok {
			continue
		}
		h := TCP(seg)
		switch {
		case h.Flags() == TCPFlagSyn && h.DstPort() == port:
			syn = append([]byte(nil), seg...)
		case h.Flags() == TCPFlagSyn|TCPFlagAck && h.SrcPort() == port:
			synack = append([]byte(nil), seg...)
		}
	}
	if syn == nil || synack == nil {
		return fmt.Errorf("did not capture SYN and SYN-ACK (syn %v, synack %v)", syn != nil, synack != nil)
	}
	for _, seg := range [][]byte{syn, synack} {
		h := TCP(seg)
		raw := h.Options()
		o := ParseTCPOptions(raw)
		if !o.HasMSS || o.HasTimestamps != c.timestamps || o.SACKPermitted != c.sack || (o.WindowScale >= 0) != c.windowScaling {
			return fmt.Errorf("%v options % x parse to %+v", h.Flags(), raw, o)
		}
		out := make([]byte, TCPMaxOptionsLen)
		n := EncodeSYNOptions(out, o)
		if !bytes.Equal(out[:n], raw) || TCPOptionsLen(o, true) != n {
			return fmt.Errorf("%v: EncodeSYNOptions % x, Linux sent % x", h.Flags(), out[:n], raw)
		}
		*logs = append(*logs, fmt.Sprintf("%+v %v options % x", c, h.Flags(), raw))
	}
	return nil
}

// tcpOf returns the TCP segment of an Ethernet frame carrying IPv4/TCP.
func tcpOf(frame []byte) ([]byte, bool) {
	e, err := ParseEthernet(frame)
	if err != nil || e.EtherType != EtherTypeIPv4 {
		return nil, false
	}
	ip, err := ParseIPv4(frame[EthernetLen:])
	if err != nil || ip.Protocol != ProtoTCP {
		return nil, false
	}
	seg := IPv4(frame[EthernetLen:]).Payload()
	if _, err := ParseTCP(seg); err != nil {
		return nil, false
	}
	return seg, true
}

func setLinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS %s: %w", name, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
