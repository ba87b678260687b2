package capture

import (
	"fmt"
	"strings"

	"github.com/netprov/netprov/stack/header"
)

// TCPSegment is a TCP segment found in an Ethernet frame.
type TCPSegment struct {
	Src, Dst string // address:port
	Flags    header.TCPFlags
	Window   uint16
	Options  []byte
	Payload  int
}

// ParseTCP extracts the TCP segment of an Ethernet frame carrying IPv4 or
// IPv6; ok is false for anything else.
func ParseTCP(frame []byte) (seg TCPSegment, ok bool) {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		return seg, false
	}
	b := frame[header.EthernetLen:]
	var src, dst string
	var l4 []byte
	switch eth.EtherType {
	case header.EtherTypeIPv4:
		ip, err := header.ParseIPv4(b)
		if err != nil || ip.Protocol != header.ProtoTCP {
			return seg, false
		}
		src, dst = ip.Src.String(), ip.Dst.String()
		l4 = b[ip.HeaderLen():ip.TotalLen]
	case header.EtherTypeIPv6:
		ip, err := header.ParseIPv6(b)
		if err != nil || ip.NextHeader != header.ProtoTCP || len(b) < header.IPv6Len+int(ip.PayloadLen) {
			return seg, false
		}
		src, dst = "["+ip.Src.String()+"]", "["+ip.Dst.String()+"]"
		l4 = b[header.IPv6Len : header.IPv6Len+int(ip.PayloadLen)]
	default:
		return seg, false
	}
	f, err := header.ParseTCP(l4)
	if err != nil {
		return seg, false
	}
	t := header.TCP(l4)
	return TCPSegment{
		Src: fmt.Sprintf("%s:%d", src, f.SrcPort), Dst: fmt.Sprintf("%s:%d", dst, f.DstPort),
		Flags: f.Flags, Window: f.Window, Options: t.Options(), Payload: len(t.Payload()),
	}, true
}

// OptionLayout names the TCP options in wire order with their lengths, for
// example "mss/4 sackOK/2 ts/10 nop wscale/3", so that two stacks' option
// layouts compare independently of the values (timestamps, ports).
func OptionLayout(opts []byte) string {
	names := map[byte]string{2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 8: "ts", 34: "tfo"}
	var out []string
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case 0:
			out = append(out, "eol")
			return strings.Join(out, " ")
		case 1:
			out = append(out, "nop")
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			out = append(out, "malformed")
			break
		}
		n := int(opts[i+1])
		name := names[kind]
		if name == "" {
			name = fmt.Sprintf("opt%d", kind)
		}
		out = append(out, fmt.Sprintf("%s/%d", name, n))
		i += n
	}
	return strings.Join(out, " ")
}
