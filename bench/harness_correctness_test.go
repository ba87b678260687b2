package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestBulkTransferIntact checks that what the bulk benchmark measures is a
// real, lossless transfer: 4 MiB of random bytes sent through each
// implementation at each benchmark MTU arrive complete and unchanged, and
// the receiver sees EOF after the sender's close.
func TestBulkTransferIntact(t *testing.T) {
	for _, impl := range Implementations() {
		for _, mtu := range bulkMTUs {
			t.Run(fmt.Sprintf("%s/mtu%d", impl.Name, mtu), func(t *testing.T) {
				n := newNetwork(t, impl, DefaultConfig(mtu))
				client, server := connectPair(t, n)
				// Bounds the whole transfer: a stuck stack fails the
				// test with a timeout error instead of hanging it.
				client.SetDeadline(time.Now().Add(setupTimeout))
				server.SetDeadline(time.Now().Add(setupTimeout))
				want := make([]byte, 4<<20)
				rng := rand.New(rand.NewPCG(uint64(mtu), 1))
				for i := range want {
					want[i] = byte(rng.Uint32())
				}
				writeErr := make(chan error, 1)
				go func() {
					err := writeAll(client, want, bulkWriteChunk)
					if cerr := client.Close(); err == nil {
						err = cerr
					}
					writeErr <- err
				}()
				got, err := io.ReadAll(server)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if err := <-writeErr; err != nil {
					t.Fatalf("write: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(want))
				}
			})
		}
	}
}

// TestConnectEchoSequence runs the connection benchmark's client and server
// for 200 connections in a row and checks each echo, that the client sees
// EOF from the server's close, and that the server saw no error.
func TestConnectEchoSequence(t *testing.T) {
	for _, impl := range Implementations() {
		for _, echo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/echo=%v", impl.Name, echo), func(t *testing.T) {
				n := newNetwork(t, impl, DefaultConfig(1500))
				addr := netip.AddrPortFrom(n.ServerAddr(), benchPort)
				l, err := n.Listen(addr)
				if err != nil {
					t.Fatalf("listen: %v", err)
				}
				guard := newStallGuard(t, stallTimeout)
				srv := startEchoServer(l, echo, guard)
				for i := range 200 {
					if err := connectOnce(guard, n, addr, echo); err != nil {
						srv.stop()
						t.Fatalf("connection %d: %v", i, guard.explain(err))
					}
				}
				if err := srv.stop(); err != nil {
					t.Fatalf("server: %v", guard.explain(err))
				}
			})
		}
	}
}

// TestStallGuardUnblocksStuckConnection checks that the benchmarks cannot
// hang on a stuck connection: with a receiver that never reads, the
// sender's Write blocks once the buffers are full; with no progress
// reported, the stall guard must unblock it with an error (and cancel its
// context) within a few timeout periods, for every implementation.
func TestStallGuardUnblocksStuckConnection(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, impl := range Implementations() {
		t.Run(impl.Name, func(t *testing.T) {
			n := newNetwork(t, impl, DefaultConfig(1500))
			client, server := connectPair(t, n)
			guard := newStallGuard(t, timeout)
			guard.track(client)
			guard.track(server)
			// Far more than any send plus receive buffer can hold.
			payload := make([]byte, 64<<20)
			writeErr := make(chan error, 1)
			go func() { writeErr <- writeAll(client, payload, bulkWriteChunk) }()
			select {
			case err := <-writeErr:
				if err == nil {
					t.Fatal("64 MiB written to a receiver that never reads")
				}
				if got := guard.explain(err); got == err {
					t.Fatalf("write failed without a stall being detected: %v", err)
				}
			case <-time.After(50 * timeout):
				t.Fatalf("write still blocked %v after the stall timeout %v", 50*timeout, timeout)
			}
			if guard.ctx.Err() == nil {
				t.Fatal("stall did not cancel the guard's context")
			}
		})
	}
}
