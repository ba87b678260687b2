package socketshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// x86_64 layouts of the structs the served calls pass by pointer.
const (
	sizeofMsghdr  = 56 // struct msghdr
	sizeofMmsghdr = 64 // struct mmsghdr: msghdr + unsigned int msg_len + pad
	sizeofIovec   = 16
	// offsets inside struct msghdr
	offMsgNamelen    = 8
	offMsgControllen = 40
	offMsgFlags      = 48
	offMmsgLen       = 56

	uioMaxIOV = 1024 // UIO_MAXIOV
	// maxRWCount is MAX_RW_COUNT (INT_MAX & PAGE_MASK): Linux silently
	// caps one call's total length to it.
	maxRWCount = math.MaxInt32 &^ 4095
	// maxServedLen bounds what the shim copies for one addressed call; a
	// datagram is at most 64 KiB, and stream data normally takes the
	// conduit.
	maxServedLen = 4 << 20
)

// msghdr is struct msghdr as read from the target.
type msghdr struct {
	name       uint64
	namelen    int32
	iov        uint64
	iovlen     uint64
	control    uint64
	controllen uint64
	flags      int32
}

// iovec is struct iovec.
type iovec struct {
	base, len uint64
}

// readMsghdr reads a msghdr at addr and applies __copy_msghdr's rules:
// no name pointer means no name, a negative msg_namelen is EINVAL, a longer
// one is capped at sizeof(sockaddr_storage), more than UIO_MAXIOV iovecs
// is EMSGSIZE.
func readMsghdr(m memory, addr uint64) (msghdr, error) {
	var b [sizeofMsghdr]byte
	if err := m.read(addr, b[:]); err != nil {
		return msghdr{}, err
	}
	return parseMsghdr(b[:])
}

func parseMsghdr(b []byte) (msghdr, error) {
	le := binary.LittleEndian
	h := msghdr{
		name:       le.Uint64(b[0:]),
		namelen:    int32(le.Uint32(b[8:])),
		iov:        le.Uint64(b[16:]),
		iovlen:     le.Uint64(b[24:]),
		control:    le.Uint64(b[32:]),
		controllen: le.Uint64(b[40:]),
		flags:      int32(le.Uint32(b[48:])),
	}
	if h.name == 0 {
		h.namelen = 0
	}
	if h.namelen < 0 {
		return h, fmt.Errorf("msg_namelen %d: %w", h.namelen, unix.EINVAL)
	}
	if h.namelen > seccomp.MaxSockaddrLen {
		h.namelen = seccomp.MaxSockaddrLen
	}
	if h.iovlen > uioMaxIOV {
		return h, fmt.Errorf("msg_iovlen %d: %w", h.iovlen, unix.EMSGSIZE)
	}
	return h, nil
}

// readIovecs reads n iovecs at addr like import_iovec: a length negative as
// ssize_t is EINVAL, the total is capped at MAX_RW_COUNT (later vectors are
// shortened), more than UIO_MAXIOV is EINVAL.
func readIovecs(m memory, addr uint64, n uint64) ([]iovec, int, error) {
	if n == 0 {
		return nil, 0, nil
	}
	if n > uioMaxIOV {
		return nil, 0, fmt.Errorf("%d iovecs: %w", n, unix.EINVAL)
	}
	b := make([]byte, n*sizeofIovec)
	if err := m.read(addr, b); err != nil {
		return nil, 0, err
	}
	iovs := make([]iovec, n)
	total := 0
	for i := range iovs {
		base := binary.LittleEndian.Uint64(b[i*sizeofIovec:])
		l := binary.LittleEndian.Uint64(b[i*sizeofIovec+8:])
		if int64(l) < 0 {
			return nil, 0, fmt.Errorf("iovec %d length %d: %w", i, int64(l), unix.EINVAL)
		}
		if room := uint64(maxRWCount - total); l > room {
			l = room
		}
		iovs[i] = iovec{base: base, len: l}
		total += int(l)
	}
	return iovs, total, nil
}

// gather copies the iovecs' bytes out of the target (up to limit bytes).
// Empty vectors are skipped without touching their pointers, as the
// kernel's copy does.
func gather(m memory, iovs []iovec, limit int) ([]byte, error) {
	total := 0
	for _, v := range iovs {
		total += int(v.len)
	}
	if total > limit {
		return nil, fmt.Errorf("%d bytes in one addressed call: %w", total, unix.EMSGSIZE)
	}
	out := make([]byte, total)
	off := 0
	for _, v := range iovs {
		if v.len == 0 {
			continue
		}
		if err := m.read(v.base, out[off:off+int(v.len)]); err != nil {
			return nil, err
		}
		off += int(v.len)
	}
	return out, nil
}

// scatter writes data into the iovecs in order; it returns how much fitted.
func scatter(m memory, iovs []iovec, data []byte) (int, error) {
	off := 0
	for _, v := range iovs {
		if off == len(data) {
			break
		}
		if v.len == 0 {
			continue
		}
		n := min(int(v.len), len(data)-off)
		if err := m.write(v.base, data[off:off+n]); err != nil {
			return off, err
		}
		off += n
	}
	return off, nil
}

// asErrno is errors.As for unix.Errno.
func asErrno(err error, e *unix.Errno) bool { return errors.As(err, e) }
