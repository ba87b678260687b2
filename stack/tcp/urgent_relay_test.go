package tcp

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
)

// TestReadRelay: the relay read stops at the urgent mark, returns the
// urgent byte alone (also when it arrives with the following bytes in one
// segment, where Read would skip it), then the rest; SO_OOBINLINE does
// not change that. With no data it is EAGAIN like Read.
func TestReadRelay(t *testing.T) {
	for _, inline := range []bool{false, true} {
		c := newCtx(t, DefaultConfig())
		ep, port := c.establishedPlain()
		if inline {
			setInt(t, ep, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
		}
		buf := make([]byte, 10)
		if _, _, err := ep.ReadRelay(buf); err != unix.EAGAIN {
			t.Fatalf("inline=%v: empty relay read = %v, want EAGAIN", inline, err)
		}
		iss := uint32(ep.iss)
		// "xy!z" with the urgent pointer naming '!' (seq + 3 - 1).
		c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 1, Ack: iss + 1,
			Flags: header.TCPFlagAck | header.TCPFlagUrg | header.TCPFlagPsh, Window: 65535, Urgent: 3}, nil, []byte("xy!z"))
		// "!" alone then "w": the urgent byte is next in line.
		c.inject(header.TCPFields{SrcPort: peerPort, DstPort: port, Seq: peerISN + 5, Ack: iss + 1,
			Flags: header.TCPFlagAck | header.TCPFlagPsh, Window: 65535}, nil, []byte("w"))
		var got []string
		for i := 0; i < 5; i++ {
			n, urgent, err := ep.ReadRelay(buf)
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				t.Fatalf("inline=%v: relay read: %v", inline, err)
			}
			s := string(buf[:n])
			if urgent {
				s = "URG:" + s
			}
			got = append(got, s)
		}
		want := []string{"xy", "URG:!", "zw"}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("inline=%v: relay reads %q, want %q", inline, got, want)
		}
		// The mark is gone: MSG_OOB finds nothing (or EINVAL inline).
		if _, err := ep.Read(buf, stack.ReadOptions{OOB: true}); err != unix.EINVAL {
			t.Errorf("inline=%v: MSG_OOB after the relay took the byte = %v, want EINVAL", inline, err)
		}
	}
}
