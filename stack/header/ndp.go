package header

import "net/netip"

// NDP option types (RFC 4861 §4.6).
const (
	NDPOptSourceLL uint8 = 1
	NDPOptTargetLL uint8 = 2
)

// Neighbor advertisement flag bits (first byte of the body).
const (
	ndpFlagRouter    = 0x80
	ndpFlagSolicited = 0x40
	ndpFlagOverride  = 0x20
)

// ndpNeighborLen is the body length of a neighbor solicitation or
// advertisement without options: 4 reserved/flag bytes and the target.
const ndpNeighborLen = 20

// ndpLLOptLen is the length of a link-layer address option for Ethernet.
const ndpLLOptLen = 8

// NDPNeighborSolicit is a parsed neighbor solicitation body (RFC 4861 §4.3).
type NDPNeighborSolicit struct {
	Target      netip.Addr
	SourceLL    MAC
	HasSourceLL bool
}

// NDPNeighborAdvert is a parsed neighbor advertisement body (RFC 4861 §4.4).
type NDPNeighborAdvert struct {
	Router, Solicited, Override bool
	Target                      netip.Addr
	TargetLL                    MAC
	HasTargetLL                 bool
}

// parseNDPLLOption walks the options opts like Linux ndisc_parse_options: a
// zero length or an option running past the end makes the message
// malformed; unknown options are skipped; of repeated options the first
// counts. It returns the Ethernet address of the option of type want. A
// link-layer option whose length is not 8 bytes is malformed (Linux drops
// the message: "invalid link-layer address length").
func parseNDPLLOption(opts []byte, want uint8) (mac MAC, found bool, err error) {
	for len(opts) > 0 {
		if len(opts) < 2 {
			return MAC{}, false, ErrMalformed
		}
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return MAC{}, false, ErrMalformed
		}
		if opts[0] == want && !found {
			if n != ndpLLOptLen {
				return MAC{}, false, ErrMalformed
			}
			mac, found = MAC(opts[2:8]), true
		}
		opts = opts[n:]
	}
	return mac, found, nil
}

// ParseNDPNeighborSolicit parses body, the ICMPv6 message after its 4-byte
// type/code/checksum. Semantic checks (hop limit 255, code 0, target not
// multicast) are the caller's.
func ParseNDPNeighborSolicit(body []byte) (NDPNeighborSolicit, error) {
	if len(body) < ndpNeighborLen {
		return NDPNeighborSolicit{}, ErrTruncated
	}
	mac, ok, err := parseNDPLLOption(body[ndpNeighborLen:], NDPOptSourceLL)
	if err != nil {
		return NDPNeighborSolicit{}, err
	}
	return NDPNeighborSolicit{
		Target:      netip.AddrFrom16([16]byte(body[4:20])),
		SourceLL:    mac,
		HasSourceLL: ok,
	}, nil
}

// Len returns the body length Emit writes.
func (m NDPNeighborSolicit) Len() int {
	if m.HasSourceLL {
		return ndpNeighborLen + ndpLLOptLen
	}
	return ndpNeighborLen
}

// Emit writes the body (reserved, target, options) into b[:m.Len()].
func (m NDPNeighborSolicit) Emit(b []byte) {
	_ = b[m.Len()-1]
	clear(b[0:4])
	t := m.Target.As16()
	copy(b[4:20], t[:])
	if m.HasSourceLL {
		emitNDPLLOption(b[ndpNeighborLen:], NDPOptSourceLL, m.SourceLL)
	}
}

// ParseNDPNeighborAdvert parses body, the ICMPv6 message after its 4-byte
// type/code/checksum.
func ParseNDPNeighborAdvert(body []byte) (NDPNeighborAdvert, error) {
	if len(body) < ndpNeighborLen {
		return NDPNeighborAdvert{}, ErrTruncated
	}
	mac, ok, err := parseNDPLLOption(body[ndpNeighborLen:], NDPOptTargetLL)
	if err != nil {
		return NDPNeighborAdvert{}, err
	}
	return NDPNeighborAdvert{
		Router:      body[0]&ndpFlagRouter != 0,
		Solicited:   body[0]&ndpFlagSolicited != 0,
		Override:    body[0]&ndpFlagOverride != 0,
		Target:      netip.AddrFrom16([16]byte(body[4:20])),
		TargetLL:    mac,
		HasTargetLL: ok,
	}, nil
}

// Len returns the body length Emit writes.
func (m NDPNeighborAdvert) Len() int {
	if m.HasTargetLL {
		return ndpNeighborLen + ndpLLOptLen
	}
	return ndpNeighborLen
}

// Emit writes the body (flags, reserved, target, options) into b[:m.Len()].
func (m NDPNeighborAdvert) Emit(b []byte) {
	_ = b[m.Len()-1]
	clear(b[0:4])
	if m.Router {
		b[0] |= ndpFlagRouter
	}
	if m.Solicited {
		b[0] |= ndpFlagSolicited
	}
	if m.Override {
		b[0] |= ndpFlagOverride
	}
	t := m.Target.As16()
	copy(b[4:20], t[:])
	if m.HasTargetLL {
		emitNDPLLOption(b[ndpNeighborLen:], NDPOptTargetLL, m.TargetLL)
	}
}

func emitNDPLLOption(b []byte, typ uint8, mac MAC) {
	b[0], b[1] = typ, 1
	copy(b[2:8], mac[:])
}
