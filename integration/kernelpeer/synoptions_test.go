package kernelpeer

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/capture"
	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/header"
)

// pcapBufferTimeout is libpcap's default packet-buffer timeout plus a margin.
const pcapBufferTimeout = 1200 * time.Millisecond

// handshake is the SYN and SYN-ACK of one connection as captured.
type handshake struct {
	syn, synAck capture.TCPSegment
}

// findHandshake returns the SYN sent to dst and the SYN-ACK answering it.
func findHandshake(t *testing.T, frames []capture.Frame, dst string) handshake {
	t.Helper()
	var h handshake
	var haveSyn, haveSynAck bool
	for _, f := range frames {
		seg, ok := capture.ParseTCP(f.Data)
		if !ok {
			continue
		}
		switch {
		case !haveSyn && seg.Flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn && seg.Dst == dst:
			h.syn, haveSyn = seg, true
		case haveSyn && !haveSynAck && seg.Flags.Contains(header.TCPFlagSyn|header.TCPFlagAck) &&
			seg.Src == dst && seg.Dst == h.syn.Src:
			h.synAck, haveSynAck = seg, true
		}
	}
	if !haveSyn || !haveSynAck {
		t.Fatalf("capture holds no SYN/SYN-ACK pair for %s (SYN found: %v, SYN-ACK found: %v; %d frames)", dst, haveSyn, haveSynAck, len(frames))
	}
	return h
}

// synParams are the option values that must match the kernel's, besides
// the layout.
type synParams struct {
	layout string
	mss    uint16
	wscale int8
	window uint16
}

func paramsOf(seg capture.TCPSegment) synParams {
	o := header.ParseTCPOptions(seg.Options)
	mss := o.MSS
	if !o.HasMSS {
		mss = 0
	}
	return synParams{layout: capture.OptionLayout(seg.Options), mss: mss, wscale: o.WindowScale, window: seg.Window}
}

func (p synParams) String() string {
	return fmt.Sprintf("options %q mss %d wscale %d window %d", p.layout, p.mss, p.wscale, p.window)
}

// TestSYNOptionsMatchKernel captures three connections at MTU 1500 in one
// topology: kernel to kernel (over a second veth to a third namespace),
// stack to kernel, and kernel to stack. The stack's SYN must carry the
// same options in the same order (Linux: mss, sackOK, ts, nop, wscale) as
// the kernel's SYN, with the same MSS (MTU - 40 for IPv4, - 60 for IPv6),
// window-scale shift and initial window; likewise its SYN-ACK against the
// kernel's SYN-ACK (spec: TCP SYN options in Linux's order).
func TestSYNOptionsMatchKernel(t *testing.T) {
	// The virtio-net header changes nothing on a SYN: plain links only.
	forEachPeerOf(t, []linkKind{linkTAP, linkAFPacket}, func(t *testing.T, p *peer, fam family) {
		// Kernel-to-kernel reference: p.kernel listens, a third
		// namespace connects to it over its own veth (MTU 1500 too).
		other := netns.New(t, "kk")
		netns.Veth(t, p.kernel, "vk0", other, "vk1")
		refServer, refClient := netip.MustParseAddr("10.213.8.1"), netip.MustParseAddr("10.213.8.2")
		suffix := "/24"
		if fam.kernel.Is6() {
			refServer, refClient = netip.MustParseAddr("fd00:213:8::1"), netip.MustParseAddr("fd00:213:8::2")
			suffix = "/64"
		}
		p.kernel.AddAddr(t, "vk0", refServer.String()+suffix)
		other.AddAddr(t, "vk1", refClient.String()+suffix)
		waitOperUp(t, p.kernel, "vk0")
		waitOperUp(t, other, "vk1")

		refCap := capture.Start(t, p.kernel, "vk0", "tcp")
		stackCap := capture.Start(t, p.kernel, p.dev, "tcp")

		// One kernel listener on all addresses serves the reference and
		// the stack's connect.
		const kernelPort, stackPort = 7000, 7001
		var kln net.Listener
		if err := p.kernel.Do(func() (err error) {
			kln, err = net.Listen("tcp", fmt.Sprintf(":%d", kernelPort))
			return err
		}); err != nil {
			t.Fatalf("kernel listen: %v", err)
		}
		defer kln.Close()
		go acceptAndClose(kln)

		// Kernel SYN and SYN-ACK, kernel to kernel.
		if err := other.Do(func() error { return dialAndClose("tcp", hostPort(refServer, kernelPort)) }); err != nil {
			t.Fatalf("kernel-to-kernel connect: %v", err)
		}

		// Stack SYN: the stack connects to the kernel.
		c, err := p.node.Dial("tcp", hostPort(fam.kernel, kernelPort))
		if err != nil {
			t.Fatalf("stack connect: %v", err)
		}
		c.Close()

		// Stack SYN-ACK: the kernel connects to the stack.
		sln, err := p.node.Listen("tcp", hostPort(fam.stack, stackPort))
		if err != nil {
			t.Fatalf("stack listen: %v", err)
		}
		defer sln.Close()
		go acceptAndClose(sln)
		if err := p.kernel.Do(func() error { return dialAndClose("tcp", hostPort(fam.stack, stackPort)) }); err != nil {
			t.Fatalf("kernel-to-stack connect: %v", err)
		}

		// capture.Start runs tcpdump without --immediate-mode: libpcap
		// hands frames over only when its 1 s buffer timeout expires, and
		// tcpdump drops what is still in the ring when it is stopped.
		time.Sleep(pcapBufferTimeout)
		ref := findHandshake(t, refCap.Stop(t), hostPort(refServer, kernelPort))
		stackFrames := stackCap.Stop(t)
		stackOpen := findHandshake(t, stackFrames, hostPort(fam.kernel, kernelPort))
		kernelOpen := findHandshake(t, stackFrames, hostPort(fam.stack, stackPort))

		kernelSyn, kernelSynAck := paramsOf(ref.syn), paramsOf(ref.synAck)
		stackSyn, stackSynAck := paramsOf(stackOpen.syn), paramsOf(kernelOpen.synAck)
		t.Logf("kernel SYN:     %v", kernelSyn)
		t.Logf("stack SYN:      %v", stackSyn)
		t.Logf("kernel SYN-ACK: %v", kernelSynAck)
		t.Logf("stack SYN-ACK:  %v", stackSynAck)
		// The kernel's SYN on the stack's link must look like the
		// reference, or the two links are not comparable.
		if got := paramsOf(kernelOpen.syn); got != kernelSyn {
			t.Fatalf("kernel SYN on %s link (%v) differs from kernel SYN on veth (%v): links not comparable", p.kind, got, kernelSyn)
		}
		wantMSS := uint16(1500 - 40)
		if fam.kernel.Is6() {
			wantMSS = 1500 - 60
		}
		if kernelSyn.mss != wantMSS {
			t.Fatalf("kernel SYN MSS %d, want %d at MTU 1500", kernelSyn.mss, wantMSS)
		}
		if stackSyn != kernelSyn {
			t.Errorf("stack SYN differs from the kernel's:\n stack  %v\n kernel %v", stackSyn, kernelSyn)
		}
		if stackSynAck != kernelSynAck {
			t.Errorf("stack SYN-ACK differs from the kernel's:\n stack  %v\n kernel %v", stackSynAck, kernelSynAck)
		}
	})
}

// acceptAndClose accepts connections until the listener closes.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// dialAndClose opens a TCP connection and closes it.
func dialAndClose(network, addr string) error {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
