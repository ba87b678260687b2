package dgram

import (
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/header"
	"golang.org/x/sys/unix"
)

// ICMPErrno converts an ICMP error about a datagram this host sent into
// the errno a socket reports and whether Linux treats it as a hard error
// (icmp_err_convert / icmpv6_err_convert and the adjustments of
// __udp4_lib_err / __udp6_lib_err). Unconnected sockets without
// IP_RECVERR ignore every error; connected ones keep only hard errors.
func ICMPErrno(e stack.ICMPError, v4 bool) (unix.Errno, bool) {
	if v4 {
		switch e.Type {
		case header.ICMPv4DstUnreachable:
			return icmpv4Unreach(e.Code)
		case header.ICMPv4TimeExceeded:
			return unix.EHOSTUNREACH, false
		case header.ICMPv4ParamProblem:
			return unix.EPROTO, true
		}
	} else {
		switch e.Type {
		case header.ICMPv6DstUnreachable:
			switch e.Code {
			case header.ICMPv6CodeNoRoute:
				return unix.ENETUNREACH, false
			case header.ICMPv6CodeAdminProhibited, 5, 6: // policy fail, reject route
				return unix.EACCES, true
			case header.ICMPv6CodePortUnreachable:
				return unix.ECONNREFUSED, true
			default:
				return unix.EHOSTUNREACH, false
			}
		case header.ICMPv6PacketTooBig:
			// With the default IPV6_PMTUDISC_WANT the error is hard.
			return unix.EMSGSIZE, true
		case header.ICMPv6TimeExceeded:
			return unix.EHOSTUNREACH, false
		case header.ICMPv6ParamProblem:
			return unix.EPROTO, true
		}
	}
	// Not a raw type we know: fall back to the protocol-independent kind.
	switch e.Kind {
	case stack.ICMPNetUnreachable:
		return unix.ENETUNREACH, false
	case stack.ICMPProtoUnreachable:
		return unix.ENOPROTOOPT, true
	case stack.ICMPPortUnreachable:
		return unix.ECONNREFUSED, true
	case stack.ICMPFragNeeded:
		return unix.EMSGSIZE, true
	case stack.ICMPAdminProhibited:
		return unix.EHOSTUNREACH, true
	case stack.ICMPParamProblem:
		return unix.EPROTO, true
	default:
		return unix.EHOSTUNREACH, false
	}
}

// icmpv4Unreach is icmp_err_convert[] for destination-unreachable codes.
func icmpv4Unreach(code uint8) (unix.Errno, bool) {
	switch code {
	case header.ICMPv4CodeNetUnreachable:
		return unix.ENETUNREACH, false
	case header.ICMPv4CodeHostUnreachable:
		return unix.EHOSTUNREACH, false
	case header.ICMPv4CodeProtoUnreachable:
		return unix.ENOPROTOOPT, true
	case header.ICMPv4CodePortUnreachable:
		return unix.ECONNREFUSED, true
	case header.ICMPv4CodeFragmentationNeeded:
		// __udp4_lib_err: with pmtudisc != IP_PMTUDISC_DONT (UDP's default
		// is WANT) the error is EMSGSIZE and hard.
		return unix.EMSGSIZE, true
	case header.ICMPv4CodeSourceRouteFailed:
		return unix.EOPNOTSUPP, false
	case header.ICMPv4CodeNetUnknown:
		return unix.ENETUNREACH, true
	case header.ICMPv4CodeHostUnknown:
		return unix.EHOSTDOWN, true
	case header.ICMPv4CodeHostIsolated:
		return unix.ENONET, true
	case header.ICMPv4CodeNetProhibited:
		return unix.ENETUNREACH, true
	case header.ICMPv4CodeHostProhibited:
		return unix.EHOSTUNREACH, true
	case header.ICMPv4CodeNetTOSUnreachable:
		return unix.ENETUNREACH, false
	case header.ICMPv4CodeHostTOSUnreachable:
		return unix.EHOSTUNREACH, false
	case header.ICMPv4CodeAdminProhibited:
		return unix.EHOSTUNREACH, true
	default:
		// Codes beyond NR_ICMP_UNREACH: __udp4_lib_err uses EHOSTUNREACH.
		return unix.EHOSTUNREACH, false
	}
}
