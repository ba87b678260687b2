package netstack_test

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackSendTo measures a served sendto of a 64-byte datagram
// to another socket of the provider over lo, with the target reading its
// conduit natively (the cost of settling the delivery, see settle.go).
func BenchmarkLoopbackSendTo(b *testing.B) {
	p, _ := newProvider(b)
	a, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	r, err := p.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.Bind(sockaddr(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		b.Fatal(err)
	}
	sa, err := r.GetSockName()
	if err != nil {
		b.Fatal(err)
	}
	rfd := int(r.Conduit().Fd())
	_ = unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		got := 0
		defer func() { done <- got }()
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var pfd = []unix.PollFd{{Fd: int32(rfd), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, 10)
			for {
				if _, _, err := unix.Recvfrom(rfd, buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
				got++
			}
		}
	}()
	msg := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.SendTo(b.Context(), msg, 0, sa, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	// The share of datagrams the target received (the rest was dropped
	// on the way: lo's queue or a full receive buffer).
	b.ReportMetric(float64(<-done)/float64(b.N), "received/op")
}
