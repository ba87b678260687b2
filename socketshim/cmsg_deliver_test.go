package socketshim

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelRecvmsgControl receives one datagram on fd with a control buffer
// of size bytes filled with 0xee (NULL msg_control when size is 0) and
// returns the buffer, msg_controllen and msg_flags as the kernel left them.
func kernelRecvmsgControl(t *testing.T, fd, size int) ([]byte, int, int) {
	t.Helper()
	if r := waitFd(fd, unix.POLLIN); r&unix.POLLIN == 0 {
		t.Fatalf("no datagram to receive")
	}
	buf := make([]byte, 64)
	iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	ctl := bytes.Repeat([]byte{0xee}, max(size, 1))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Controllen: uint64(size)}
	if size > 0 {
		msg.Control = &ctl[0]
	}
	if _, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT); e != 0 {
		t.Fatalf("recvmsg: %v", e)
	}
	return ctl[:size], int(msg.Controllen), int(msg.Flags)
}

// TestDeliverControlLikePutCmsg: control messages kept encoded in full
// (as for a datagram kept by undeliverable for a later call) are put into
// each call's own control buffer exactly as the kernel's put_cmsg does:
// for every buffer size (none, shorter than a cmsghdr, cutting a message,
// cutting padding, ample) the bytes written, the bytes left alone,
// msg_controllen and MSG_CTRUNC equal what Linux's recvmsg gives for the
// same datagram and options. Before, the kept bytes of the first call
// were copied whole into the next call's buffer, past its
// msg_controllen.
func TestDeliverControlLikePutCmsg(t *testing.T) {
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	if err := unix.Bind(rx, &unix.SockaddrInet4{Addr: localhost}); err != nil {
		t.Skipf("no loopback: %v", err)
	}
	sa, err := unix.Getsockname(rx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []int{unix.IP_PKTINFO, unix.IP_RECVTTL, unix.IP_RECVTOS} {
		if err := unix.SetsockoptInt(rx, unix.SOL_IP, o, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SetsockoptInt(tx, unix.SOL_IP, unix.IP_TOS, 0x28); err != nil {
		t.Fatal(err)
	}
	send := func() {
		t.Helper()
		if err := unix.Sendto(tx, []byte("x"), 0, sa); err != nil {
			t.Fatalf("sendto: %v", err)
		}
	}
	// The full encoding, as the provider writes it into the shim's buffer.
	send()
	full, fullLen, fullFlags := kernelRecvmsgControl(t, rx, maxControl)
	if fullFlags&unix.MSG_CTRUNC != 0 || fullLen == 0 {
		t.Fatalf("full receive: controllen %d flags %#x", fullLen, fullFlags)
	}
	// Zero the padding the kernel left alone (0xee): the encoders write
	// into a zeroed buffer.
	enc := make([]byte, fullLen)
	for off := 0; off+sizeofCmsghdr <= fullLen; {
		l := int(binary.NativeEndian.Uint64(full[off:]))
		copy(enc[off:off+l], full[off:off+l])
		off += cmsgSpace(l - sizeofCmsghdr)
	}
	kept := datagram{n: 1, msgFlags: 0, ctl: enc}
	for _, size := range []int{0, 8, 15, 16, 17, 20, 28, 31, 32, 40, 47, 48, 52, 56, 64, 72, 79, 80, 96, 200} {
		send()
		want, wantLen, wantFlags := kernelRecvmsgControl(t, rx, size)
		var control []byte // as readControl: nil for NULL or length 0
		if size > 0 {
			control = bytes.Repeat([]byte{0xee}, size)
		}
		gotLen, gotFlags := deliverControl(control, true, kept)
		if gotLen > size {
			t.Errorf("size %d: msg_controllen %d beyond the buffer", size, gotLen)
			continue
		}
		if gotLen != wantLen || gotFlags&unix.MSG_CTRUNC != wantFlags&unix.MSG_CTRUNC {
			t.Errorf("size %d: controllen %d ctrunc %v; Linux %d ctrunc %v", size, gotLen, gotFlags&unix.MSG_CTRUNC != 0, wantLen, wantFlags&unix.MSG_CTRUNC != 0)
		}
		if size > 0 && !bytes.Equal(control, want) {
			t.Errorf("size %d: buffer\n%x\nLinux\n%x", size, control, want)
		}
	}
	// An unreadable buffer: put_cmsg's fault is ignored, nothing written.
	if l, f := deliverControl(nil, false, kept); l != 0 || f&unix.MSG_CTRUNC != 0 {
		t.Errorf("unreadable buffer: controllen %d flags %#x, want 0, no MSG_CTRUNC", l, f)
	}
	// Messages that did not fit even maxControl: always MSG_CTRUNC.
	if _, f := deliverControl(make([]byte, 200), true, datagram{ctl: enc, ctlTrunc: true}); f&unix.MSG_CTRUNC == 0 {
		t.Errorf("ctlTrunc datagram delivered without MSG_CTRUNC")
	}
	// No options (no messages): no MSG_CTRUNC even without a buffer.
	if l, f := deliverControl(nil, true, datagram{}); l != 0 || f != 0 {
		t.Errorf("datagram without control: controllen %d flags %#x", l, f)
	}
}
