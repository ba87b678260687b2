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

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg, the offset
// of idiag_inode in the latter (all after the 16-byte nlmsghdr), and the
// attribute carrying sk_shutdown (INET_DIAG_SHUTDOWN, always sent).
const (
	inetDiagReqLen   = 16 + 56
	inetDiagMsgEnd   = 16 + 72
	inetDiagInodeOff = 16 + 68
	inetDiagShutdown = 8
)

// tcpSockState is what sock_diag says of one TCP socket.
type tcpSockState struct {
	found bool   // false: no such socket (a reset one is gone at once)
	inode uint32 // 0 for an orphan (closed by its last fd)
	// shutdown is sk_shutdown: RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2).
	// tcp_close sets both before it sends its FIN and orphans the socket
	// only after, so a FIN can arrive while the inode is still there.
	shutdown uint8
}

// tcpLookup asks about the TCP socket of the namespace bound to local and
// connected to remote.
func (n *conduitNet) tcpLookup(local, remote netip.AddrPort) (st tcpSockState, err error) {
	d := &n.diag
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nl < 0 {
		if werr := n.onWorker(func() {
			d.nl, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		}); werr != nil {
			err = werr
		}
		if err != nil {
			d.nl = -1
			return st, fmt.Errorf("sock_diag socket: %w", err)
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
		return st, fmt.Errorf("sock_diag send: %w", err)
	}
	var resp [512]byte
	k, _, err := unix.Recvfrom(d.nl, resp[:], 0)
	if err != nil {
		return st, fmt.Errorf("sock_diag recv: %w", err)
	}
	if k < 16 {
		return st, fmt.Errorf("sock_diag: short reply (%d bytes)", k)
	}
	switch le.Uint16(resp[4:]) {
	case unix.NLMSG_ERROR:
		if k >= 20 && int32(le.Uint32(resp[16:])) == -int32(unix.ENOENT) {
			return st, nil
		}
		return st, fmt.Errorf("sock_diag: error reply")
	case unix.SOCK_DIAG_BY_FAMILY:
		if k < inetDiagMsgEnd {
			return st, fmt.Errorf("sock_diag: short inet_diag_msg (%d bytes)", k)
		}
		st.found = true
		st.inode = le.Uint32(resp[inetDiagInodeOff:])
		end := min(k, int(le.Uint32(resp[0:])))
		for off := inetDiagMsgEnd; off+4 <= end; {
			alen, typ := int(le.Uint16(resp[off:])), le.Uint16(resp[off+2:])
			if alen < 4 || off+alen > end {
				break
			}
			if typ == inetDiagShutdown && alen >= 5 {
				st.shutdown = resp[off+4]
			}
			off += (alen + 3) &^ 3
		}
		return st, nil
	}
	return st, fmt.Errorf("sock_diag: unexpected reply type %d", le.Uint16(resp[4:]))
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
