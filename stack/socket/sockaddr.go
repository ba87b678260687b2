package socket

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// Sizes of the socket address structures.
const (
	// SizeofSockaddrInet4 is sizeof(struct sockaddr_in).
	SizeofSockaddrInet4 = 16
	// SizeofSockaddrInet6 is sizeof(struct sockaddr_in6).
	SizeofSockaddrInet6 = 28
	// sin6LenRFC2133 is SIN6_LEN_RFC2133: a sockaddr_in6 without
	// sin6_scope_id, which Linux still accepts.
	sin6LenRFC2133 = 24
	// maxSockaddrLen is sizeof(struct sockaddr_storage): longer addrlens
	// fail with EINVAL in move_addr_to_kernel.
	maxSockaddrLen = 128
)

// sockaddrFamily returns sa_family, or EINVAL if sa is too short to hold
// one (or longer than a sockaddr_storage).
func sockaddrFamily(sa []byte) (int, error) {
	if len(sa) > maxSockaddrLen || len(sa) < 2 {
		return 0, unix.EINVAL
	}
	return int(binary.NativeEndian.Uint16(sa)), nil
}

// parseInet4 reads a struct sockaddr_in of at least 16 bytes; the family
// is not checked. sin_zero is ignored (spec 14).
func parseInet4(sa []byte) (netip.AddrPort, error) {
	if len(sa) < SizeofSockaddrInet4 {
		return netip.AddrPort{}, unix.EINVAL
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), nil
}

// parseInet6 reads a struct sockaddr_in6 of at least SIN6_LEN_RFC2133
// bytes. The scope id, when the structure is long enough to hold one and
// it is non-zero, becomes the address's zone (the decimal interface
// index) for the addresses that need one (link-local and multicast with
// link scope), as Linux only reads it for those.
func parseInet6(sa []byte) (netip.AddrPort, error) {
	if len(sa) < sin6LenRFC2133 {
		return netip.AddrPort{}, unix.EINVAL
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	a := netip.AddrFrom16([16]byte(sa[8:24]))
	if len(sa) >= SizeofSockaddrInet6 {
		if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 && needsScope(a) {
			a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
	}
	return netip.AddrPortFrom(a, port), nil
}

func needsScope(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}

// FormatSockaddr encodes ap as a struct sockaddr_in (family AF_INET) or
// sockaddr_in6 (AF_INET6; IPv4 addresses become v4-mapped and a zone
// becomes sin6_scope_id).
func FormatSockaddr(family int, ap netip.AddrPort) []byte {
	if family == unix.AF_INET {
		b := make([]byte, SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:4], ap.Port())
		a4 := ap.Addr().Unmap().As4()
		copy(b[4:8], a4[:])
		return b
	}
	b := make([]byte, SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	a := ap.Addr()
	if !a.IsValid() {
		a = netip.IPv6Unspecified()
	}
	a16 := a.As16()
	copy(b[8:24], a16[:])
	if z := a.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			binary.NativeEndian.PutUint32(b[24:28], uint32(id))
		}
	}
	return b
}

// ParseSockaddr decodes a struct sockaddr_in or sockaddr_in6 by its
// family, with Linux's length rules (EINVAL when short, EAFNOSUPPORT for
// other families). It is the plain decoder; the socket calls add each
// call's own family rules.
func ParseSockaddr(sa []byte) (netip.AddrPort, error) {
	fam, err := sockaddrFamily(sa)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch fam {
	case unix.AF_INET:
		return parseInet4(sa)
	case unix.AF_INET6:
		return parseInet6(sa)
	}
	return netip.AddrPort{}, unix.EAFNOSUPPORT
}

// parseBind decodes a bind(2) address for a socket of family (inet_bind /
// inet6_bind: short → EINVAL, wrong family → EAFNOSUPPORT, except that an
// AF_INET socket accepts AF_UNSPEC with INADDR_ANY).
func parseBind(family int, sa []byte) (netip.AddrPort, error) {
	if len(sa) > maxSockaddrLen {
		return netip.AddrPort{}, unix.EINVAL
	}
	if family == unix.AF_INET {
		ap, err := parseInet4(sa)
		if err != nil {
			return ap, err
		}
		switch int(binary.NativeEndian.Uint16(sa)) {
		case unix.AF_INET:
			return ap, nil
		case unix.AF_UNSPEC:
			if ap.Addr().IsUnspecified() {
				return ap, nil
			}
		}
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	ap, err := parseInet6(sa)
	if err != nil {
		return ap, err
	}
	if int(binary.NativeEndian.Uint16(sa)) != unix.AF_INET6 {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return ap, nil
}

// parsePeer decodes the address of connect(2) or sendto(2) on a socket of
// family after the AF_UNSPEC case was handled: AF_INET sockets need a full
// sockaddr_in of family AF_INET; AF_INET6 sockets a sockaddr_in6 of at
// least SIN6_LEN_RFC2133 bytes, or, for datagram sockets, a sockaddr_in
// (ip6_datagram_connect and udpv6_sendmsg take one as a v4-mapped peer).
func parsePeer(family int, dgram bool, sa []byte) (netip.AddrPort, error) {
	fam, err := sockaddrFamily(sa)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if family == unix.AF_INET {
		ap, err := parseInet4(sa)
		if err != nil {
			return ap, err
		}
		if fam != unix.AF_INET {
			return netip.AddrPort{}, unix.EAFNOSUPPORT
		}
		return ap, nil
	}
	if dgram && fam == unix.AF_INET {
		ap, err := parseInet4(sa)
		if err != nil {
			return ap, err
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()), nil
	}
	ap, err := parseInet6(sa)
	if err != nil {
		return ap, err
	}
	if fam != unix.AF_INET6 {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return ap, nil
}
