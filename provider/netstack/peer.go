package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock_diag for AF_UNIX (linux/unix_diag.h).
const (
	udiagShowPeer = 0x4 // UDIAG_SHOW_PEER
	unixDiagPeer  = 2   // UNIX_DIAG_PEER
	// nlmsghdr (16) + unix_diag_req (24).
	unixDiagReqLen = 16 + 24
	// nlmsghdr (16) + unix_diag_msg (16), then attributes.
	unixDiagMsgLen = 16 + 16
)

// errNoDiag: the kernel has no AF_UNIX sock_diag (CONFIG_UNIX_DIAG).
var errNoDiag = errors.New("netstack: no unix sock_diag")

// targetReleased reports whether the target end of the conduit whose
// provider end is fd has been released: the target closed its last
// reference (and the provider holds no copy). POLLHUP on our end cannot
// tell this from a target that shut down both directions but keeps its
// fd: unix_release_sock and shutdown(SHUT_RDWR) both set SHUTDOWN_MASK on
// our end. sock_diag can: the peer of a released socket is orphaned, so
// its inode (UNIX_DIAG_PEER, sock_i_ino) reads 0, as `ss -x` shows.
func targetReleased(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("fstat conduit: %w", err)
	}
	peer, err := unixPeerInode(uint32(st.Ino))
	if err != nil {
		return false, err
	}
	return peer == 0, nil
}

// unixPeerInode asks sock_diag for the peer inode of the AF_UNIX socket
// with inode ino (in this network namespace): 0 when the peer is gone.
func unixPeerInode(ino uint32) (uint32, error) {
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(nl)
	var req [unixDiagReqLen]byte
	le := binary.LittleEndian // nlmsg fields are host order (x86_64, arm64)
	le.PutUint32(req[0:], unixDiagReqLen)
	le.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	le.PutUint16(req[6:], unix.NLM_F_REQUEST)
	le.PutUint32(req[8:], 1) // seq
	req[16] = unix.AF_UNIX
	le.PutUint32(req[20:], ^uint32(0)) // every state
	le.PutUint32(req[24:], ino)
	le.PutUint32(req[28:], udiagShowPeer)
	le.PutUint32(req[32:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	le.PutUint32(req[36:], ^uint32(0))
	if err := unix.Sendto(nl, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag send: %w", err)
	}
	var resp [512]byte
	n, _, err := unix.Recvfrom(nl, resp[:], 0)
	if err != nil {
		return 0, fmt.Errorf("sock_diag recv: %w", err)
	}
	return parseUnixDiagPeer(resp[:n])
}

// parseUnixDiagPeer reads UNIX_DIAG_PEER from a sock_diag answer; an
// answer without it (no peer) is 0.
func parseUnixDiagPeer(b []byte) (uint32, error) {
	le := binary.LittleEndian
	if len(b) < 16 {
		return 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(b))
	}
	switch le.Uint16(b[4:]) {
	case unix.NLMSG_ERROR:
		if len(b) >= 20 {
			if e := int32(le.Uint32(b[16:])); e != 0 {
				if unix.Errno(-e) == unix.ENOENT || unix.Errno(-e) == unix.EOPNOTSUPP {
					return 0, fmt.Errorf("%w: %w", errNoDiag, unix.Errno(-e))
				}
				return 0, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
			}
		}
		return 0, errors.New("sock_diag: empty error answer")
	case unix.SOCK_DIAG_BY_FAMILY:
	default:
		return 0, fmt.Errorf("sock_diag: answer type %d", le.Uint16(b[4:]))
	}
	l := int(le.Uint32(b[0:]))
	if l > len(b) || l < unixDiagMsgLen {
		return 0, fmt.Errorf("sock_diag: bad length %d", l)
	}
	attrs := b[unixDiagMsgLen:l]
	const rtaHdr = int(unsafe.Sizeof(unix.RtAttr{}))
	for len(attrs) >= rtaHdr {
		alen := int(le.Uint16(attrs[0:]))
		if alen < rtaHdr || alen > len(attrs) {
			break
		}
		if le.Uint16(attrs[2:]) == unixDiagPeer && alen >= rtaHdr+4 {
			return le.Uint32(attrs[rtaHdr:]), nil
		}
		step := (alen + 3) &^ 3
		if step > len(attrs) {
			break
		}
		attrs = attrs[step:]
	}
	return 0, nil
}
