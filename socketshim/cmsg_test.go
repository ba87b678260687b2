package socketshim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider/none"
)

// TestCmsgLikeLinux runs scenario "cmsg" under the shim served by the
// userspace stack (provider none) and natively in a fresh namespace: the
// control messages recvmsg writes (IP_PKTINFO, IP_TTL, IP_TOS,
// IPV6_PKTINFO, IPV6_HOPLIMIT, SCM_TIMESTAMP), MSG_CTRUNC,
// msg_controllen and the untouched padding must be the same, as must a
// connected socket's ICMP error reported by recvmsg and SO_ERROR
// (issue 3).
func TestCmsgLikeLinux(t *testing.T) {
	requireRoot(t)
	want := runOracle(t, "cmsg")
	if want.err != nil || len(want.out) == 0 {
		t.Fatalf("oracle run: %v\nstdout %s\nstderr %s", want.err, want.stdout, want.stderr)
	}
	p, err := none.New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, _ := runShimmedOn(t, "cmsg", p)
	if got.err != nil {
		t.Errorf("shimmed run: %v\nstderr %s", got.err, got.stderr)
	}
	for _, k := range want.order {
		if got.out[k] != want.out[k] {
			t.Errorf("%s:\nnetprov %s\nlinux   %s", k, got.out[k], want.out[k])
		}
	}
	for _, k := range got.order {
		if _, ok := want.out[k]; !ok {
			t.Errorf("extra output under the shim: %s=%s", k, got.out[k])
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("oracle stdout:\n%s\nshim stdout:\n%s\nshim stderr:\n%s", want.stdout, got.stdout, got.stderr)
	}
}

func setInt(fd, level, name, v int) string { return en(unix.SetsockoptInt(fd, level, name, v)) }

// recvmsgRaw is recvmsg(2) with a control buffer of ctlLen bytes filled
// with 0xee (NULL msg_control when null), a source buffer if withName. It
// returns a line with everything recvmsg wrote; timestamps in the
// control messages are checked against [since, now] and zeroed.
func recvmsgRaw(fd int, ctlLen int, null, withName bool, since time.Time) string {
	waitFd(fd, unix.POLLIN)
	buf := make([]byte, 32)
	iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	ctl := bytes.Repeat([]byte{0xee}, max(ctlLen, 1))
	var name [28]byte
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Controllen: uint64(ctlLen)}
	if !null {
		msg.Control = &ctl[0]
	}
	if withName {
		msg.Name, msg.Namelen = &name[0], uint32(len(name))
	}
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return en(e)
	}
	used := ctl[:min(int(msg.Controllen), ctlLen)]
	stamps := checkStamps(used, since, time.Now())
	return fmt.Sprintf("%d/%q/namelen%d/flags%#x/ctl%d:%x%s", r, buf[:r], msg.Namelen, msg.Flags, msg.Controllen, ctl[:ctlLen], stamps)
}

// checkStamps zeroes the timestamp messages in b and reports any outside
// [since, now].
func checkStamps(b []byte, since, now time.Time) string {
	var bad string
	for len(b) >= 16 {
		l := int(binary.NativeEndian.Uint64(b))
		if l < 16 || l > len(b) {
			break
		}
		if binary.NativeEndian.Uint32(b[8:]) == unix.SOL_SOCKET {
			d := b[16:l]
			if len(d) == 16 {
				sec, frac := int64(binary.NativeEndian.Uint64(d)), int64(binary.NativeEndian.Uint64(d[8:]))
				ts := time.Unix(sec, frac*1000)
				if binary.NativeEndian.Uint32(b[12:]) == unix.SO_TIMESTAMPNS {
					ts = time.Unix(sec, frac)
				}
				if ts.Before(since.Truncate(time.Microsecond)) || ts.After(now) {
					bad = fmt.Sprintf("/stamp_out_of_range:%v", ts)
				}
			}
			clear(d)
		}
		adv := 16 + (l-16+7)&^7
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return bad
}

func sendDatagram(fd int, p, to []byte) {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
		uintptr(unsafe.Pointer(&to[0])), uintptr(len(to)))
	if e != 0 {
		kv("sendto_error", en(e))
	}
}

func scenarioCmsg() {
	// IPv4: TTL 9 and TOS 0x28 from the sender; IP_PKTINFO, IP_RECVTTL,
	// IP_RECVTOS and SO_TIMESTAMP on the receiver.
	r, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	s, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	kv("bind", en(sysSockaddr(unix.SYS_BIND, r, sin(localhost, 0))))
	rname, _, _ := getName(unix.SYS_GETSOCKNAME, r, 16)
	kv("set_pktinfo", setInt(r, unix.SOL_IP, unix.IP_PKTINFO, 1))
	kv("set_recvttl", setInt(r, unix.SOL_IP, unix.IP_RECVTTL, 1))
	kv("set_timestamp", setInt(r, unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1))
	kv("set_ttl", setInt(s, unix.SOL_IP, unix.IP_TTL, 9))
	kv("set_tos", setInt(s, unix.SOL_IP, unix.IP_TOS, 0x28))
	v, err := unix.GetsockoptInt(r, unix.SOL_IP, unix.IP_RECVTTL)
	kv("get_recvttl", fmt.Sprintf("%d/%s", v, en(err)))
	for i, c := range []struct {
		ctl            int
		null, withName bool
	}{
		{128, false, false}, {128, false, true}, {60, false, false}, {40, false, false},
		{20, false, false}, {0, false, false}, {64, true, false}, {0, true, true},
	} {
		since := time.Now()
		sendDatagram(s, []byte(fmt.Sprintf("v4-%d", i)), rname)
		kv(fmt.Sprintf("v4_recvmsg_%d", i), recvmsgRaw(r, c.ctl, c.null, c.withName, since))
	}
	// IP_RECVTOS turned on late: only the datagrams received after it.
	kv("set_recvtos", setInt(r, unix.SOL_IP, unix.IP_RECVTOS, 1))
	kv("set_timestamp_off", setInt(r, unix.SOL_SOCKET, unix.SO_TIMESTAMP, 0))
	sendDatagram(s, []byte("v4-tos"), rname)
	kv("v4_recvmsg_tos", recvmsgRaw(r, 128, false, false, time.Now()))
	// Options off again: recvmsg without a source runs natively.
	for _, o := range []int{unix.IP_PKTINFO, unix.IP_RECVTTL, unix.IP_RECVTOS} {
		setInt(r, unix.SOL_IP, o, 0)
	}
	sendDatagram(s, []byte("v4-plain"), rname)
	kv("v4_recvmsg_plain", recvmsgRaw(r, 64, false, false, time.Now()))

	// IPv6: hop limit 7, traffic class 0x28.
	r6, _ := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	s6, _ := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	lo6 := make([]byte, 28)
	lo6[0] = unix.AF_INET6
	lo6[23] = 1 // ::1
	kv("bind6", en(sysSockaddr(unix.SYS_BIND, r6, lo6)))
	r6name, _, _ := getName(unix.SYS_GETSOCKNAME, r6, 28)
	kv("set6_pktinfo", setInt(r6, unix.SOL_IPV6, unix.IPV6_RECVPKTINFO, 1))
	kv("set6_hoplimit", setInt(r6, unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT, 1))
	kv("set6_tclass", setInt(r6, unix.SOL_IPV6, unix.IPV6_RECVTCLASS, 1))
	kv("set6_hops", setInt(s6, unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, 7))
	kv("set6_tc", setInt(s6, unix.SOL_IPV6, unix.IPV6_TCLASS, 0x28))
	sendDatagram(s6, []byte("v6"), r6name)
	kv("v6_recvmsg", recvmsgRaw(r6, 128, false, true, time.Now()))
	sendDatagram(s6, []byte("v6-short"), r6name)
	kv("v6_recvmsg_short", recvmsgRaw(r6, 44, false, false, time.Now()))

	// A connected socket's ICMP port unreachable: a blocked recvmsg asking
	// for the source wakes with ECONNREFUSED; SO_ERROR is then clear.
	c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	kv("connect_closed", en(sysSockaddr(unix.SYS_CONNECT, c, sin(localhost, 9))))
	kv("send_closed", en(unix.Send(c, []byte("x"), 0)))
	var name [16]byte
	buf := make([]byte, 8)
	iov := unix.Iovec{Base: &buf[0], Len: 8}
	msg := unix.Msghdr{Name: &name[0], Namelen: 16, Iov: &iov, Iovlen: 1}
	_, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(c), uintptr(unsafe.Pointer(&msg)), 0)
	kv("recvmsg_refused", en(errnoErr(e)))
	v, err = unix.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
	kv("so_error_after", fmt.Sprintf("%d/%s", v, en(err)))
}
