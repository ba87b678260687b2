package netstack_test

import (
	"crypto/sha256"
	"io"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBulkBackPressure: 64 MiB written on the conduit arrive intact. While
// the receiving application does not read, the target's writes stall
// (EAGAIN) after a bounded amount, and the provider's heap does not grow
// beyond its buffers: back-pressure reaches the sandboxed writer.
func TestBulkBackPressure(t *testing.T) {
	const total = 64 << 20
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	// Socket timeouts must not make the pumps lose bytes (the stack
	// socket keeps them for the shim's blocking calls).
	tv := make([]byte, 16)
	tv[8] = 10 * 1000 & 0xff
	tv[9] = 10 * 1000 >> 8 // 10 ms
	for _, opt := range []int{unix.SO_SNDTIMEO, unix.SO_RCVTIMEO} {
		if err := s.SetSockOpt(unix.SOL_SOCKET, opt, tv); err != nil {
			t.Fatal(err)
		}
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>8)
	}
	sent := sha256.New()
	written := 0
	// write writes until total, or until the conduit stays full for
	// stall (no POLLOUT): then it returns false.
	write := func(stall time.Duration) bool {
		for written < total {
			off := written % len(chunk)
			k, err := unix.Write(fd, chunk[off:min(len(chunk), off+total-written)])
			if k > 0 {
				sent.Write(chunk[off : off+k])
				written += k
				continue
			}
			if err != unix.EAGAIN {
				t.Fatalf("write: %v", err)
			}
			if pollFd(t, fd, unix.POLLOUT, stall)&unix.POLLOUT == 0 {
				return false
			}
		}
		return true
	}
	if write(300 * time.Millisecond) {
		t.Fatalf("all %d bytes written while the receiver never read: no back-pressure", total)
	}
	stalledAt := written
	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapInuse) - int64(before.HeapInuse)
	t.Logf("writer stalled after %d KiB; heap in use grew %d KiB", stalledAt>>10, growth>>10)
	if stalledAt > 48<<20 {
		t.Errorf("writer stalled only after %d MiB: buffering is not bounded", stalledAt>>20)
	}
	// The stack's TCP buffers (send + receive, a few MiB each) and the
	// pump buffers are all the provider may hold.
	if growth > 32<<20 {
		t.Errorf("heap grew %d MiB while stalled: the provider buffers without bound", growth>>20)
	}

	got := sha256.New()
	recvDone := make(chan int64, 1)
	go func() {
		k, _ := io.Copy(got, srv)
		recvDone <- k
	}()
	if !write(waitLimit) {
		t.Fatalf("writer stalled at %d bytes with a reading receiver", written)
	}
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-recvDone:
		if k != total || string(got.Sum(nil)) != string(sent.Sum(nil)) {
			t.Fatalf("receiver got %d bytes (hash match %v), want %d intact", k, string(got.Sum(nil)) == string(sent.Sum(nil)), total)
		}
	case <-time.After(4 * waitLimit):
		t.Fatal("receiver did not get EOF")
	}
}

// TestBulkBackPressureToTarget: when the target does not read, the
// stack's receive buffer fills (zero window) and the peer's writes stall;
// then the target reads all 64 MiB intact.
func TestBulkBackPressureToTarget(t *testing.T) {
	const total = 64 << 20
	p, n := newProvider(t)
	l := stackListener(t, n)
	s, fd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, s, addrPort(t, l.Addr()))
	srv := acceptConn(t, l)

	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i*13 + i>>9)
	}
	sent := sha256.New()
	for w := 0; w < total; w += len(chunk) {
		sent.Write(chunk)
	}
	progress := make(chan int, 1024)
	go func() {
		defer srv.Close()
		for w := 0; w < total; w += len(chunk) {
			if _, err := srv.Write(chunk); err != nil {
				return
			}
			progress <- w + len(chunk)
		}
		close(progress)
	}()
	// Wait until the peer makes no progress for a while.
	peerWritten := 0
	for stalled := false; !stalled; {
		select {
		case w, ok := <-progress:
			if !ok {
				t.Fatal("the peer wrote everything while the target never read: no back-pressure")
			}
			peerWritten = w
		case <-time.After(300 * time.Millisecond):
			stalled = true
		}
	}
	t.Logf("peer stalled after %d KiB", peerWritten>>10)
	if peerWritten > 48<<20 {
		t.Errorf("peer stalled only after %d MiB", peerWritten>>20)
	}
	go func() {
		for range progress {
		}
	}()
	got := sha256.New()
	buf := make([]byte, 256<<10)
	read := 0
	deadline := time.Now().Add(4 * waitLimit)
	for read < total && time.Now().Before(deadline) {
		if pollFd(t, fd, unix.POLLIN, time.Second)&unix.POLLIN == 0 {
			continue
		}
		k, err := unix.Read(fd, buf)
		if err != nil || k == 0 {
			t.Fatalf("read after %d bytes: %d, %v", read, k, err)
		}
		got.Write(buf[:k])
		read += k
	}
	if read != total || string(got.Sum(nil)) != string(sent.Sum(nil)) {
		t.Fatalf("target read %d bytes (intact %v), want %d", read, string(got.Sum(nil)) == string(sent.Sum(nil)), total)
	}
}
