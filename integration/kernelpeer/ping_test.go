package kernelpeer

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelPingsStack runs the kernel's ping against the stack: the
// stack's ICMP (ICMPv6) layer answers every echo request.
func TestKernelPingsStack(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		args := []string{"ping", "-c", "3", "-i", "0.05", "-W", "2", fam.stack.String()}
		if fam.stack.Is6() {
			args = append(args[:1], append([]string{"-6"}, args[1:]...)...)
		}
		out, err := p.kernel.Exec(args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), "3 packets transmitted, 3 received") {
			t.Errorf("ping output lacks 3 replies:\n%s", out)
		}
	})
}

// TestStackPingsKernel sends echo requests from an ICMP echo socket of the
// stack (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), as unprivileged ping
// does) and checks the kernel's replies: type, sequence and payload.
func TestStackPingsKernel(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		domain, proto := unix.AF_INET, unix.IPPROTO_ICMP
		reqType, replyType := byte(8), byte(0)
		if fam.kernel.Is6() {
			domain, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
			reqType, replyType = 128, 129
		}
		so, err := p.node.Socket(domain, unix.SOCK_DGRAM, proto)
		if err != nil {
			t.Fatalf("socket(%d, SOCK_DGRAM, %d): %v", domain, proto, err)
		}
		defer so.Close()
		dst := netip.AddrPortFrom(fam.kernel, 0)
		for seq := uint16(1); seq <= 3; seq++ {
			payload := []byte("netprov echo " + fam.name + " #" + string(rune('0'+seq)))
			req := make([]byte, 8+len(payload))
			req[0] = reqType
			binary.BigEndian.PutUint16(req[6:], seq) // identifier: the socket's port, set by the stack
			copy(req[8:], payload)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, _, err := so.SendMsg(ctx, req, 0, dst); err != nil {
				cancel()
				t.Fatalf("sendto %v seq %d: %v", dst, seq, err)
			}
			reply := make([]byte, 1500)
			r, err := so.RecvMsg(ctx, reply, 0)
			cancel()
			if err != nil {
				t.Fatalf("recv echo reply seq %d: %v", seq, err)
			}
			reply = reply[:r.N]
			if len(reply) < 8 || reply[0] != replyType || reply[1] != 0 {
				t.Fatalf("reply seq %d: % x, want type %d code 0", seq, truncate(reply, 16), replyType)
			}
			if got := binary.BigEndian.Uint16(reply[6:]); got != seq {
				t.Errorf("reply sequence %d, want %d", got, seq)
			}
			if !bytes.Equal(reply[8:], payload) {
				t.Errorf("reply payload %q, want %q", reply[8:], payload)
			}
			if r.From.Addr() != fam.kernel {
				t.Errorf("reply from %v, want %v", r.From, fam.kernel)
			}
		}
	})
}
