package ipv6

import "github.com/netprov/netprov/stack/header"

// Hop-by-hop and destination option processing (RFC 8200 §4.2), after
// Linux's ip6_parse_tlv.
//
// TODO(header): the option TLV walk belongs in stack/header next to
// WalkIPv6Extensions; it is here until that package offers one.

type optionsVerdict uint8

const (
	optionsOK      optionsVerdict = iota
	optionsDiscard                // drop silently
	optionsError                  // drop; a parameter problem was sent
)

// Option types the stack knows.
const (
	optPad1        = 0
	optPadN        = 1
	optRouterAlert = 5
	optJumbo       = 0xc2
)

// Linux's limits: net.ipv6.max_hbh_opts_number and max_dst_opts_number are
// 8, and at most 7 bytes of padding may follow each other.
const (
	maxOptions = 8
	maxPadding = 7
)

// checkOptions processes the options of the hop-by-hop and destination
// options headers in the first end bytes of the payload of the datagram
// data, and the segments-left rule of routing headers. The headers' lengths
// were validated by WalkIPv6Extensions.
func (e *Endpoint) checkOptions(f header.IPv6Fields, data []byte, end int, linkMulticast bool) optionsVerdict {
	payload := data[header.IPv6Len:]
	nh, off := f.NextHeader, 0
	for off < end {
		switch nh {
		case header.ProtoFragment:
			nh, off = payload[off], off+header.IPv6FragmentLen
			continue
		case header.ProtoRouting:
			// A host is the final destination only when no segments are
			// left; otherwise it cannot process any routing type
			// (RH0 is deprecated, RFC 5095): parameter problem at the type.
			if payload[off+3] != 0 {
				e.sendError(data, f, linkMulticast, header.ICMPv6ParamProblem,
					header.ICMPv6CodeErroneousHeader, uint32(header.IPv6Len+off+2))
				return optionsError
			}
		case header.ProtoHopByHop, header.ProtoDestOpts:
			n := (int(payload[off+1]) + 1) * 8
			if v := e.checkTLVs(f, nh, data, header.IPv6Len+off+2, header.IPv6Len+off+n, linkMulticast); v != optionsOK {
				return v
			}
		default:
			return optionsOK
		}
		nh, off = payload[off], off+(int(payload[off+1])+1)*8
	}
	return optionsOK
}

// checkTLVs walks the options in data[start:end] of a header of type nh.
func (e *Endpoint) checkTLVs(f header.IPv6Fields, nh uint8, data []byte, start, end int, linkMulticast bool) optionsVerdict {
	payload := data
	count, pad := 0, 0
	for i := start; i < end; {
		t := payload[i]
		if t == optPad1 {
			pad++
			if pad > maxPadding {
				return optionsDiscard
			}
			i++
			continue
		}
		if i+2 > end || i+2+int(payload[i+1]) > end {
			return optionsDiscard
		}
		l := int(payload[i+1])
		switch {
		case t == optPadN:
			pad += l + 2
			if pad > maxPadding {
				return optionsDiscard
			}
			for _, b := range payload[i+2 : i+2+l] {
				if b != 0 {
					return optionsDiscard
				}
			}
		case nh == header.ProtoHopByHop && t == optRouterAlert:
			// Used by MLD; nothing to do for a host.
			pad = 0
		case nh == header.ProtoHopByHop && t == optJumbo:
			// Jumbograms need payload length 0, which ParseIPv6 does
			// not accept for a non-empty packet: not supported.
			return optionsDiscard
		default:
			pad = 0
			// The two high bits say what to do with an unknown option.
			switch t >> 6 {
			case 0: // skip it
			case 1:
				return optionsDiscard
			case 3:
				if f.Dst.IsMulticast() {
					return optionsDiscard
				}
				fallthrough
			case 2:
				e.sendError(data, f, linkMulticast, header.ICMPv6ParamProblem,
					header.ICMPv6CodeUnrecognizedOption, uint32(i))
				return optionsError
			}
		}
		if t != optPadN {
			count++
			if count > maxOptions {
				return optionsDiscard
			}
		}
		i += 2 + l
	}
	return optionsOK
}
