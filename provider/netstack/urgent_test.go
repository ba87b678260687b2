package netstack_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

// Differential tests of TCP urgent data (MSG_OOB): every scenario runs on
// a kernel TCP pair on loopback (the oracle) and on a netprov pair (two
// provider sockets connected through the stack, each seen through its
// conduit as the sandboxed program sees it), and the observations are
// compared. Spec: 43 (urgent pointer of the segments in urgent mode: the
// last byte of a send(MSG_OOB) is the urgent byte), 95 (receive path:
// non-blocking recv gives EAGAIN), and §4 "Urgent data (tcp_urg)".

// oobEnd is one end of a pair as a program uses it: native calls on fd;
// for netprov, the trapped calls (ioctl, setsockopt, getsockopt) go to
// the provider as the shim sends them.
type oobEnd struct {
	fd   int
	sock provider.Socket // nil: a kernel socket
}

// ioctlConduit is netstack.Socket's IoctlWithConduit (what the shim calls
// with its copy of the target's fd).
type ioctlConduit interface {
	IoctlWithConduit(req uint, conduit int) (int, error)
}

func (e oobEnd) ioctl(req uint) string {
	var v int
	var err error
	if e.sock == nil {
		v, err = unix.IoctlGetInt(e.fd, req)
	} else {
		v, err = e.sock.(ioctlConduit).IoctlWithConduit(req, e.fd)
	}
	if err != nil {
		return errName(err)
	}
	return fmt.Sprint(v)
}

func (e oobEnd) atMark() string { return e.ioctl(unix.SIOCATMARK) }

func (e oobEnd) setInline(t *testing.T, on bool) {
	t.Helper()
	var b [4]byte
	if on {
		b[0] = 1
	}
	if e.sock == nil {
		if err := unix.SetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, int(b[0])); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := e.sock.SetSockOpt(unix.SOL_SOCKET, unix.SO_OOBINLINE, b[:]); err != nil {
		t.Fatal(err)
	}
	// The shim also applies it to the target's own fd (setOnTargetFd).
	if err := unix.SetsockoptString(e.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, string(b[:])); err != nil {
		t.Fatal(err)
	}
}

func (e oobEnd) inline() string {
	if e.sock == nil {
		v, err := unix.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE)
		if err != nil {
			return errName(err)
		}
		return fmt.Sprint(v)
	}
	var b [4]byte
	if _, err := e.sock.GetSockOpt(unix.SOL_SOCKET, unix.SO_OOBINLINE, b[:]); err != nil {
		return errName(err)
	}
	return fmt.Sprint(binary.NativeEndian.Uint32(b[:]))
}

func (e oobEnd) poll(t *testing.T) string {
	t.Helper()
	return maskName(pollFd(t, e.fd, unix.POLLIN|unix.POLLPRI|unix.POLLOUT|unix.POLLRDHUP, 0))
}

// recv is recv(2) (recvfrom with a NULL address: native on a conduit).
func (e oobEnd) recv(n, flags int) string {
	b := make([]byte, n+1) // never empty: a zero length is passed as such
	k, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(e.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(n), uintptr(flags), 0, 0)
	if errno != 0 {
		return unix.ErrnoName(errno)
	}
	return fmt.Sprintf("%q", b[:k])
}

// send is send(2) (sendto with a NULL address: native on a conduit).
func (e oobEnd) send(p string, flags int) string {
	k, err := unix.SendmsgN(e.fd, []byte(p), nil, nil, flags|unix.MSG_NOSIGNAL)
	if err != nil {
		return errName(err)
	}
	return fmt.Sprint(k)
}

// waitSent waits until everything from sends on from has arrived at to:
// the sender's SIOCOUTQ is 0 (acknowledged, so in the receiver's queue),
// and for netprov the receiving pump has moved it all into the conduit;
// with pri, until POLLPRI shows on to too (the urgent byte is there).
// (FIONREAD cannot tell: TCP's stops at the urgent mark.)
func waitSent(t *testing.T, from, to oobEnd, pri bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		ok := from.ioctl(unix.SIOCOUTQ) == "0"
		if ok && to.sock != nil {
			ok = to.ioctlNoConduit(unix.SIOCINQ) == "0"
		}
		if ok && (!pri || pollFd(t, to.fd, unix.POLLPRI, 0)&unix.POLLPRI != 0) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("kernel=%v: sent data did not arrive (SIOCOUTQ %s, POLLPRI wanted %v)", from.sock == nil, from.ioctl(unix.SIOCOUTQ), pri)
}

// waitReadable waits until at least n bytes can be read from to's fd
// itself (FIONREAD on the kernel socket, or on the target end of the
// conduit): waitSent's queue checks can pass while the bytes are still in
// the sender's conduit→stack pump.
func waitReadable(t *testing.T, to oobEnd, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if v, err := unix.IoctlGetInt(to.fd, unix.SIOCINQ); err == nil && v >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("kernel=%v: fewer than %d bytes became readable", to.sock == nil, n)
}

// ioctlNoConduit is the provider's answer without the target end: the
// stack's queue and the bytes in the receiving pump.
func (e oobEnd) ioctlNoConduit(req uint) string {
	v, err := e.sock.(ioctlConduit).IoctlWithConduit(req, -1)
	if err != nil {
		return errName(err)
	}
	return fmt.Sprint(v)
}

func errName(err error) string {
	if e := errnoOf(err); e != 0 {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func maskName(m int16) string {
	var names []string
	for _, b := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "IN"}, {unix.POLLPRI, "PRI"}, {unix.POLLOUT, "OUT"}, {unix.POLLERR, "ERR"}, {unix.POLLHUP, "HUP"}, {unix.POLLRDHUP, "RDHUP"}} {
		if m&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	if names == nil {
		return "0"
	}
	return strings.Join(names, "|")
}

// oobLog records observations in order.
type oobLog struct {
	keys []string
	vals map[string]string
}

func (l *oobLog) add(key, val string) {
	if l.vals == nil {
		l.vals = map[string]string{}
	}
	if _, dup := l.vals[key]; dup {
		panic("duplicate key " + key)
	}
	l.keys = append(l.keys, key)
	l.vals[key] = val
}

// kernelOOBPair is a connected kernel TCP pair on loopback.
func kernelOOBPair(t *testing.T, listenerInline bool) (c, s oobEnd) {
	t.Helper()
	l := kernelListener(t)
	if listenerInline {
		oobEnd{fd: l}.setInline(t, true)
	}
	cfd := kernelSocket(t)
	sa, _ := unix.Getsockname(l)
	if err := unix.Connect(cfd, sa); err != nil {
		t.Fatal(err)
	}
	sfd, _, err := unix.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sfd) })
	return oobEnd{fd: cfd}, oobEnd{fd: sfd}
}

// netprovOOBPair is a netprov client connected to a netprov listener's
// accepted socket through the stack's loopback. Both conduits are
// released once connected, as the shim does by default.
func netprovOOBPair(t *testing.T, listenerInline bool) (c, s oobEnd) {
	t.Helper()
	p, _ := newProvider(t)
	ls, lfd := providerListener(t, p)
	if listenerInline {
		oobEnd{fd: lfd, sock: ls}.setInline(t, true)
	}
	cs, cfd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, cs, mustName(t, ls))
	child := acceptChild(t, ls)
	sfd := targetFd(t, child)
	for _, so := range []provider.Socket{cs, child} {
		if r, ok := so.(provider.ConduitReleaser); ok {
			r.ReleaseConduit()
		}
	}
	return oobEnd{fd: cfd, sock: cs}, oobEnd{fd: sfd, sock: child}
}

// oobScenario drives a pair and records what the receiver observes.
type oobScenario struct {
	name           string
	listenerInline bool
	run            func(t *testing.T, l *oobLog, c, s oobEnd)
	// known: observations where the AF_UNIX conduit cannot match TCP
	// (doc.go, "Known differences"): key → {kernel, netprov}. Both
	// values are asserted, so that a change on either side is noticed.
	known map[string][2]string
}

var oobScenarios = []oobScenario{
	{name: "no-urgent-data", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		// tcp_recv_urg: no urgent data is EINVAL, blocking or not.
		l.add("recv_oob", s.recv(4, unix.MSG_OOB))
		l.add("recv_oob_dontwait", s.recv(4, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("atmark", s.atMark())
		l.add("poll", s.poll(t))
		l.add("send", c.send("ab", 0))
		waitSent(t, c, s, false)
		waitReadable(t, s, 2)
		l.add("recv_oob_with_data", s.recv(4, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("atmark_with_data", s.atMark())
		l.add("recv", s.recv(10, unix.MSG_DONTWAIT))
		l.add("recv_empty", s.recv(10, unix.MSG_DONTWAIT))
	}},
	{name: "urgent-after-data", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		// Spec 43: the last byte of the send is the urgent byte.
		l.add("send_oob", c.send("abX", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("inq", s.ioctl(unix.SIOCINQ))
		l.add("poll", s.poll(t))
		l.add("atmark_before", s.atMark())
		l.add("peek_oob", s.recv(1, unix.MSG_OOB|unix.MSG_PEEK))
		l.add("peek_oob_empty_buf", s.recv(0, unix.MSG_OOB|unix.MSG_PEEK|unix.MSG_DONTWAIT))
		l.add("recv_to_mark", s.recv(10, unix.MSG_DONTWAIT))
		l.add("inq_at", s.ioctl(unix.SIOCINQ))
		l.add("atmark_at", s.atMark())
		l.add("poll_at", s.poll(t))
		l.add("recv_oob", s.recv(1, unix.MSG_OOB))
		l.add("inq_after_oob", s.ioctl(unix.SIOCINQ))
		l.add("recv_oob_again", s.recv(1, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("atmark_after_oob", s.atMark())
		l.add("recv_past_mark", s.recv(10, unix.MSG_DONTWAIT))
		l.add("atmark_past", s.atMark())
		l.add("poll_past", s.poll(t))
		l.add("send_more", c.send("cd", 0))
		waitSent(t, c, s, false)
		waitReadable(t, s, 2)
		l.add("recv_more", s.recv(10, unix.MSG_DONTWAIT))
	}, known: map[string][2]string{
		// AF_UNIX returns the urgent byte's length even into an empty
		// buffer; tcp_recv_urg returns 0 (with MSG_TRUNC).
		"peek_oob_empty_buf": {`""`, `"\x00"`},
		// unix_poll shows POLLIN for the queued out-of-band byte;
		// tcp_poll does not count the urgent byte next in line.
		"poll_at": {"PRI|OUT", "IN|PRI|OUT"},
	}},
	{name: "read-across-mark", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		// A normal read stops at the mark, the next skips the urgent
		// byte, which is gone then (urg_data cleared).
		l.add("send_oob", c.send("abX", unix.MSG_OOB))
		l.add("send", c.send("cd", 0))
		waitSent(t, c, s, true)
		l.add("poll", s.poll(t))
		l.add("inq", s.ioctl(unix.SIOCINQ))
		l.add("recv1", s.recv(10, unix.MSG_DONTWAIT))
		l.add("inq_at", s.ioctl(unix.SIOCINQ))
		l.add("recv2", s.recv(10, unix.MSG_DONTWAIT))
		l.add("recv_oob", s.recv(1, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("atmark", s.atMark())
		l.add("poll_after", s.poll(t))
		l.add("inq_end", s.ioctl(unix.SIOCINQ))
		l.add("send_more", c.send("ef", 0))
		waitSent(t, c, s, false)
		waitReadable(t, s, 2)
		l.add("inq_more", s.ioctl(unix.SIOCINQ))
		l.add("recv_more", s.recv(10, unix.MSG_DONTWAIT))
	}, known: map[string][2]string{
		// AF_UNIX (6.18) keeps counting the urgent byte the read passed
		// over in SIOCINQ (an empty queue is recognised: inq_end).
		"inq_more": {"2", "3"},
	}},
	{name: "urgent-byte-alone", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		l.add("send_oob", c.send("X", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("poll", s.poll(t))
		l.add("atmark", s.atMark())
		l.add("recv_dontwait", s.recv(4, unix.MSG_DONTWAIT|unix.MSG_PEEK))
		l.add("recv_oob", s.recv(1, unix.MSG_OOB))
		l.add("poll_after_oob", s.poll(t))
		l.add("atmark_after_oob", s.atMark())
		l.add("recv_after_oob", s.recv(4, unix.MSG_DONTWAIT))
		l.add("poll_end", s.poll(t))
		l.add("atmark_end", s.atMark())
	}, known: map[string][2]string{
		// unix_poll shows POLLIN for any queued skb, the out-of-band
		// one and the emptied one it leaves behind; tcp_poll does not
		// count the urgent byte as readable.
		"poll":           {"PRI|OUT", "IN|PRI|OUT"},
		"poll_after_oob": {"OUT", "IN|OUT"},
	}},
	{name: "oobinline", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		s.setInline(t, true)
		l.add("inline", s.inline())
		l.add("send_oob", c.send("abX", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("poll", s.poll(t))
		l.add("recv_oob", s.recv(1, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("recv_to_mark", s.recv(10, unix.MSG_DONTWAIT))
		l.add("atmark_at", s.atMark())
		l.add("recv_urgent_inline", s.recv(10, unix.MSG_DONTWAIT))
		l.add("atmark_after", s.atMark())
		l.add("poll_after", s.poll(t))
	}},
	{name: "oobinline-inherited", listenerInline: true, run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		l.add("inline", s.inline())
		l.add("send_oob", c.send("aX", unix.MSG_OOB))
		l.add("send", c.send("b", 0))
		waitSent(t, c, s, true)
		l.add("recv_oob", s.recv(1, unix.MSG_OOB|unix.MSG_DONTWAIT))
		l.add("recv1", s.recv(10, unix.MSG_DONTWAIT))
		l.add("recv2", s.recv(10, unix.MSG_DONTWAIT))
	}},
	{name: "second-urgent-replaces-first", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		// A new urgent pointer moves the mark: the first urgent byte
		// becomes normal data (tcp_check_urg).
		l.add("send_oob1", c.send("abX", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("send_oob2", c.send("cdY", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("poll", s.poll(t))
		l.add("peek_oob", s.recv(1, unix.MSG_OOB|unix.MSG_PEEK))
		l.add("recv_to_mark", s.recv(10, unix.MSG_DONTWAIT))
		l.add("atmark", s.atMark())
		l.add("recv_oob", s.recv(1, unix.MSG_OOB))
		l.add("recv_end", s.recv(10, unix.MSG_DONTWAIT))
	}},
	{name: "second-urgent-after-first-read", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		l.add("send_oob1", c.send("abX", unix.MSG_OOB))
		waitSent(t, c, s, true)
		l.add("recv_oob1", s.recv(1, unix.MSG_OOB))
		l.add("send_oob2", c.send("cdY", unix.MSG_OOB))
		l.add("poll", pollUntilName(t, s, unix.POLLPRI))
		l.add("recv_oob2", s.recv(1, unix.MSG_OOB))
		l.add("recv", s.recv(10, unix.MSG_DONTWAIT))
		l.add("recv2", s.recv(10, unix.MSG_DONTWAIT))
	}, known: map[string][2]string{
		// TCP leaves an urgent byte read with MSG_OOB in the stream;
		// when the mark moves on before a normal read skipped it, the
		// byte is read again as data. AF_UNIX took it out for good, and
		// its emptied buffer still stops the read.
		"recv":  {`"abXcd"`, `"ab"`},
		"recv2": {"EAGAIN", `"cd"`},
	}},
	{name: "urgent-to-client", run: func(t *testing.T, l *oobLog, c, s oobEnd) {
		// The other direction: the accepted socket sends.
		l.add("send_oob", s.send("xyZ", unix.MSG_OOB))
		waitSent(t, s, c, true)
		l.add("poll", c.poll(t))
		l.add("recv_to_mark", c.recv(10, unix.MSG_DONTWAIT))
		l.add("atmark", c.atMark())
		l.add("recv_oob", c.recv(1, unix.MSG_OOB))
	}},
}

// pollUntilName waits for events on e's fd and names the mask.
func pollUntilName(t *testing.T, e oobEnd, want int16) string {
	t.Helper()
	return maskName(pollUntil(t, e.fd, unix.POLLIN|unix.POLLPRI|unix.POLLOUT|unix.POLLRDHUP, want))
}

func TestUrgentDataLikeLinux(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root (as the other conduit tests: SO_PEERCRED join)")
	}
	for _, sc := range oobScenarios {
		t.Run(sc.name, func(t *testing.T) {
			var kl, nl oobLog
			kc, ks := kernelOOBPair(t, sc.listenerInline)
			sc.run(t, &kl, kc, ks)
			nc, ns := netprovOOBPair(t, sc.listenerInline)
			sc.run(t, &nl, nc, ns)
			// A TCP conduit is Linux's TCP: no known differences.
			tcpConduit := isTCPConduit(nc.fd)
			for _, k := range kl.keys {
				kv, nv := kl.vals[k], nl.vals[k]
				if d, ok := sc.known[k]; ok && !tcpConduit {
					if kv != d[0] || nv != d[1] {
						t.Errorf("%s (known difference): kernel %s, netprov %s; documented kernel %s, netprov %s", k, kv, nv, d[0], d[1])
					}
					continue
				}
				if kv != nv {
					t.Errorf("%s: kernel %s, netprov %s", k, kv, nv)
				}
			}
			if t.Failed() || testing.Verbose() {
				for _, k := range kl.keys {
					t.Logf("%-22s kernel %-12s netprov %s", k, kl.vals[k], nl.vals[k])
				}
			}
		})
	}
}

// TestUrgentAfterBulkLikeLinux: an urgent byte behind more data than one
// pump buffer (64 KiB) holds: normal reads return exactly the bytes
// before the mark, then recv(MSG_OOB) the urgent byte, on the kernel and
// on netprov.
func TestUrgentAfterBulkLikeLinux(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root (as the other conduit tests: SO_PEERCRED join)")
	}
	const bulk = 300000
	run := func(t *testing.T, c, s oobEnd) (before int, oob string) {
		errc := make(chan error, 1)
		go func() {
			p := make([]byte, bulk)
			for i := range p {
				p[i] = byte('a' + i%26)
			}
			for len(p) > 0 {
				n, err := unix.Write(c.fd, p)
				if err != nil {
					errc <- err
					return
				}
				p = p[n:]
			}
			_, err := unix.SendmsgN(c.fd, []byte("X"), nil, nil, unix.MSG_OOB)
			errc <- err
		}()
		buf := make([]byte, 64<<10)
		deadline := time.Now().Add(waitLimit)
		// Read while bytes before the mark are missing: a read that
		// starts at the mark with the urgent byte not there yet would
		// skip it when it comes (tcp_recvmsg), so stop at bulk; a read
		// that crosses the mark shows as before > bulk.
		for before < bulk && time.Now().Before(deadline) {
			n, err := unix.Read(s.fd, buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			before += n
		}
		if err := <-errc; err != nil {
			t.Fatalf("send: %v", err)
		}
		pollUntil(t, s.fd, unix.POLLPRI, unix.POLLPRI)
		if m := s.atMark(); m != "1" {
			t.Errorf("kernel=%v: SIOCATMARK %s after %d bytes, want 1", s.sock == nil, m, before)
		}
		return before, s.recv(1, unix.MSG_OOB)
	}
	kc, ks := kernelOOBPair(t, false)
	setRcvTimeout(t, ks.fd)
	kb, ko := run(t, kc, ks)
	nc, ns := netprovOOBPair(t, false)
	setRcvTimeout(t, ns.fd)
	nb, no := run(t, nc, ns)
	if kb != bulk || ko != `"X"` {
		t.Fatalf("kernel: %d bytes before the mark, urgent %s; want %d, \"X\"", kb, ko, bulk)
	}
	if nb != kb || no != ko {
		t.Errorf("netprov: %d bytes before the mark, urgent %s; kernel %d, %s", nb, no, kb, ko)
	}
}

// setRcvTimeout makes reads on fd wait at most 100 ms (EAGAIN after).
func setRcvTimeout(t *testing.T, fd int) {
	t.Helper()
	tv := unix.Timeval{Usec: 100000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
}

// TestUrgentInlineStreamIntact: with SO_OOBINLINE every urgent byte stays
// in the stream, so a receiver sees exactly the bytes sent, whatever the
// marks and the pumps' timing (no byte lost, duplicated or reordered on
// the way through both conduits), as on the kernel.
func TestUrgentInlineStreamIntact(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root (as the other conduit tests: SO_PEERCRED join)")
	}
	const rounds = 400
	var want []byte
	for i := 0; i < rounds; i++ {
		want = append(want, []byte(fmt.Sprintf("chunk%04d", i))...)
	}
	for _, kernel := range []bool{true, false} {
		var c, s oobEnd
		if kernel {
			c, s = kernelOOBPair(t, false)
		} else {
			c, s = netprovOOBPair(t, false)
		}
		s.setInline(t, true)
		setRcvTimeout(t, s.fd)
		errc := make(chan error, 1)
		go func() {
			for i := 0; i < rounds; i++ {
				flags := 0
				if i%3 == 0 {
					flags = unix.MSG_OOB // the chunk's last byte is urgent
				}
				if _, err := unix.SendmsgN(c.fd, want[i*9:(i+1)*9], nil, nil, flags); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		var got []byte
		buf := make([]byte, 4096)
		deadline := time.Now().Add(waitLimit)
		for len(got) < len(want) && time.Now().Before(deadline) {
			n, err := unix.Read(s.fd, buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatalf("kernel=%v: read: %v", kernel, err)
			}
			got = append(got, buf[:n]...)
		}
		if err := <-errc; err != nil {
			t.Fatalf("kernel=%v: send: %v", kernel, err)
		}
		if string(got) != string(want) {
			t.Errorf("kernel=%v: received %d bytes, differing from the %d sent", kernel, len(got), len(want))
		}
	}
}
