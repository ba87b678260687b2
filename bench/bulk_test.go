package bench

import (
	"fmt"
	"testing"
	"time"
)

const (
	// bulkBytesPerOp is what one benchmark iteration transfers.
	bulkBytesPerOp = 1 << 20
	// bulkWriteChunk is the application's write size (like iperf3's
	// default 128 KiB block, halved to stay under the smallest send buffer
	// ceiling after auto-tuning).
	bulkWriteChunk = 64 << 10
	// bulkReadBuf is the application's read size.
	bulkReadBuf = 64 << 10
	// bulkWarmup is sent before the timer starts so that slow start and
	// buffer auto-tuning are over when measuring starts.
	bulkWarmup = 8 << 20
)

// bulkMTUs are the link MTUs compared: Ethernet's, and the largest IPv4
// packet (what a TAP device with a large MTU or GSO gives).
var bulkMTUs = []int{1500, 65535}

// BenchmarkBulk measures one TCP connection's throughput, client to server,
// with both stacks in this process. Reported: MB/s, bytes/cpu-s (bytes moved
// per second of process CPU time, both stacks and the link together), and
// allocations per 1 MiB moved.
func BenchmarkBulk(b *testing.B) {
	for _, impl := range Implementations() {
		b.Run(impl.Name, func(b *testing.B) {
			for _, mtu := range bulkMTUs {
				b.Run(fmt.Sprintf("mtu%d", mtu), func(b *testing.B) {
					benchmarkBulk(b, impl, DefaultConfig(mtu))
				})
			}
		})
	}
}

func benchmarkBulk(b *testing.B, impl Implementation, cfg Config) {
	n := newNetwork(b, impl, cfg)
	client, server := connectPair(b, n)
	guard := newStallGuard(b, stallTimeout)
	guard.track(client)
	guard.track(server)
	recv := newSink(server, bulkReadBuf)
	payload := make([]byte, bulkBytesPerOp)
	for i := range payload {
		payload[i] = byte(i * 7)
	}

	recv.drain(bulkWarmup)
	for range bulkWarmup / bulkBytesPerOp {
		if err := writeAll(client, payload, bulkWriteChunk); err != nil {
			b.Fatalf("warm-up write: %v", guard.explain(err))
		}
		guard.step()
	}
	recv.wait(b)

	recv.drain(int64(b.N) * bulkBytesPerOp)
	b.SetBytes(bulkBytesPerOp)
	b.ReportAllocs()
	retransBefore := retransmits(n)
	cpuBefore := mustCPUTime(b)
	b.ResetTimer()
	for range b.N {
		if err := writeAll(client, payload, bulkWriteChunk); err != nil {
			b.Fatalf("write: %v", guard.explain(err))
		}
		guard.step()
	}
	recv.wait(b)
	b.StopTimer()
	cpu := mustCPUTime(b) - cpuBefore
	reportPerCPU(b, float64(b.N)*bulkBytesPerOp, cpu, "bytes/cpu-s")
	reportRetransmits(b, n, retransBefore)
}

// retransmits returns n's retransmission count, or 0 when n cannot tell.
func retransmits(n Network) uint64 {
	if rc, ok := n.(RetransmitCounter); ok {
		return rc.Retransmits()
	}
	return 0
}

// reportRetransmits reports retransmissions per op since before, for
// networks that count them.
func reportRetransmits(b *testing.B, n Network, before uint64) {
	if _, ok := n.(RetransmitCounter); ok {
		b.ReportMetric(float64(retransmits(n)-before)/float64(b.N), "retrans/op")
	}
}

// mustCPUTime returns processCPUTime or fails the benchmark.
func mustCPUTime(b *testing.B) time.Duration {
	b.Helper()
	t, err := processCPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// reportPerCPU reports amount per CPU-second under unit.
func reportPerCPU(b *testing.B, amount float64, cpu time.Duration, unit string) {
	if cpu <= 0 {
		// Shorter than the rusage granularity (b.N tiny); nothing to report.
		return
	}
	b.ReportMetric(amount/cpu.Seconds(), unit)
}
