package ipv6

import (
	"testing"

	"github.com/netprov/netprov/stack/header"
)

// FuzzHandlePacket feeds arbitrary IPv6 packets to the endpoint: nothing
// may panic, whatever the headers say.
func FuzzHandlePacket(f *testing.F) {
	f.Add(ipPacket(peerAddr, ourAddr, udpNumber, 64, udpLike(8)))
	f.Add(ipPacket(peerAddr, ourAddr, header.ProtoHopByHop, 64, concat([]byte{header.ProtoDestOpts, 0, 0x9e, 4, 0, 0, 0, 0},
		[]byte{udpNumber, 0, optPadN, 4, 0, 0, 0, 0}, udpLike(4))))
	f.Add(rawFragment(1, 0, true, udpLike(24))[header.EthernetLen:])
	f.Add(rawFragment(1, 32, false, udpLike(24))[header.EthernetLen:])
	f.Add(nsFrame(peerAddr, header.SolicitedNodeMulticast(ourAddr), ourAddr, 255, true)[header.EthernetLen:])
	f.Add(errorFrame(header.ICMPv6PacketTooBig, 0, 1300, ipPacket(ourAddr, peerAddr, udpNumber, 64, udpLike(8)))[header.EthernetLen:])
	f.Fuzz(func(t *testing.T, ip []byte) {
		env := newTestEnv(t, 1500)
		env.knowPeer()
		env.link.Inject(ethFrame(ourMAC, ip))
		env.link.Inject(ethFrame(header.IPv6MulticastMAC(allNodes), ip))
		env.clk.Advance(env.p.Config().FragTimeout)
	})
}
