package tcp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
)

// fixSegment points a fuzzed segment at lport from peerPort and gives it
// a valid checksum, so that it gets past demux into the state machine.
func fixSegment(c *tctx, b []byte, lport uint16, seqBase, ackBase uint32, rebase bool) {
	if len(b) >= 4 {
		binary.BigEndian.PutUint16(b[0:2], peerPort)
		binary.BigEndian.PutUint16(b[2:4], lport)
	}
	if rebase && len(b) >= 12 {
		// Keep the fuzzer's offsets small relative to the live sequence
		// numbers so that in-window paths are reached.
		binary.BigEndian.PutUint32(b[4:8], seqBase+uint32(int16(binary.BigEndian.Uint16(b[4:6]))))
		binary.BigEndian.PutUint32(b[8:12], ackBase+uint32(int16(binary.BigEndian.Uint16(b[8:10]))))
	}
	if len(b) >= 20 && len(b) <= 0xffff {
		header.TCP(b).SetChecksum(0)
		header.TCP(b).SetChecksum(header.TCPChecksum(b, c.remote, c.local))
	}
}

func fuzzSeeds(f *testing.F) {
	syn := make([]byte, 40)
	header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 1, DataOffset: 40, Flags: header.TCPFlagSyn, Window: 1000}.Emit(syn)
	copy(syn[20:], peerSYNOpts(1, 0))
	f.Add(syn)
	ack := make([]byte, 25)
	header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 2, Ack: 7, DataOffset: 20, Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 1000}.Emit(ack)
	f.Add(ack)
	sack := make([]byte, 52)
	header.TCPFields{SrcPort: peerPort, DstPort: 8080, Seq: 2, Ack: 7, DataOffset: 52, Flags: header.TCPFlagAck, Window: 1000}.Emit(sack)
	header.EncodeOptions(sack[20:], header.TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, NumSACKBlocks: 2,
		SACKBlocks: [4]header.SACKBlock{{Start: 10, End: 20}, {Start: 1, End: 5}}})
	f.Add(sack)
	f.Add([]byte{0, 1, 2})
	f.Add(make([]byte, 20))
}

// FuzzListenerInput feeds arbitrary segments to a listener: never a
// panic, and the stack stays usable.
func FuzzListenerInput(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newCtx(t, DefaultConfig())
		l := c.newEP()
		_ = l.Bind(netip.MustParseAddrPort("0.0.0.0:8080"))
		_ = l.Listen(2)
		seg := append([]byte(nil), b...)
		fixSegment(c, seg, 8080, 0, 0, false)
		c.injectRaw(seg)
		c.injectRaw(b)
		c.drain()
		if _, _, err := l.Accept(); err == nil {
			return
		}
		c.clk.Advance(70_000_000_000)
		c.drain()
	})
}

// FuzzEstablishedInput feeds arbitrary segments, rebased near the live
// sequence numbers, to an established connection.
func FuzzEstablishedInput(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newCtx(t, DefaultConfig())
		ep, _ := c.connectEstablished(peerSYNOpts(1, 0))
		_, _ = ep.Write([]byte("some data in flight"), stack.WriteOptions{})
		c.drain()
		seg := append([]byte(nil), b...)
		fixSegment(c, seg, ep.lport, peerISN+1, uint32(ep.iss)+1, true)
		c.injectRaw(seg)
		c.drain()
		buf := make([]byte, 100)
		_, _ = ep.Read(buf, stack.ReadOptions{})
		c.clk.Advance(5_000_000_000)
		c.drain()
		ep.Close()
		c.clk.Advance(200_000_000_000)
		c.drain()
	})
}
