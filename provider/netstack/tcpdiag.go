package netstack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// tcpDiag asks the conduit namespace's sock_diag about a TCP target end
// by its 4-tuple: a target that closed its last fd leaves an orphan
// (inode 0, or no socket once it reset), while one that only shut down
// both directions still has its inode. Our end sees a FIN either way.
type tcpDiag struct {
	mu sync.Mutex
	nl int // NETLINK_SOCK_DIAG socket of the namespace, -1 until made
}

// Sizes of struct inet_diag_req_v2 and the offset of idiag_inode in
// struct inet_diag_msg, after the 16-byte nlmsghdr.
const (
	inetDiagReqLen   = 16 + 56
	inetDiagInodeOff = 16 + 68
)

// tcpInode returns the inode of the TCP socket of the namespace bound to
// local and connected to remote: 0 for an orphan, and found false when
// there is none.
func (n *conduitNet) tcpInode(local, remote netip.AddrPort) (inode uint32, found bool, err error) {
	d := &n.diag
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nl < 0 {
		done := make(chan struct{})
		err = errConduitNetClosed
		select {
		case n.reqs <- func() {
			defer close(done)
			d.nl, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		}:
			<-done
		case <-n.closed:
		}
		if err != nil {
			d.nl = -1
			return 0, false, fmt.Errorf("sock_diag socket: %w", err)
		}
	}
	var req [inetDiagReqLen]byte
	le := binary.LittleEndian // nlmsg and inet_diag host-order fields (x86_64, arm64)
	le.PutUint32(req[0:], inetDiagReqLen)
	le.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	le.PutUint16(req[6:], unix.NLM_F_REQUEST)
	le.PutUint32(req[8:], 1) // seq
	family := unix.AF_INET
	if local.Addr().Is6() {
		family = unix.AF_INET6
	}
	req[16] = byte(family)
	req[17] = unix.IPPROTO_TCP
	le.PutUint32(req[20:], ^uint32(0)) // every state
	id := req[24:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	putDiagAddr(id[4:20], local.Addr())
	putDiagAddr(id[20:36], remote.Addr())
	le.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	le.PutUint32(id[44:], ^uint32(0))
	if err := unix.Sendto(d.nl, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, fmt.Errorf("sock_diag send: %w", err)
	}
	var resp [512]byte
	k, _, err := unix.Recvfrom(d.nl, resp[:], 0)
	if err != nil {
		return 0, false, fmt.Errorf("sock_diag recv: %w", err)
	}
	if k < 16 {
		return 0, false, fmt.Errorf("sock_diag: short reply (%d bytes)", k)
	}
	switch le.Uint16(resp[4:]) {
	case unix.NLMSG_ERROR:
		if k >= 20 && int32(le.Uint32(resp[16:])) == -int32(unix.ENOENT) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("sock_diag: error reply")
	case unix.SOCK_DIAG_BY_FAMILY:
		if k < inetDiagInodeOff+4 {
			return 0, false, fmt.Errorf("sock_diag: short inet_diag_msg (%d bytes)", k)
		}
		return le.Uint32(resp[inetDiagInodeOff:]), true, nil
	}
	return 0, false, fmt.Errorf("sock_diag: unexpected reply type %d", le.Uint16(resp[4:]))
}

// putDiagAddr writes a in inet_diag's 16-byte address field (IPv4 in the
// first 4 bytes).
func putDiagAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}
