package header

import "encoding/binary"

// TCP option kinds and lengths (RFC 9293, 7323, 2018).
const (
	TCPOptEOL           = 0
	TCPOptNOP           = 1
	TCPOptMSS           = 2
	TCPOptWindowScale   = 3
	TCPOptSACKPermitted = 4
	TCPOptSACK          = 5
	TCPOptTimestamps    = 8

	TCPOptMSSLen           = 4
	TCPOptWindowScaleLen   = 3
	TCPOptSACKPermittedLen = 2
	TCPOptTimestampsLen    = 10
	TCPOptSACKBaseLen      = 2
	TCPOptSACKBlockLen     = 8

	// TCPMaxWindowScale is the largest shift honoured (RFC 7323 §2.3);
	// Linux clamps larger received values to it.
	TCPMaxWindowScale = 14
	// TCPMaxSACKBlocks is the most SACK blocks an option can carry.
	TCPMaxSACKBlocks = 4
	// TCPMaxOptionsLen is the size of the options area.
	TCPMaxOptionsLen = 40
)

// SACKBlock is one SACK block: the sequence range [Start, End).
type SACKBlock struct {
	Start, End uint32
}

// TCPOptions holds the options the stack understands.
type TCPOptions struct {
	MSS           uint16
	HasMSS        bool
	WindowScale   int8 // -1 when absent
	SACKPermitted bool
	HasTimestamps bool
	TSVal, TSEcr  uint32
	SACKBlocks    [TCPMaxSACKBlocks]SACKBlock
	NumSACKBlocks int
}

// ParseTCPOptions parses the options area b with the semantics of Linux
// tcp_parse_options: EOL ends parsing, NOP is skipped, other options are
// skipped by their length, and a length below 2 or past the end stops
// parsing (options already seen are kept). An option with the wrong length
// for its kind is ignored. A zero MSS is ignored (Linux keeps its clamp); a
// window scale above 14 is clamped to 14. Of repeated options the last wins.
// Whether an option applies (SYN only, sysctls) is the caller's decision.
func ParseTCPOptions(b []byte) TCPOptions {
	o := TCPOptions{WindowScale: -1}
	for len(b) > 0 {
		kind := b[0]
		switch kind {
		case TCPOptEOL:
			return o
		case TCPOptNOP:
			b = b[1:]
			continue
		}
		if len(b) < 2 {
			return o
		}
		size := int(b[1])
		if size < 2 || size > len(b) {
			return o
		}
		switch kind {
		case TCPOptMSS:
			if size == TCPOptMSSLen {
				if mss := binary.BigEndian.Uint16(b[2:4]); mss != 0 {
					o.MSS, o.HasMSS = mss, true
				}
			}
		case TCPOptWindowScale:
			if size == TCPOptWindowScaleLen {
				o.WindowScale = int8(min(b[2], TCPMaxWindowScale))
			}
		case TCPOptSACKPermitted:
			if size == TCPOptSACKPermittedLen {
				o.SACKPermitted = true
			}
		case TCPOptTimestamps:
			if size == TCPOptTimestampsLen {
				o.HasTimestamps = true
				o.TSVal = binary.BigEndian.Uint32(b[2:6])
				o.TSEcr = binary.BigEndian.Uint32(b[6:10])
			}
		case TCPOptSACK:
			if size >= TCPOptSACKBaseLen+TCPOptSACKBlockLen && (size-TCPOptSACKBaseLen)%TCPOptSACKBlockLen == 0 {
				n := min((size-TCPOptSACKBaseLen)/TCPOptSACKBlockLen, TCPMaxSACKBlocks)
				for i := 0; i < n; i++ {
					p := b[TCPOptSACKBaseLen+i*TCPOptSACKBlockLen:]
					o.SACKBlocks[i] = SACKBlock{Start: binary.BigEndian.Uint32(p[0:4]), End: binary.BigEndian.Uint32(p[4:8])}
				}
				o.NumSACKBlocks = n
			}
		}
		b = b[size:]
	}
	return o
}

// sackBlocksToWrite returns how many SACK blocks fit next to timestamps in
// the 40-byte options area (Linux tcp_established_options).
func sackBlocksToWrite(o TCPOptions) int {
	if o.NumSACKBlocks <= 0 {
		return 0
	}
	remaining := TCPMaxOptionsLen
	if o.HasTimestamps {
		remaining -= 12
	}
	return min(o.NumSACKBlocks, TCPMaxSACKBlocks, (remaining-4)/TCPOptSACKBlockLen)
}

// TCPOptionsLen returns the number of bytes EncodeSYNOptions (syn) or
// EncodeOptions (!syn) would write for o.
func TCPOptionsLen(o TCPOptions, syn bool) int {
	n := 0
	if syn {
		if o.HasMSS {
			n += 4
		}
		if o.HasTimestamps {
			n += 12 // SACK-permitted, if any, shares the timestamp word
		} else if o.SACKPermitted {
			n += 4
		}
		if o.WindowScale >= 0 {
			n += 4
		}
		return n
	}
	if o.HasTimestamps {
		n += 12
	}
	if k := sackBlocksToWrite(o); k > 0 {
		n += 4 + k*TCPOptSACKBlockLen
	}
	return n
}

// EncodeSYNOptions writes the options of a SYN or SYN-ACK into b in Linux's
// exact order and packing (tcp_options_write; spec behaviour 36): MSS;
// SACK-permitted packed with timestamps (4,2,8,10,tsval,tsecr) or NOP,NOP,TS
// or NOP,NOP,SACK-permitted; then NOP,WS. SACK blocks are not written. It
// returns the number of bytes written, a multiple of 4 (20 with all on).
func EncodeSYNOptions(b []byte, o TCPOptions) int {
	n := 0
	if o.HasMSS {
		binary.BigEndian.PutUint32(b[n:], TCPOptMSS<<24|TCPOptMSSLen<<16|uint32(o.MSS))
		n += 4
	}
	if o.HasTimestamps {
		if o.SACKPermitted {
			binary.BigEndian.PutUint32(b[n:], TCPOptSACKPermitted<<24|TCPOptSACKPermittedLen<<16|TCPOptTimestamps<<8|TCPOptTimestampsLen)
		} else {
			binary.BigEndian.PutUint32(b[n:], TCPOptNOP<<24|TCPOptNOP<<16|TCPOptTimestamps<<8|TCPOptTimestampsLen)
		}
		binary.BigEndian.PutUint32(b[n+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[n+8:], o.TSEcr)
		n += 12
	} else if o.SACKPermitted {
		binary.BigEndian.PutUint32(b[n:], TCPOptNOP<<24|TCPOptNOP<<16|TCPOptSACKPermitted<<8|TCPOptSACKPermittedLen)
		n += 4
	}
	if o.WindowScale >= 0 {
		binary.BigEndian.PutUint32(b[n:], TCPOptNOP<<24|TCPOptWindowScale<<16|TCPOptWindowScaleLen<<8|uint32(uint8(o.WindowScale)))
		n += 4
	}
	return n
}

// EncodeOptions writes the options of a non-SYN segment into b in Linux's
// order: NOP,NOP,TS if HasTimestamps, then NOP,NOP,SACK with as many blocks
// as fit (3 with timestamps, 4 without). MSS, window scale and
// SACK-permitted are ignored. It returns the number of bytes written.
func EncodeOptions(b []byte, o TCPOptions) int {
	n := 0
	if o.HasTimestamps {
		binary.BigEndian.PutUint32(b[n:], TCPOptNOP<<24|TCPOptNOP<<16|TCPOptTimestamps<<8|TCPOptTimestampsLen)
		binary.BigEndian.PutUint32(b[n+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[n+8:], o.TSEcr)
		n += 12
	}
	if k := sackBlocksToWrite(o); k > 0 {
		binary.BigEndian.PutUint32(b[n:], TCPOptNOP<<24|TCPOptNOP<<16|TCPOptSACK<<8|uint32(TCPOptSACKBaseLen+k*TCPOptSACKBlockLen))
		n += 4
		for i := 0; i < k; i++ {
			binary.BigEndian.PutUint32(b[n:], o.SACKBlocks[i].Start)
			binary.BigEndian.PutUint32(b[n+4:], o.SACKBlocks[i].End)
			n += 8
		}
	}
	return n
}
