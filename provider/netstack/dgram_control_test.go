package netstack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/stack/socket"
)

// The control-message tests run the same steps on kernel sockets in a
// fresh network namespace (the oracle) and on provider sockets, and
// compare recvmsg's results byte for byte: the return value, msg_flags,
// msg_controllen and the control buffer (pre-filled with 0xee, so padding
// Linux leaves alone must stay as it was). Receive timestamps are checked
// to fall between the send and the receive, then zeroed on both sides.

// dgramAPI is one side of the comparison. A handle names a socket.
type dgramAPI interface {
	socket(t *testing.T, family, proto int) int
	setsockopt(h, level, name int, val []byte) error
	getsockopt(h, level, name int) ([]byte, error)
	bind(t *testing.T, h int, sa []byte)
	sockname(t *testing.T, h int) []byte
	sendto(t *testing.T, h int, p, to []byte)
	// recvmsg waits (bounded) for a datagram and receives it with a
	// control buffer of len(control) bytes (nullControl: msg_control is
	// NULL, msg_controllen len(control)).
	recvmsg(t *testing.T, h int, p, control []byte, nullControl bool) (n, ctlLen, flags int, err error)
}

// kernelAPI: kernel sockets created in the namespace of nsThread.
type kernelAPI struct {
	mk chan func()
}

// newKernelAPI starts a goroutine whose locked thread moved to a new
// network namespace with lo up and ping sockets allowed; it never unlocks,
// so the thread dies with the goroutine at cleanup.
func newKernelAPI(t *testing.T) *kernelAPI {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the kernel oracle runs in a new network namespace")
	}
	k := &kernelAPI{mk: make(chan func())}
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := loUp(); err != nil {
			ready <- err
			return
		}
		// /proc/thread-self/... resolves in this thread's namespace.
		if err := os.WriteFile("/proc/thread-self/root/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0); err != nil {
			ready <- fmt.Errorf("ping_group_range: %w", err)
			return
		}
		ready <- nil
		for {
			select {
			case f := <-k.mk:
				f()
			case <-done:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Skipf("kernel oracle namespace: %v", err)
	}
	t.Cleanup(func() { close(done) })
	return k
}

func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

func (k *kernelAPI) socket(t *testing.T, family, proto int) int {
	t.Helper()
	var fd int
	var err error
	ch := make(chan struct{})
	k.mk <- func() {
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		close(ch)
	}
	<-ch
	if err != nil {
		t.Fatalf("kernel socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func (k *kernelAPI) setsockopt(h, level, name int, val []byte) error {
	var p unsafe.Pointer
	if len(val) > 0 {
		p = unsafe.Pointer(&val[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(h), uintptr(level), uintptr(name), uintptr(p), uintptr(len(val)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func (k *kernelAPI) getsockopt(h, level, name int) ([]byte, error) {
	buf := make([]byte, 64)
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(h), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return nil, e
	}
	return buf[:l], nil
}

func (k *kernelAPI) bind(t *testing.T, h int, sa []byte) {
	t.Helper()
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(h), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if e != 0 {
		t.Fatalf("kernel bind: %v", e)
	}
}

func (k *kernelAPI) sockname(t *testing.T, h int) []byte {
	t.Helper()
	buf := make([]byte, 128)
	l := uint32(len(buf))
	_, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(h), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		t.Fatalf("kernel getsockname: %v", e)
	}
	return buf[:l]
}

func (k *kernelAPI) sendto(t *testing.T, h int, p, to []byte) {
	t.Helper()
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(h), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
		uintptr(unsafe.Pointer(&to[0])), uintptr(len(to)))
	if e != 0 {
		t.Fatalf("kernel sendto: %v", e)
	}
}

func (k *kernelAPI) recvmsg(t *testing.T, h int, p, control []byte, nullControl bool) (int, int, int, error) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(h), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, int(waitLimit/time.Millisecond)); n != 1 || err != nil {
		t.Fatalf("kernel poll for a datagram: %d, %v", n, err)
	}
	iov := unix.Iovec{Base: &p[0], Len: uint64(len(p))}
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Controllen: uint64(len(control))}
	if !nullControl && len(control) > 0 {
		msg.Control = &control[0]
	}
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(h), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// providerAPI: provider sockets of one netstack provider.
type providerAPI struct {
	p     provider.Provider
	socks []provider.Socket
}

func (a *providerAPI) socket(t *testing.T, family, proto int) int {
	t.Helper()
	s, err := a.p.Socket(family, unix.SOCK_DGRAM, proto)
	if err != nil {
		t.Fatalf("provider socket: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	a.socks = append(a.socks, s)
	return len(a.socks) - 1
}

func (a *providerAPI) setsockopt(h, level, name int, val []byte) error {
	return a.socks[h].SetSockOpt(level, name, val)
}

func (a *providerAPI) getsockopt(h, level, name int) ([]byte, error) {
	buf := make([]byte, 64)
	n, err := a.socks[h].GetSockOpt(level, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (a *providerAPI) bind(t *testing.T, h int, sa []byte) {
	t.Helper()
	if err := a.socks[h].Bind(sa); err != nil {
		t.Fatalf("provider bind: %v", err)
	}
}

func (a *providerAPI) sockname(t *testing.T, h int) []byte {
	t.Helper()
	sa, err := a.socks[h].GetSockName()
	if err != nil {
		t.Fatalf("provider getsockname: %v", err)
	}
	return sa
}

func (a *providerAPI) sendto(t *testing.T, h int, p, to []byte) {
	t.Helper()
	if _, err := a.socks[h].SendTo(context.Background(), p, 0, to, true); err != nil {
		t.Fatalf("provider sendto: %v", err)
	}
}

func (a *providerAPI) recvmsg(t *testing.T, h int, p, control []byte, nullControl bool) (int, int, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if nullControl {
		control = nil
	}
	n, _, ctlLen, flags, err := a.socks[h].(*netstack.Socket).RecvMsg(ctx, p, control, true, 0, false)
	return n, ctlLen, flags, err
}

// cmsgCase is one receive: options on the receiving socket, the sender's
// TTL/TOS, and the control buffer sizes to try (one datagram each).
type cmsgCase struct {
	name string
	// family and proto of both sockets; proto ICMP sends an echo request
	// to the receiver's own address and receives the reply.
	family, proto int
	// mapped: an AF_INET6 receiver gets an IPv4 datagram (v4-mapped).
	mapped bool
	opts   []sockOpt
	// late options are set after the datagram was queued (the packet
	// info recorded at enqueue time differs).
	late  []sockOpt
	sizes []int // control buffer sizes; -1: NULL msg_control with 64
}

type sockOpt struct {
	level, name int
	val         []byte
}

func intVal(v int) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(int32(v)))
	return b
}

func on(level, name int) sockOpt { return sockOpt{level, name, intVal(1)} }

var cmsgCases = []cmsgCase{
	{name: "udp4-ttl", family: unix.AF_INET, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_IP, unix.IP_RECVTTL)}, sizes: []int{64, 20, 16, 8, 0, -1}},
	{name: "udp4-all", family: unix.AF_INET, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_IP, unix.IP_PKTINFO), on(unix.SOL_IP, unix.IP_RECVTTL),
			{unix.SOL_IP, unix.IP_RECVTOS, []byte{1}}, on(unix.SOL_SOCKET, unix.SO_TIMESTAMP)},
		sizes: []int{256, 112, 104, 100, 90, 60, 33, 32, 31, 16, 15}},
	{name: "udp4-tsns", family: unix.AF_INET, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS), on(unix.SOL_IP, unix.IP_RECVTOS)}, sizes: []int{128, 40}},
	{name: "udp4-tsnew", family: unix.AF_INET, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_SOCKET, unix.SO_TIMESTAMP_NEW)}, sizes: []int{128}},
	{name: "udp6-all", family: unix.AF_INET6, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_IPV6, unix.IPV6_RECVPKTINFO), on(unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT),
			on(unix.SOL_IPV6, unix.IPV6_RECVTCLASS), on(unix.SOL_IP, unix.IP_RECVTTL)},
		sizes: []int{256, 60, 40, 39}},
	{name: "udp6-mapped", family: unix.AF_INET6, proto: unix.IPPROTO_UDP, mapped: true,
		opts: []sockOpt{on(unix.SOL_IPV6, unix.IPV6_RECVPKTINFO), on(unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT),
			on(unix.SOL_IP, unix.IP_PKTINFO), on(unix.SOL_IP, unix.IP_RECVTTL), on(unix.SOL_IP, unix.IP_RECVTOS)},
		sizes: []int{256}},
	{name: "udp4-late-pktinfo", family: unix.AF_INET, proto: unix.IPPROTO_UDP,
		opts: []sockOpt{on(unix.SOL_IP, unix.IP_RECVTTL)}, late: []sockOpt{on(unix.SOL_IP, unix.IP_PKTINFO), on(unix.SOL_IP, unix.IP_RECVTOS)},
		sizes: []int{256}},
	{name: "udp6-late-pktinfo", family: unix.AF_INET6, proto: unix.IPPROTO_UDP,
		late: []sockOpt{on(unix.SOL_IPV6, unix.IPV6_RECVPKTINFO)}, sizes: []int{256}},
	{name: "ping4", family: unix.AF_INET, proto: unix.IPPROTO_ICMP,
		opts:  []sockOpt{on(unix.SOL_IP, unix.IP_RECVTTL), on(unix.SOL_SOCKET, unix.SO_TIMESTAMP), on(unix.SOL_IP, unix.IP_PKTINFO)},
		sizes: []int{256, 40}},
	{name: "ping6", family: unix.AF_INET6, proto: unix.IPPROTO_ICMPV6,
		opts:  []sockOpt{on(unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT), on(unix.SOL_IPV6, unix.IPV6_RECVPKTINFO)},
		sizes: []int{256}},
}

// recvOutcome is what one recvmsg returned.
type recvOutcome struct {
	n, ctlLen, flags int
	err              error
	data             string
	control          []byte
}

func (o recvOutcome) String() string {
	return fmt.Sprintf("ret=%d err=%v flags=%#x controllen=%d data=%q control=%x", o.n, o.err, o.flags, o.ctlLen, o.data, o.control)
}

// runCmsgCase runs c on api and returns one outcome per control size.
func runCmsgCase(t *testing.T, api dgramAPI, c cmsgCase) []recvOutcome {
	t.Helper()
	loop := netip.MustParseAddr("127.0.0.1")
	if c.family == unix.AF_INET6 && !c.mapped {
		loop = netip.IPv6Loopback()
	}
	bindAddr := loop
	if c.mapped {
		bindAddr = netip.IPv6Unspecified()
	}
	rcv := api.socket(t, c.family, c.proto)
	for _, o := range c.opts {
		if err := api.setsockopt(rcv, o.level, o.name, o.val); err != nil {
			t.Fatalf("setsockopt(%d, %d): %v", o.level, o.name, err)
		}
	}
	snd := rcv
	if c.proto == unix.IPPROTO_UDP {
		api.bind(t, rcv, socket.FormatSockaddr(c.family, netip.AddrPortFrom(bindAddr, 0)))
		sndFamily := c.family
		if c.mapped {
			sndFamily = unix.AF_INET
		}
		snd = api.socket(t, sndFamily, c.proto)
	}
	// The datagrams carry TTL 7 (hop limit 7) and TOS 0x28 (ping: the
	// reply's TTL is the responder's default).
	if c.family == unix.AF_INET || c.mapped {
		if c.proto == unix.IPPROTO_UDP {
			api.setsockopt(snd, unix.SOL_IP, unix.IP_TTL, intVal(7))
		}
		api.setsockopt(snd, unix.SOL_IP, unix.IP_TOS, intVal(0x28))
	} else {
		if c.proto == unix.IPPROTO_UDP {
			api.setsockopt(snd, unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, intVal(7))
		}
		api.setsockopt(snd, unix.SOL_IPV6, unix.IPV6_TCLASS, intVal(0x28))
	}
	var to []byte
	if c.proto == unix.IPPROTO_UDP {
		sa := api.sockname(t, rcv)
		port := binary.BigEndian.Uint16(sa[2:4])
		to = socket.FormatSockaddr(c.family, netip.AddrPortFrom(loop, port))
		if c.mapped {
			to = socket.FormatSockaddr(unix.AF_INET, netip.AddrPortFrom(loop, port))
		}
	} else {
		to = socket.FormatSockaddr(c.family, netip.AddrPortFrom(loop, 0))
	}
	var out []recvOutcome
	for i, size := range c.sizes {
		payload := []byte(fmt.Sprintf("datagram %d", i))
		if c.proto != unix.IPPROTO_UDP {
			typ := byte(8)
			if c.family == unix.AF_INET6 {
				typ = 128
			}
			// echo request; the kernel sets the identifier and checksum.
			payload = append([]byte{typ, 0, 0, 0, 0, 0, 0, byte(i)}, payload...)
		}
		before := time.Now()
		api.sendto(t, snd, payload, to)
		if len(c.late) > 0 {
			waitQueued(t, api, rcv)
			for _, o := range c.late {
				if err := api.setsockopt(rcv, o.level, o.name, o.val); err != nil {
					t.Fatalf("setsockopt(%d, %d): %v", o.level, o.name, err)
				}
			}
		}
		nullControl := size < 0
		if nullControl {
			size = 64
		}
		control := bytes.Repeat([]byte{0xee}, size)
		p := make([]byte, 256)
		n, ctlLen, flags, err := api.recvmsg(t, rcv, p, control, nullControl)
		after := time.Now()
		o := recvOutcome{n: n, ctlLen: ctlLen, flags: flags, err: err, control: control}
		if err == nil {
			o.data = string(p[:n])
			if c.proto != unix.IPPROTO_UDP {
				o.data = string(p[8:n]) // the identifier and checksum differ
				o.data = fmt.Sprintf("type%d:%s", p[0], o.data)
			}
		}
		if !nullControl {
			maskTimestamps(t, control[:min(ctlLen, len(control))], before, after)
		}
		out = append(out, o)
	}
	return out
}

// waitQueued waits (bounded) until h has a datagram queued.
func waitQueued(t *testing.T, api dgramAPI, h int) {
	t.Helper()
	switch a := api.(type) {
	case *kernelAPI:
		pfd := []unix.PollFd{{Fd: int32(h), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(waitLimit/time.Millisecond)); n != 1 || err != nil {
			t.Fatalf("kernel poll for a datagram: %d, %v", n, err)
		}
	case *providerAPI:
		pollUntil(t, int(a.socks[h].Conduit().Fd()), unix.POLLIN, unix.POLLIN)
	}
}

// maskTimestamps checks that every receive timestamp in the control
// messages is between before and after and zeroes it.
func maskTimestamps(t *testing.T, b []byte, before, after time.Time) {
	t.Helper()
	for len(b) >= 16 {
		l := int(binary.NativeEndian.Uint64(b[0:8]))
		level, typ := int(int32(binary.NativeEndian.Uint32(b[8:12]))), int(int32(binary.NativeEndian.Uint32(b[12:16])))
		if l < 16 || l > len(b) {
			return
		}
		data := b[16:l]
		if level == unix.SOL_SOCKET && len(data) < 16 {
			clear(data) // cut by MSG_CTRUNC: the part of a time there is
		}
		if level == unix.SOL_SOCKET && len(data) == 16 {
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			frac := int64(binary.NativeEndian.Uint64(data[8:16]))
			var ts time.Time
			switch typ {
			case unix.SO_TIMESTAMP, unix.SO_TIMESTAMP_NEW:
				ts = time.Unix(sec, frac*1000)
			default:
				ts = time.Unix(sec, frac)
			}
			if ts.Before(before.Truncate(time.Microsecond)) || ts.After(after) {
				t.Errorf("receive timestamp %v not between the send (%v) and the receive (%v)", ts, before, after)
			}
			clear(data)
		}
		adv := 16 + (l-16+7)&^7
		if adv > len(b) {
			return
		}
		b = b[adv:]
	}
}

// TestDatagramControlLikeLinux compares recvmsg's control messages,
// MSG_CTRUNC and msg_controllen for UDP and ICMP echo sockets with the
// kernel's (issue 3).
func TestDatagramControlLikeLinux(t *testing.T) {
	k := newKernelAPI(t)
	p, _ := newProvider(t)
	pa := &providerAPI{p: p}
	for _, c := range cmsgCases {
		t.Run(c.name, func(t *testing.T) {
			want := runCmsgCase(t, k, c)
			got := runCmsgCase(t, pa, c)
			for i := range want {
				if w, g := want[i].String(), got[i].String(); w != g {
					t.Errorf("control buffer %d:\nnetstack %s\nlinux    %s", c.sizes[i], g, w)
				}
			}
		})
	}
}

// TestDatagramRecvOptionsLikeLinux: setsockopt/getsockopt of the receive
// options round-trip as on Linux, the timestamp options' interplay
// included.
func TestDatagramRecvOptionsLikeLinux(t *testing.T) {
	k := newKernelAPI(t)
	p, _ := newProvider(t)
	pa := &providerAPI{p: p}
	type step struct {
		set       sockOpt
		getLevels [][2]int
	}
	ts := [][2]int{{unix.SOL_SOCKET, unix.SO_TIMESTAMP}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMP_NEW}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW}}
	ip := [][2]int{{unix.SOL_IP, unix.IP_PKTINFO}, {unix.SOL_IP, unix.IP_RECVTTL}, {unix.SOL_IP, unix.IP_RECVTOS},
		{unix.SOL_IP, unix.IP_RECVOPTS}, {unix.SOL_IP, unix.IP_RETOPTS}}
	ip6 := [][2]int{{unix.SOL_IPV6, unix.IPV6_RECVPKTINFO}, {unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT}, {unix.SOL_IPV6, unix.IPV6_RECVTCLASS}}
	steps := []step{
		{on(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS), ts},
		{on(unix.SOL_SOCKET, unix.SO_TIMESTAMP), ts},
		{on(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW), ts},
		{sockOpt{unix.SOL_SOCKET, unix.SO_TIMESTAMP, intVal(0)}, ts},
		{on(unix.SOL_SOCKET, unix.SO_TIMESTAMP_NEW), ts},
		{sockOpt{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, []byte{1}}, ts}, // short: EINVAL
		{sockOpt{unix.SOL_IP, unix.IP_RECVTTL, []byte{1}}, ip},
		{on(unix.SOL_IP, unix.IP_PKTINFO), ip},
		{sockOpt{unix.SOL_IP, unix.IP_RECVTOS, intVal(5)}, ip},
		{on(unix.SOL_IP, unix.IP_RETOPTS), ip},
		{sockOpt{unix.SOL_IP, unix.IP_RECVTTL, intVal(0)}, ip},
		{sockOpt{unix.SOL_IP, unix.IP_PKTINFO, nil}, ip}, // empty: EINVAL
		{on(unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT), append(ip6, ip...)},
		{sockOpt{unix.SOL_IPV6, unix.IPV6_RECVPKTINFO, []byte{1}}, ip6}, // short: EINVAL
		{on(unix.SOL_IPV6, unix.IPV6_RECVTCLASS), ip6},
	}
	for _, sock := range []struct {
		name          string
		family, proto int
	}{
		{"udp4", unix.AF_INET, unix.IPPROTO_UDP}, {"udp6", unix.AF_INET6, unix.IPPROTO_UDP},
		{"ping4", unix.AF_INET, unix.IPPROTO_ICMP}, {"ping6", unix.AF_INET6, unix.IPPROTO_ICMPV6},
	} {
		t.Run(sock.name, func(t *testing.T) {
			run := func(api dgramAPI) []string {
				h := api.socket(t, sock.family, sock.proto)
				var out []string
				for _, s := range steps {
					err := api.setsockopt(h, s.set.level, s.set.name, s.set.val)
					out = append(out, fmt.Sprintf("set(%d,%d,%x)=%v", s.set.level, s.set.name, s.set.val, err))
					for _, g := range s.getLevels {
						v, err := api.getsockopt(h, g[0], g[1])
						out = append(out, fmt.Sprintf("  get(%d,%d)=%x,%v", g[0], g[1], v, err))
					}
				}
				return out
			}
			want, got := run(k), run(pa)
			for i := range want {
				if testing.Verbose() {
					t.Logf("linux %s", want[i])
				}
				if want[i] != got[i] {
					t.Errorf("netstack %s, linux %s", got[i], want[i])
				}
			}
		})
	}
}
