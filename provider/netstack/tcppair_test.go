package netstack

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestTCPPairFillerLooksLikeSynSent: a pair made through the pair
// listener, filled, polls like a socket in SYN_SENT (no events; a
// MSG_DONTWAIT send gives EAGAIN); unfilled, our end got exactly the
// filler and the target end is writable with Linux's default
// TCP_NOTSENT_LOWAT again, and data flows both ways.
func TestTCPPairFillerLooksLikeSynSent(t *testing.T) {
	n := newTestConduitNet(t)
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		if family == unix.AF_INET6 && !n.v6 {
			continue
		}
		l, err := n.newPairListener(family)
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.tcpSocket(family)
		if err != nil {
			t.Fatal(err)
		}
		o, err := l.pair(p)
		if err != nil {
			t.Fatal(err)
		}
		filler := fillTCP(p)
		if filler == 0 || filler > 64<<10 {
			t.Fatalf("family %d: filler of %d bytes, want a few KiB", family, filler)
		}
		pfd := []unix.PollFd{{Fd: int32(p), Events: unix.POLLIN | unix.POLLOUT | unix.POLLPRI | unix.POLLRDHUP}}
		if k, _ := unix.Poll(pfd, 100); k != 0 {
			t.Fatalf("family %d: filled target end polls %#x, want nothing (SYN_SENT)", family, pfd[0].Revents)
		}
		if _, err := unix.SendmsgN(p, []byte("x"), nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL); err != unix.EAGAIN {
			t.Fatalf("family %d: send on the filled target end = %v, want EAGAIN", family, err)
		}
		if err := unfillTCP(p, o, filler); err != nil {
			t.Fatal(err)
		}
		if v, _ := unix.GetsockoptInt(p, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT); v != 0 {
			t.Fatalf("family %d: TCP_NOTSENT_LOWAT after unfill = %d, want 0", family, v)
		}
		pfd[0].Revents = 0
		if k, _ := unix.Poll(pfd, 1000); k != 1 || pfd[0].Revents != unix.POLLOUT {
			t.Fatalf("family %d: unfilled target end polls %#x, want POLLOUT", family, pfd[0].Revents)
		}
		if _, err := unix.Write(p, []byte("up")); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(o, []byte("down")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		opfd := []unix.PollFd{{Fd: int32(o), Events: unix.POLLIN}}
		unix.Poll(opfd, 1000)
		if k, err := unix.Read(o, buf); err != nil || string(buf[:k]) != "up" {
			t.Fatalf("family %d: our end read %q, %v; want exactly the target's bytes after the filler", family, buf[:k], err)
		}
		if k, err := unix.Read(p, buf); err != nil || string(buf[:k]) != "down" {
			t.Fatalf("family %d: target end read %q, %v", family, buf[:k], err)
		}
		unix.Close(p)
		unix.Close(o)
		unix.Close(l.fd)
	}
}

// TestTCPDiagTellsCloseFromShutdown: sock_diag in the conduit namespace
// shows a target end shut down both ways with its inode, and one closed
// by its last fd as an orphan (inode 0) or gone.
func TestTCPDiagTellsCloseFromShutdown(t *testing.T) {
	n := newTestConduitNet(t)
	l, err := n.newPairListener(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l.fd)
	for _, closeIt := range []bool{false, true} {
		p, err := n.tcpSocket(unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		o, err := l.pair(p)
		if err != nil {
			t.Fatal(err)
		}
		local, _ := boundAddr(p)
		remote, _ := boundAddr(o)
		var st unix.Stat_t
		if err := unix.Fstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if err := unix.Shutdown(p, unix.SHUT_RDWR); err != nil {
			t.Fatal(err)
		}
		if closeIt {
			unix.Close(p)
		}
		got, err := n.tcpLookup(local, remote)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !closeIt && (!got.found || uint64(got.inode) != st.Ino):
			t.Fatalf("shut-down target end: inode %d (found %v), want %d", got.inode, got.found, st.Ino)
		case !closeIt && got.shutdown != 3:
			t.Fatalf("shut-down target end: sk_shutdown %d, want 3 (RCV_SHUTDOWN|SEND_SHUTDOWN)", got.shutdown)
		case closeIt && got.found && got.inode != 0:
			t.Fatalf("closed target end: inode %d, want 0 (orphan) or no socket", got.inode)
		}
		if !closeIt {
			unix.Close(p)
		}
		unix.Close(o)
	}
}

// unfillTCP ends fillTCP as startStream does (restoreSendBuf, then
// discardFillerLocked): p's TCP_NOTSENT_LOWAT goes back to 0 and the
// filler is read off our end o (bounded waits).
func unfillTCP(p, o, filler int) error {
	if err := unix.SetsockoptInt(p, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0); err != nil {
		return err
	}
	var buf [16 << 10]byte
	for filler > 0 {
		k, err := unix.Read(o, buf[:min(filler, len(buf))])
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(o), Events: unix.POLLIN}}
			if n, _ := unix.Poll(pfd, 1000); n == 0 {
				return unix.ETIMEDOUT
			}
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return unix.ECONNRESET
		}
		filler -= k
	}
	return nil
}
