package socketshim

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// memory is the target's address space as one notification sees it. The
// Server's implementation checks the notification after every read (data
// is trusted only then) and before every write (the pid is the target's).
type memory interface {
	read(addr uint64, buf []byte) error
	write(addr uint64, buf []byte) error
}

// notifMemory is the memory of one notification's target.
type notifMemory struct {
	l   *seccomp.Listener
	pid uint32
	id  uint64
}

func (m notifMemory) read(addr uint64, buf []byte) error {
	return m.l.ReadMemory(m.pid, m.id, addr, buf)
}

func (m notifMemory) write(addr uint64, buf []byte) error {
	return m.l.WriteMemory(m.pid, m.id, addr, buf)
}

// checkedWriter writes several ranges with one system call and no check of
// the notification, right after a read that checked it.
type checkedWriter interface {
	writeChecked(segs ...seccomp.Segment) error
}

func (m notifMemory) writeChecked(segs ...seccomp.Segment) error {
	return seccomp.WriteMemoryvChecked(m.pid, segs)
}

func readInt32(m memory, addr uint64) (int32, error) {
	var b [4]byte
	if err := m.read(addr, b[:]); err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b[:])), nil
}

func writeInt32(m memory, addr uint64, v int32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return m.write(addr, b[:])
}

// readSockaddr copies a socket address argument in the way Linux's
// move_addr_to_kernel does: a length above sizeof(sockaddr_storage) or
// negative (as an int) is EINVAL, zero reads nothing, a bad pointer EFAULT.
func readSockaddr(m memory, addr uint64, addrlen uint64) ([]byte, error) {
	n := int32(uint32(addrlen))
	if n < 0 || n > seccomp.MaxSockaddrLen {
		return nil, fmt.Errorf("sockaddr length %d: %w", n, unix.EINVAL)
	}
	if n == 0 {
		return nil, nil
	}
	sa := make([]byte, n)
	if err := m.read(addr, sa); err != nil {
		return nil, err
	}
	return sa, nil
}

// writeSockaddr returns an address the way move_addr_to_user does: it reads
// the caller's buffer length at lenPtr (negative: EINVAL), copies
// min(length, len(sa)) bytes and stores len(sa) at lenPtr, so truncation
// is visible. Unless required (getsockname, getpeername), a zero addr or
// lenPtr means no address was asked for (accept, recvfrom).
func writeSockaddr(m memory, addr, lenPtr uint64, sa []byte, required bool) error {
	if !required && (addr == 0 || lenPtr == 0) {
		return nil
	}
	ulen, err := readInt32(m, lenPtr)
	if err != nil {
		return err
	}
	if ulen < 0 {
		return fmt.Errorf("sockaddr buffer length %d: %w", ulen, unix.EINVAL)
	}
	if cw, ok := m.(checkedWriter); ok {
		// readInt32 has just found the notification pending: the
		// address, then the length, in one process_vm_writev.
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(sa)))
		return cw.writeChecked(seccomp.Segment{Addr: addr, Buf: sa[:min(int(ulen), len(sa))]},
			seccomp.Segment{Addr: lenPtr, Buf: l[:]})
	}
	if n := min(int(ulen), len(sa)); n > 0 {
		if err := m.write(addr, sa[:n]); err != nil {
			return err
		}
	}
	return writeInt32(m, lenPtr, int32(len(sa)))
}

// errnoOf extracts the errno to answer with: EFAULT for unreadable memory
// (the seccomp layer wraps it), the errno itself otherwise, 0 if none.
func errnoOf(err error) (unix.Errno, bool) {
	var e unix.Errno
	if asErrno(err, &e) {
		return e, true
	}
	return 0, false
}
