package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// secrets are the per-stack keys of the keyed hashes Linux derives from
// net_secret / ts_secret / syncookie_secret: ISNs (RFC 6528), timestamp
// offsets, ephemeral port offsets and SYN cookies.
type secrets struct {
	isn, ts, port, cookie [2]uint64
	cookie2               [2]uint64
}

func newSecrets() secrets {
	var b [80]byte
	_, _ = rand.Read(b[:])
	k := func(i int) [2]uint64 {
		return [2]uint64{binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])}
	}
	return secrets{isn: k(0), ts: k(16), port: k(32), cookie: k(48), cookie2: k(64)}
}

// tupleWords packs two addresses and two ports into words for siphash.
// IPv4 addresses take one word each half; IPv6 the full 16 bytes.
func tupleWords(buf *[5]uint64, a, b netip.Addr, pa, pb uint16, extra uint32) []uint64 {
	if a.Is4() && b.Is4() {
		x, y := a.As4(), b.As4()
		buf[0] = uint64(binary.BigEndian.Uint32(x[:]))<<32 | uint64(binary.BigEndian.Uint32(y[:]))
		buf[1] = uint64(pa)<<48 | uint64(pb)<<32 | uint64(extra)
		return buf[:2]
	}
	x, y := a.As16(), b.As16()
	buf[0] = binary.BigEndian.Uint64(x[:8])
	buf[1] = binary.BigEndian.Uint64(x[8:])
	buf[2] = binary.BigEndian.Uint64(y[:8])
	buf[3] = binary.BigEndian.Uint64(y[8:])
	buf[4] = uint64(pa)<<48 | uint64(pb)<<32 | uint64(extra)
	return buf[:5]
}

// siphash is SipHash-2-4 over whole 64-bit words (Linux siphash_*u64).
func siphash(key [2]uint64, words []uint64) uint64 {
	v0 := key[0] ^ 0x736f6d6570736575
	v1 := key[1] ^ 0x646f72616e646f6d
	v2 := key[0] ^ 0x6c7967656e657261
	v3 := key[1] ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	for _, m := range words {
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	b := uint64(len(words)*8) << 56
	v3 ^= b
	round()
	round()
	v0 ^= b
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

// isn returns the initial sequence number of a connection (secure_tcp_seq,
// spec behaviour 31): a keyed hash of the 4-tuple plus a clock term that
// advances once per 64 ns.
func (p *Protocol) isn(laddr, raddr netip.Addr, lport, rport uint16, now time.Time) uint32 {
	var buf [5]uint64
	h := siphash(p.secrets.isn, tupleWords(&buf, laddr, raddr, lport, rport, 0))
	return uint32(h) + uint32(uint64(now.UnixNano())>>6)
}

// tsOffset returns the timestamp offset of a connection between two
// addresses (secure_tcp_ts_off): timestamps do not leak the host uptime.
func (p *Protocol) tsOffset(laddr, raddr netip.Addr) uint32 {
	var buf [5]uint64
	return uint32(siphash(p.secrets.ts, tupleWords(&buf, laddr, raddr, 0, 0, 0)))
}

// portOffset is inet_sk_port_offset: the keyed hash that starts the
// ephemeral port search for a (saddr, daddr, dport).
func (p *Protocol) portOffset(laddr, raddr netip.Addr, rport uint16) uint32 {
	var buf [5]uint64
	return uint32(siphash(p.secrets.port, tupleWords(&buf, laddr, raddr, 0, rport, 0)))
}
