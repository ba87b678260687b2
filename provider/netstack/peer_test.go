package netstack

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTargetReleasedTellsCloseFromShutdown: a peer that shut down both
// directions shows POLLHUP like a closed one, but only the closed
// (orphaned) peer counts as released.
func TestTargetReleasedTellsCloseFromShutdown(t *testing.T) {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET} {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ours, target := fds[0], fds[1]
		defer unix.Close(ours)
		released, err := targetReleased(ours)
		if errors.Is(err, errNoDiag) {
			unix.Close(target)
			t.Skipf("kernel without AF_UNIX sock_diag: %v", err)
		}
		if err != nil || released {
			t.Fatalf("type %d open peer: released=%v err=%v", typ, released, err)
		}
		if err := unix.Shutdown(target, unix.SHUT_RDWR); err != nil {
			t.Fatal(err)
		}
		if pollMask(ours, unix.POLLIN)&unix.POLLHUP == 0 {
			t.Fatalf("type %d: no POLLHUP after the peer's SHUT_RDWR", typ)
		}
		if released, err := targetReleased(ours); err != nil || released {
			t.Errorf("type %d shut-down peer: released=%v err=%v, want false", typ, released, err)
		}
		unix.Close(target)
		if released, err := targetReleased(ours); err != nil || !released {
			t.Errorf("type %d closed peer: released=%v err=%v, want true", typ, released, err)
		}
	}
}

// TestParseUnixDiagPeer: the attribute walk finds UNIX_DIAG_PEER after
// other attributes, reads an answer without it as 0 and rejects garbage.
func TestParseUnixDiagPeer(t *testing.T) {
	msg := make([]byte, unixDiagMsgLen, 64)
	msg = append(msg, 5, 0, 0, 0, 'x', 0, 0, 0) // UNIX_DIAG_NAME "x" (len 5, padded)
	msg = append(msg, 8, 0, unixDiagPeer, 0, 0x39, 0x30, 0, 0)
	put := func(b []byte) {
		b[0], b[1], b[2], b[3] = byte(len(b)), 0, 0, 0
		b[4], b[5] = unix.SOCK_DIAG_BY_FAMILY, 0
	}
	put(msg)
	if p, err := parseUnixDiagPeer(msg); err != nil || p != 12345 {
		t.Errorf("peer=%d err=%v, want 12345", p, err)
	}
	bare := make([]byte, unixDiagMsgLen)
	put(bare)
	if p, err := parseUnixDiagPeer(bare); err != nil || p != 0 {
		t.Errorf("no attribute: peer=%d err=%v, want 0", p, err)
	}
	if _, err := parseUnixDiagPeer([]byte{1, 2, 3}); err == nil {
		t.Error("short answer accepted")
	}
}
