package netstack_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

// conduitIoctler is the shim's hook for ioctls on the target's own fd.
type conduitIoctler interface {
	IoctlWithConduit(req uint, conduit int) (int, error)
}

// TestOutqEmptyMeansPeerCanRead: on Linux a byte the peer acked is in its
// receive queue, so once the sender's SIOCOUTQ is 0 a MSG_DONTWAIT recv
// on the peer returns everything sent (semantics scenario
// f-dup2-and-fcntl-dupfd waits for SIOCOUTQ 0 and reads so). Through the
// provider the bytes still pass the up pump on the sender's side and the
// down pump on the peer's (both sockets are the provider's here, over
// lo): SIOCOUTQ counts the first and waits for the second.
func TestOutqEmptyMeansPeerCanRead(t *testing.T) {
	p, _ := newProvider(t)
	ls, _ := providerListener(t, p)
	c, cfd := newSocket(t, p, unix.AF_INET, unix.SOCK_STREAM)
	connect(t, c, mustName(t, ls))
	child := acceptChild(t, ls)
	sfd := targetFd(t, child)
	for _, s := range []provider.Socket{c, child} {
		s.(provider.ConduitReleaser).ReleaseConduit()
	}
	var buf [16]byte
	for i := range 60 { // each round may wait for a delayed ACK (Nagle)
		deadline := time.Now().Add(waitLimit)
		for _, b := range []string{"a", "b"} {
			if _, err := unix.SendmsgN(cfd, []byte(b), nil, nil, unix.MSG_NOSIGNAL); err != nil {
				t.Fatal(err)
			}
		}
		for q := 1; q != 0; {
			var err error
			if q, err = c.(conduitIoctler).IoctlWithConduit(unix.SIOCOUTQ, cfd); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: SIOCOUTQ stayed %d", i, q)
			}
		}
		k, _, err := unix.Recvfrom(sfd, buf[:], unix.MSG_DONTWAIT)
		k = max(k, 0)
		if err != nil || string(buf[:k]) != "ab" {
			t.Fatalf("round %d: after SIOCOUTQ 0 the peer read %q (%v), want \"ab\"", i, buf[:k], err)
		}
	}
}
