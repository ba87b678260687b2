package socketshim

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Scenario programs: raw system calls, output as key=value lines that do
// not depend on ephemeral port numbers, so the shimmed run and the native
// run (the oracle) must print the same.

func kv(k string, v any) { fmt.Printf("%s=%v\n", k, v) }

func en(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return "error:" + err.Error()
}

func sin(ip [4]byte, port uint16) []byte {
	b := make([]byte, 16)
	b[0] = unix.AF_INET
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

var localhost = [4]byte{127, 0, 0, 1}

func sysSockaddr(nr uintptr, fd int, sa []byte) error {
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	return errnoErr(e)
}

// getName calls getsockname/getpeername with a buffer of size bytes.
func getName(nr uintptr, fd int, size int) ([]byte, uint32, error) {
	buf := make([]byte, max(size, 1))
	l := uint32(size)
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)))
	return buf[:size], l, errnoErr(e)
}

func portOf(sa []byte) uint16 { return binary.BigEndian.Uint16(sa[2:4]) }

func waitFd(fd int, ev int16) int16 {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: ev}}
	unix.Poll(pfd, 5000)
	return pfd[0].Revents
}

func runScenario(name string) int {
	// Under the shim this ioctl is served in the target's own namespace.
	if err := loopbackUp(); err != nil {
		fmt.Fprintln(os.Stderr, "lo up:", err)
		return 2
	}
	switch name {
	case "tcp":
		scenarioTCP()
	case "udp":
		scenarioUDP()
	case "sharing":
		scenarioSharing()
	case "sigpipe":
		scenarioSigpipe()
	case "intr":
		scenarioIntr()
	case "close":
		scenarioClose()
	case "rebind":
		scenarioRebind()
	case "connectclosed":
		scenarioConnectClosed()
	case "cmsg":
		scenarioCmsg() // cmsg_test.go
	case "ifpriv":
		scenarioIfpriv() // netadmin_test.go
	case "slowshutdown":
		scenarioSlowShutdown() // server_test.go
	case "iouring":
		var params [120]byte
		_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
		kv("io_uring_setup", en(errnoErr(e)))
	case "exit7":
		return 7
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", name)
		return 2
	}
	return 0
}

func scenarioTCP() {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	kv("socket", en(err))
	kv("bind_biglen", en(func() error {
		b := make([]byte, 200)
		return sysSockaddr(unix.SYS_BIND, lfd, b)
	}()))
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(lfd), 8, 16)
	kv("bind_badptr", en(errnoErr(e)))
	kv("bind", en(sysSockaddr(unix.SYS_BIND, lfd, sin(localhost, 0))))
	kv("listen", en(unix.Listen(lfd, 8)))
	name, nl, err := getName(unix.SYS_GETSOCKNAME, lfd, 16)
	lport := portOf(name)
	kv("getsockname", en(err))
	kv("getsockname_len", nl)
	kv("getsockname_port_set", lport != 0)
	_, _, e = unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(lfd), uintptr(unsafe.Pointer(&name[0])), 0)
	kv("getsockname_nulllen", en(errnoErr(e)))
	_, _, err = getName(unix.SYS_GETPEERNAME, lfd, 16)
	kv("getpeername_listener", en(err))

	unix.SetNonblock(lfd, true)
	_, _, err = unix.Accept4(lfd, 0)
	kv("accept_nonblock_empty", en(err))
	unix.SetNonblock(lfd, false)

	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	kv("client_socket", en(err))
	fl, _ := unix.FcntlInt(uintptr(cfd), unix.F_GETFL, 0)
	fdfl, _ := unix.FcntlInt(uintptr(cfd), unix.F_GETFD, 0)
	kv("client_nonblock", fl&unix.O_NONBLOCK != 0)
	kv("client_cloexec", fdfl&unix.FD_CLOEXEC != 0)
	err = sysSockaddr(unix.SYS_CONNECT, cfd, sin(localhost, lport))
	kv("connect_nonblock", en(err))
	kv("connect_pollout", waitFd(cfd, unix.POLLOUT)&unix.POLLOUT != 0)
	soerr, err := unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_ERROR)
	kv("so_error", fmt.Sprintf("%s/%d", en(err), soerr))
	kv("connect_again", en(sysSockaddr(unix.SYS_CONNECT, cfd, sin(localhost, lport))))

	var peer [16]byte
	plen := uint32(16)
	afd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&peer[0])), uintptr(unsafe.Pointer(&plen)), unix.SOCK_CLOEXEC, 0, 0)
	kv("accept4", en(errnoErr(e)))
	kv("accept4_peer", fmt.Sprintf("len%d/fam%d/%v", plen, peer[0], [4]byte(peer[4:8])))
	fl, _ = unix.FcntlInt(afd, unix.F_GETFL, 0)
	fdfl, _ = unix.FcntlInt(afd, unix.F_GETFD, 0)
	kv("accepted_nonblock", fl&unix.O_NONBLOCK != 0)
	kv("accepted_cloexec", fdfl&unix.FD_CLOEXEC != 0)

	// Truncated getpeername: 8 bytes copied, full length reported.
	pn, pl, err := getName(unix.SYS_GETPEERNAME, int(cfd), 8)
	kv("getpeername_short", fmt.Sprintf("%s/len%d/port_ok=%t", en(err), pl, portOf(pn) == lport))

	n, err := unix.Write(cfd, []byte("hello"))
	kv("write", fmt.Sprintf("%d/%s", n, en(err)))
	waitFd(int(afd), unix.POLLIN)
	v, err := unix.IoctlGetInt(int(afd), 0x541b)
	kv("fionread", fmt.Sprintf("%d/%s", v, en(err)))
	buf := make([]byte, 16)
	n, err = unix.Read(int(afd), buf)
	kv("read", fmt.Sprintf("%q/%s", buf[:max(n, 0)], en(err)))
	v, err = unix.IoctlGetInt(int(afd), 0x5411)
	kv("siocoutq", fmt.Sprintf("%d/%s", v, en(err)))

	kv("nodelay_set", en(unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)))
	v, err = unix.GetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	kv("nodelay_get", fmt.Sprintf("%d/%s", v, en(err)))
	v, _ = unix.GetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_TYPE)
	kv("so_type", v)
	var ov [4]byte
	ol := int32(-1)
	_, _, e = unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(cfd), unix.SOL_SOCKET, unix.SO_TYPE, uintptr(unsafe.Pointer(&ov[0])), uintptr(unsafe.Pointer(&ol)), 0)
	kv("getsockopt_neglen", en(errnoErr(e)))
	_, _, e = unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(cfd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 8, 4, 0)
	kv("setsockopt_badptr", en(errnoErr(e)))

	kv("shutdown_bad", en(unix.Shutdown(cfd, 7)))
	kv("shutdown_wr", en(unix.Shutdown(cfd, unix.SHUT_WR)))
	waitFd(int(afd), unix.POLLIN)
	n, err = unix.Read(int(afd), buf)
	kv("read_after_shutdown", fmt.Sprintf("%d/%s", n, en(err)))

	rfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("connect_refused", en(sysSockaddr(unix.SYS_CONNECT, rfd, sin(localhost, 1))))

	// Interface ioctls see the caller's own namespace (lo only here).
	ifr, _ := unix.NewIfreq("lo")
	err = unix.IoctlIfreq(cfd, unix.SIOCGIFINDEX, ifr)
	kv("siocgifindex_lo", fmt.Sprintf("%s/%d", en(err), ifr.Uint32()))
	ifc := make([]byte, 400)
	var ifconf struct {
		len int32
		_   int32
		buf uintptr
	}
	ifconf.len = int32(len(ifc))
	ifconf.buf = uintptr(unsafe.Pointer(&ifc[0]))
	_, _, e = unix.Syscall(unix.SYS_IOCTL, uintptr(cfd), unix.SIOCGIFCONF, uintptr(unsafe.Pointer(&ifconf)))
	runtime.KeepAlive(ifc)
	kv("siocgifconf", fmt.Sprintf("%s/len%d/%s", en(errnoErr(e)), ifconf.len, cstr(ifc[:16])))
	for _, fd := range []int{lfd, cfd, int(afd), rfd} {
		unix.Close(fd)
	}
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func scenarioUDP() {
	a, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	kv("socket_a", en(err))
	b, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	kv("socket_b", en(err))
	sysSockaddr(unix.SYS_BIND, a, sin(localhost, 0))
	sysSockaddr(unix.SYS_BIND, b, sin(localhost, 0))
	an, _, _ := getName(unix.SYS_GETSOCKNAME, a, 16)
	bn, _, _ := getName(unix.SYS_GETSOCKNAME, b, 16)
	aport, bport := portOf(an), portOf(bn)
	bsa := sin(localhost, bport)

	buf := make([]byte, 64)
	from := make([]byte, 32)
	recvfrom := func(fd int, p []byte, flags int, flen uint32) (int, uint32, error) {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags),
			uintptr(unsafe.Pointer(&from[0])), uintptr(unsafe.Pointer(&flen)))
		return int(n), flen, errnoErr(e)
	}
	sendto := func(fd int, p []byte, to []byte) (int, error) {
		n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&to[0])), uintptr(len(to)))
		return int(n), errnoErr(e)
	}
	_, _, err = recvfrom(b, buf, 0, 16)
	kv("recvfrom_empty", en(err))
	n, err := sendto(a, []byte("one"), bsa)
	kv("sendto", fmt.Sprintf("%d/%s", n, en(err)))
	waitFd(b, unix.POLLIN)
	n, fl, err := recvfrom(b, buf, 0, 16)
	kv("recvfrom", fmt.Sprintf("%d/%s/%q/len%d/port_ok=%t", n, en(err), buf[:max(n, 0)], fl, portOf(from) == aport))
	sendto(a, []byte("truncate-me"), bsa)
	waitFd(b, unix.POLLIN)
	n, fl, err = recvfrom(b, buf[:4], unix.MSG_TRUNC, 4)
	kv("recvfrom_trunc", fmt.Sprintf("%d/%s/%q/len%d", n, en(err), buf[:4], fl))

	// sendmsg with a name and two iovecs; recvmsg scatters.
	p1, p2 := []byte("ab"), []byte("cd")
	iov := []unix.Iovec{{Base: &p1[0], Len: 2}, {Base: &p2[0], Len: 2}}
	msg := unix.Msghdr{Name: &bsa[0], Namelen: 16, Iov: &iov[0], Iovlen: 2}
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(a), uintptr(unsafe.Pointer(&msg)), 0)
	kv("sendmsg", fmt.Sprintf("%d/%s", r, en(errnoErr(e))))
	waitFd(b, unix.POLLIN)
	q1, q2 := make([]byte, 3), make([]byte, 10)
	riov := []unix.Iovec{{Base: &q1[0], Len: 3}, {Base: &q2[0], Len: 10}}
	var name [32]byte
	rmsg := unix.Msghdr{Name: &name[0], Namelen: 32, Iov: &riov[0], Iovlen: 2, Controllen: 99, Flags: 0x7777}
	r, _, e = unix.Syscall(unix.SYS_RECVMSG, uintptr(b), uintptr(unsafe.Pointer(&rmsg)), 0)
	kv("recvmsg", fmt.Sprintf("%d/%s/%q+%q/namelen%d/ctl%d/flags%#x/port_ok=%t", r, en(errnoErr(e)), q1, q2[:1],
		rmsg.Namelen, rmsg.Controllen, rmsg.Flags, portOf(name[:]) == aport))
	sendto(a, []byte("0123456789"), bsa)
	waitFd(b, unix.POLLIN)
	rmsg = unix.Msghdr{Name: &name[0], Namelen: 8, Iov: &riov[0], Iovlen: 1}
	r, _, e = unix.Syscall(unix.SYS_RECVMSG, uintptr(b), uintptr(unsafe.Pointer(&rmsg)), 0)
	kv("recvmsg_trunc", fmt.Sprintf("%d/%s/%q/namelen%d/flags%#x", r, en(errnoErr(e)), q1, rmsg.Namelen, rmsg.Flags))

	sendto(a, []byte("peek"), bsa)
	waitFd(b, unix.POLLIN)
	n, _, err = recvfrom(b, buf, unix.MSG_PEEK, 16)
	kv("peek", fmt.Sprintf("%d/%s/%q", n, en(err), buf[:max(n, 0)]))
	n, _, err = recvfrom(b, buf, 0, 16)
	kv("after_peek", fmt.Sprintf("%d/%s/%q", n, en(err), buf[:max(n, 0)]))

	// sendmmsg / recvmmsg with names.
	type mmsghdr struct {
		hdr unix.Msghdr
		len uint32
		_   [4]byte
	}
	m1, m2 := []byte("m1"), []byte("m22")
	siov := []unix.Iovec{{Base: &m1[0], Len: 2}, {Base: &m2[0], Len: 3}}
	smsgs := []mmsghdr{
		{hdr: unix.Msghdr{Name: &bsa[0], Namelen: 16, Iov: &siov[0], Iovlen: 1}},
		{hdr: unix.Msghdr{Name: &bsa[0], Namelen: 16, Iov: &siov[1], Iovlen: 1}},
	}
	r, _, e = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(a), uintptr(unsafe.Pointer(&smsgs[0])), 2, 0, 0, 0)
	kv("sendmmsg", fmt.Sprintf("%d/%s/%d,%d", r, en(errnoErr(e)), smsgs[0].len, smsgs[1].len))
	time.Sleep(20 * time.Millisecond) // both datagrams queued (loopback is synchronous anyway)
	r1, r2 := make([]byte, 8), make([]byte, 8)
	var n1, n2 [32]byte
	rv := []unix.Iovec{{Base: &r1[0], Len: 8}, {Base: &r2[0], Len: 8}}
	rmsgs := []mmsghdr{
		{hdr: unix.Msghdr{Name: &n1[0], Namelen: 32, Iov: &rv[0], Iovlen: 1}},
		{hdr: unix.Msghdr{Name: &n2[0], Namelen: 32, Iov: &rv[1], Iovlen: 1}},
	}
	r, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(b), uintptr(unsafe.Pointer(&rmsgs[0])), 2, unix.MSG_WAITFORONE, 0, 0)
	kv("recvmmsg", fmt.Sprintf("%d/%s/%d:%q,%d:%q/namelen%d,%d", r, en(errnoErr(e)), rmsgs[0].len, r1[:rmsgs[0].len],
		rmsgs[1].len, r2[:rmsgs[1].len], rmsgs[0].hdr.Namelen, rmsgs[1].hdr.Namelen))

	one := []byte("x")
	var dummy [16]byte
	_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(a), uintptr(unsafe.Pointer(&one[0])), 1, 0, uintptr(unsafe.Pointer(&dummy[0])), 0)
	kv("sendto_zero_addrlen", en(errnoErr(e)))
	_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(a), uintptr(unsafe.Pointer(&one[0])), 1, 0, uintptr(unsafe.Pointer(&dummy[0])), 200)
	kv("sendto_big_addrlen", en(errnoErr(e)))

	kv("connect_udp", en(sysSockaddr(unix.SYS_CONNECT, a, bsa)))
	n, err = unix.Write(a, []byte("conn"))
	kv("write_connected", fmt.Sprintf("%d/%s", n, en(err)))
	waitFd(b, unix.POLLIN)
	n, fl, err = recvfrom(b, buf, 0, 16)
	kv("recv_connected", fmt.Sprintf("%d/%s/%q/len%d/port_ok=%t", n, en(err), buf[:max(n, 0)], fl, portOf(from) == aport))

	// sendmsg without a name but with an IP-level control message, on the
	// connected socket: Linux sends it from the given source. (It must
	// not reach a UDP conduit's kernel socket, which would send it in the
	// conduit namespace, where its own end drops it.)
	pi := unix.Inet4Pktinfo{Spec_dst: localhost}
	ctl := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	ch.Level, ch.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	ch.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	copy(ctl[unix.CmsgLen(0):], unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo))
	pk := []byte("pkt")
	piov := []unix.Iovec{{Base: &pk[0], Len: 3}}
	pmsg := unix.Msghdr{Iov: &piov[0], Iovlen: 1, Control: &ctl[0], Controllen: uint64(len(ctl))}
	r, _, e = unix.Syscall(unix.SYS_SENDMSG, uintptr(a), uintptr(unsafe.Pointer(&pmsg)), 0)
	kv("sendmsg_pktinfo_connected", fmt.Sprintf("%d/%s", r, en(errnoErr(e))))
	waitFd(b, unix.POLLIN)
	n, _, err = recvfrom(b, buf, unix.MSG_DONTWAIT, 16)
	kv("recv_pktinfo", fmt.Sprintf("%d/%s/%q", n, en(err), buf[:max(n, 0)]))

	// IPv6 loopback.
	c6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	kv("socket6", en(err))
	sa6 := make([]byte, 28)
	sa6[0] = unix.AF_INET6
	sa6[23] = 1 // ::1
	kv("bind6", en(sysSockaddr(unix.SYS_BIND, c6, sa6)))
	n6, l6, _ := getName(unix.SYS_GETSOCKNAME, c6, 28)
	copy(sa6[2:4], n6[2:4])
	n, err = sendto(c6, []byte("six"), sa6)
	kv("sendto6", fmt.Sprintf("%d/%s/len%d", n, en(err), l6))
	waitFd(c6, unix.POLLIN)
	n, fl, err = recvfrom(c6, buf, 0, 32)
	kv("recvfrom6", fmt.Sprintf("%d/%s/%q/len%d/fam%d", n, en(err), buf[:max(n, 0)], fl, from[0]))
}

func scenarioSharing() {
	lfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	sysSockaddr(unix.SYS_BIND, lfd, sin(localhost, 0))
	unix.Listen(lfd, 8)
	name, _, _ := getName(unix.SYS_GETSOCKNAME, lfd, 16)
	lport := portOf(name)

	d, err := unix.Dup(lfd)
	kv("dup", en(err))
	dn, _, err := getName(unix.SYS_GETSOCKNAME, d, 16)
	kv("getsockname_dup", fmt.Sprintf("%s/same=%t", en(err), portOf(dn) == lport))

	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	kv("socketpair_unix", en(err))
	dom, _ := unix.GetsockoptInt(sp[0], unix.SOL_SOCKET, unix.SO_DOMAIN)
	kv("socketpair_domain", dom)
	err = unix.Sendmsg(sp[0], []byte("f"), unix.UnixRights(lfd), nil, 0)
	kv("scm_rights_send", en(err))
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sp[1], make([]byte, 1), oob, 0)
	kv("scm_rights_recv", en(err))
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	passed := -1
	if len(msgs) == 1 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
			passed = fds[0]
		}
	}
	pn, _, err := getName(unix.SYS_GETSOCKNAME, passed, 16)
	kv("getsockname_passed", fmt.Sprintf("%s/same=%t", en(err), err == nil && portOf(pn) == lport))

	// A child process gets the listener as fd 3 and connects to it; both
	// are served through the same filter (inherited across fork/exec).
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(withoutEnv(os.Environ(), testRoleEnv), testRoleEnv+"=child", "NETPROV_SHIM_TEST_PORT="+strconv.Itoa(int(lport)))
	cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(d), "listener")}
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	kv("child_run", en(cmd.Run()))
	afd, _, err := unix.Accept(lfd)
	kv("accept_from_child", en(err))
	buf := make([]byte, 32)
	n, _ := unix.Read(afd, buf)
	kv("child_data", fmt.Sprintf("%q", buf[:max(n, 0)]))
}

func runChild(scenario string) int {
	if scenario == "ifpriv" {
		return childIfpriv()
	}
	port, _ := strconv.Atoi(os.Getenv("NETPROV_SHIM_TEST_PORT"))
	name, _, err := getName(unix.SYS_GETSOCKNAME, 3, 16)
	kv("child_getsockname_inherited", fmt.Sprintf("%s/same=%t", en(err), err == nil && int(portOf(name)) == port))
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("child_socket", en(err))
	kv("child_connect", en(sysSockaddr(unix.SYS_CONNECT, c, sin(localhost, uint16(port)))))
	n, err := unix.Write(c, []byte("from-child"))
	kv("child_write", fmt.Sprintf("%d/%s", n, en(err)))
	return 0
}

func scenarioSigpipe() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, unix.SIGPIPE)
	lfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	sysSockaddr(unix.SYS_BIND, lfd, sin(localhost, 0))
	unix.Listen(lfd, 8)
	name, _, _ := getName(unix.SYS_GETSOCKNAME, lfd, 16)
	cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("connect", en(sysSockaddr(unix.SYS_CONNECT, cfd, name)))
	x := []byte("x")
	send := func(flags int) error {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(cfd), uintptr(unsafe.Pointer(&x[0])), 1, uintptr(flags),
			uintptr(unsafe.Pointer(&name[0])), 16)
		return errnoErr(e)
	}
	kv("send_open", en(send(0)))
	kv("shutdown_wr", en(unix.Shutdown(cfd, unix.SHUT_WR)))
	kv("send_after_shutdown", en(send(0))) // EPIPE + SIGPIPE
	count := func() int {
		got := 0
		for {
			select {
			case <-sig:
				got++
			case <-time.After(300 * time.Millisecond):
				return got
			}
		}
	}
	kv("sigpipes", count())
	kv("send_nosignal", en(send(unix.MSG_NOSIGNAL)))
	kv("sigpipes_nosignal", count())
}

func scenarioIntr() {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, unix.SIGUSR1)
	lfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	sysSockaddr(unix.SYS_BIND, lfd, sin(localhost, 0))
	unix.Listen(lfd, 8)
	name, _, _ := getName(unix.SYS_GETSOCKNAME, lfd, 16)
	tidc := make(chan int)
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tidc <- unix.Gettid()
		_, _, err := unix.Accept(lfd)
		res <- err
	}()
	tid := <-tidc
	time.Sleep(200 * time.Millisecond) // let it block in accept
	unix.Tgkill(unix.Getpid(), tid, unix.SIGUSR1)
	select {
	case <-usr1:
		kv("signal_delivered", true)
	case <-time.After(5 * time.Second):
		kv("signal_delivered", false)
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-res:
		kv("accept_after_signal_only", en(err))
	default:
		kv("accept_still_blocked", true) // SA_RESTART: restarted, still waiting
	}
	cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("connect", en(sysSockaddr(unix.SYS_CONNECT, cfd, name)))
	select {
	case err := <-res:
		kv("accept", en(err))
	case <-time.After(5 * time.Second):
		kv("accept", "timeout")
	}
}

// scenarioClose: closing a listener or a bound UDP socket frees its port
// (the shim finds the close by sweeping; Linux at once).
func scenarioClose() {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
		fd, _ := unix.Socket(unix.AF_INET, typ, 0)
		sysSockaddr(unix.SYS_BIND, fd, sin(localhost, 0))
		if typ == unix.SOCK_STREAM {
			unix.Listen(fd, 4)
		}
		name, _, _ := getName(unix.SYS_GETSOCKNAME, fd, 16)
		fd2, _ := unix.Socket(unix.AF_INET, typ, 0)
		kv(fmt.Sprintf("type%d_bind_while_open", typ), en(sysSockaddr(unix.SYS_BIND, fd2, name)))
		unix.Close(fd)
		var err error
		// The Server frees a closed socket at its next sweep (100 ms in
		// tests); on a loaded CI machine that can take a while. Bounded: 15 s.
		for i := 0; i < 150; i++ {
			if err = sysSockaddr(unix.SYS_BIND, fd2, name); err != unix.EADDRINUSE {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		kv(fmt.Sprintf("type%d_bind_after_close", typ), en(err))
	}
}

// scenarioRebind binds a closed socket's port again at once: no wait for
// the periodic sweep.
func scenarioRebind() {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
		fd, _ := unix.Socket(unix.AF_INET, typ, 0)
		sysSockaddr(unix.SYS_BIND, fd, sin(localhost, 0))
		if typ == unix.SOCK_STREAM {
			unix.Listen(fd, 4)
		}
		name, _, _ := getName(unix.SYS_GETSOCKNAME, fd, 16)
		unix.Close(fd)
		fd2, _ := unix.Socket(unix.AF_INET, typ, 0)
		kv(fmt.Sprintf("type%d_bind_at_once", typ), en(sysSockaddr(unix.SYS_BIND, fd2, name)))
		if typ == unix.SOCK_STREAM {
			kv("listen_at_once", en(unix.Listen(fd2, 4)))
		}
		unix.Close(fd2)
	}
}

// scenarioConnectClosed connects to a listener's port right after the
// listener was closed, with no wait for the periodic sweep.
func scenarioConnectClosed() {
	l, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	sysSockaddr(unix.SYS_BIND, l, sin(localhost, 0))
	kv("listen", en(unix.Listen(l, 4)))
	name, _, _ := getName(unix.SYS_GETSOCKNAME, l, 16)
	c, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("connect_open", en(sysSockaddr(unix.SYS_CONNECT, c, name)))
	unix.Close(c)
	unix.Close(l)
	c2, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	kv("connect_after_close", en(sysSockaddr(unix.SYS_CONNECT, c2, name)))
	unix.Close(c2)
}
