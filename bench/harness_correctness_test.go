package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
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
				srv := startEchoServer(l, echo)
				ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
				defer cancel()
				for i := range 200 {
					if err := connectOnce(ctx, n, addr, echo); err != nil {
						t.Fatalf("connection %d: %v", i, err)
					}
				}
				if err := srv.stop(); err != nil {
					t.Fatalf("server: %v", err)
				}
			})
		}
	}
}
