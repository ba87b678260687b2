package loopback

import (
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	lt "github.com/netprov/netprov/stack/link/internal/linktest"
)

// gateDispatcher holds every delivery until open is closed.
type gateDispatcher struct {
	open chan struct{}
	*lt.Recorder
}

func (g gateDispatcher) DeliverLinkPacket(p *buffer.Packet) {
	<-g.open
	g.Recorder.DeliverLinkPacket(p)
}

// TestWaitDeliveredReturnsOnceFramesWereHandedToTheStack checks that
// WaitDelivered(Pushed()) returns only after every frame written before
// has reached the dispatcher, and times out while delivery is held.
func TestWaitDeliveredReturnsOnceFramesWereHandedToTheStack(t *testing.T) {
	e := New(Config{})
	t.Cleanup(func() { e.Close() })
	g := gateDispatcher{open: make(chan struct{}), Recorder: lt.NewRecorder()}
	e.Attach(g)
	for i := 0; i < 5; i++ {
		if n, err := e.WritePackets([]*buffer.Packet{buffer.FromBytes([]byte{0x45, byte(i)})}); n != 1 || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
	}
	n := e.Pushed()
	if n != 5 {
		t.Fatalf("Pushed = %d, want 5", n)
	}
	if e.WaitDelivered(n, 20*time.Millisecond) {
		t.Fatal("WaitDelivered returned true while delivery is held")
	}
	close(g.open)
	if !e.WaitDelivered(n, 10*time.Second) {
		t.Fatal("WaitDelivered timed out after delivery was released")
	}
	if c := g.Count(); c != 5 {
		t.Fatalf("after WaitDelivered %d frames were delivered, want 5", c)
	}
	if !e.WaitDelivered(0, 0) {
		t.Fatal("WaitDelivered(0) = false")
	}
}
