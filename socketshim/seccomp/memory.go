package seccomp

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxSockaddrLen is sizeof(struct sockaddr_storage): Linux refuses longer
// address lengths with EINVAL (move_addr_to_kernel).
const MaxSockaddrLen = 128

// Sockaddr is a socket address copied from the target, without allocation.
type Sockaddr struct {
	Len  int
	Data [MaxSockaddrLen]byte
}

// Bytes returns the valid part of the address.
func (s *Sockaddr) Bytes() []byte { return s.Data[:s.Len] }

// Family returns sa_family (0 if shorter than 2 bytes).
func (s *Sockaddr) Family() uint16 {
	if s.Len < 2 {
		return 0
	}
	return binary.LittleEndian.Uint16(s.Data[:2])
}

// ReadMemory copies len(buf) bytes at addr in process pid into buf, then
// checks that notification id is still pending: only then does the data
// belong to the syscall being decided (the pid could otherwise have been
// reused, or the target have run on). Unreadable addresses give EFAULT,
// a dead target ErrTargetGone.
func (l *Listener) ReadMemory(pid uint32, id uint64, addr uint64, buf []byte) error {
	err := targetIO(pid, addr, buf, false)
	if verr := l.IDValid(id); verr != nil {
		return verr
	}
	if err != nil {
		return fmt.Errorf("seccomp: read target %d memory at %#x+%d: %w", pid, addr, len(buf), err)
	}
	return nil
}

// WriteMemory copies buf to addr in process pid. The notification is
// checked before the write, so a reused pid is never written to. Whether
// the target still sees the result is what the answer that follows
// reports (ErrTargetGone from Respond, AddFD or the next memory access):
// a check after the write would leave the same window before the answer.
func (l *Listener) WriteMemory(pid uint32, id uint64, addr uint64, buf []byte) error {
	return l.WriteMemoryv(pid, id, []Segment{{Addr: addr, Buf: buf}})
}

// Segment is a range of target memory and the local bytes for it.
type Segment struct {
	Addr uint64
	Buf  []byte
}

// WriteMemoryv writes the segments in order with one check of the
// notification and one process_vm_writev. A segment that cannot be
// written completely is EFAULT; the ones before it are written, as the
// kernel's copies in order would have.
func (l *Listener) WriteMemoryv(pid uint32, id uint64, segs []Segment) error {
	if err := l.IDValid(id); err != nil {
		return err
	}
	return WriteMemoryvChecked(pid, segs)
}

// WriteMemoryvChecked is WriteMemoryv without the check, for a caller that
// has just checked the notification itself (a ReadMemory or IDValid that
// succeeded, with nothing slow since): the pid is still the target's.
func WriteMemoryvChecked(pid uint32, segs []Segment) error {
	if err := targetWritev(pid, segs); err != nil {
		if err == unix.ESRCH { // the target died since the check
			return fmt.Errorf("seccomp: write target %d memory: %w", pid, ErrTargetGone)
		}
		return fmt.Errorf("seccomp: write target %d memory: %w", pid, err)
	}
	return nil
}

// ReadInt32 reads a C int (e.g. a socklen_t or an option value).
func (l *Listener) ReadInt32(pid uint32, id uint64, addr uint64) (int32, error) {
	var b [4]byte
	if err := l.ReadMemory(pid, id, addr, b[:]); err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b[:])), nil
}

// WriteInt32 writes a C int.
func (l *Listener) WriteInt32(pid uint32, id uint64, addr uint64, v int32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return l.WriteMemory(pid, id, addr, b[:])
}

// ReadSockaddr reads a socket address argument (connect, bind, sendto) the
// way move_addr_to_kernel does: addrlen > 128 (or negative as an int) is
// EINVAL, 0 reads nothing, an unreadable address is EFAULT.
func (l *Listener) ReadSockaddr(pid uint32, id uint64, addr uint64, addrlen uint64) (Sockaddr, error) {
	var sa Sockaddr
	n := int32(uint32(addrlen)) // the kernel takes an int
	if n < 0 || n > MaxSockaddrLen {
		return sa, fmt.Errorf("seccomp: sockaddr length %d: %w", n, unix.EINVAL)
	}
	if n == 0 {
		return sa, nil
	}
	if err := l.ReadMemory(pid, id, addr, sa.Data[:n]); err != nil {
		return sa, err
	}
	sa.Len = int(n)
	return sa, nil
}

// WriteSockaddr returns an address to the target the way move_addr_to_user
// does (accept, getpeername, recvfrom): it reads the caller's buffer length
// at addrlenPtr (negative: EINVAL), copies min(length, len(sa)) bytes to
// addr, and stores the full len(sa) at addrlenPtr so truncation is visible.
// A zero addr or addrlenPtr means the caller did not ask for the address.
func (l *Listener) WriteSockaddr(pid uint32, id uint64, addr, addrlenPtr uint64, sa []byte) error {
	if addr == 0 || addrlenPtr == 0 {
		return nil
	}
	ulen, err := l.ReadInt32(pid, id, addrlenPtr)
	if err != nil {
		return err
	}
	if ulen < 0 {
		return fmt.Errorf("seccomp: sockaddr buffer length %d: %w", ulen, unix.EINVAL)
	}
	n := min(int(ulen), len(sa))
	if n > 0 {
		if err := l.WriteMemory(pid, id, addr, sa[:n]); err != nil {
			return err
		}
	}
	return l.WriteInt32(pid, id, addrlenPtr, int32(len(sa)))
}

// targetIO reads (or writes) the target's memory with process_vm_readv
// (process_vm_writev), falling back to /proc/pid/mem when the syscall is
// unavailable or refused. A range that is partly unmapped is EFAULT.
// Writes through /proc/pid/mem also succeed on read-only mappings (like a
// debugger) where the kernel would fault, so only writable targets such as
// sockaddr/optval buffers are passed.
func targetIO(pid uint32, addr uint64, buf []byte, write bool) error {
	if len(buf) == 0 {
		return nil
	}
	if addr == 0 || addr > math.MaxInt64-uint64(len(buf)) {
		return unix.EFAULT
	}
	local := [1]unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := [1]unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	var n int
	var err error
	if write {
		n, err = unix.ProcessVMWritev(int(pid), local[:], remote[:], 0)
	} else {
		n, err = unix.ProcessVMReadv(int(pid), local[:], remote[:], 0)
	}
	switch {
	case err == nil && n == len(buf):
		return nil
	case err == nil:
		return unix.EFAULT // partial: the range crosses into an unmapped page
	case err == unix.EPERM || err == unix.ENOSYS:
		return procMemIO(pid, addr, buf, write)
	}
	return err
}

// maxSegments bounds the segments of one vectored write (the iovecs live
// on the stack).
const maxSegments = 4

// targetWritev writes segs with one process_vm_writev. Empty segments are
// skipped; more than maxSegments, an address targetIO refuses before the
// call, or a refused process_vm_writev, are written one by one in order
// with targetIO (which stops at the first failing segment).
func targetWritev(pid uint32, segs []Segment) error {
	var local [maxSegments]unix.Iovec
	var remote [maxSegments]unix.RemoteIovec
	k, total := 0, 0
	for _, sg := range segs {
		if len(sg.Buf) == 0 {
			continue
		}
		if k == maxSegments || sg.Addr == 0 || sg.Addr > math.MaxInt64-uint64(len(sg.Buf)) {
			return writeEach(pid, segs)
		}
		local[k] = unix.Iovec{Base: &sg.Buf[0], Len: uint64(len(sg.Buf))}
		remote[k] = unix.RemoteIovec{Base: uintptr(sg.Addr), Len: len(sg.Buf)}
		k++
		total += len(sg.Buf)
	}
	if k == 0 {
		return nil
	}
	n, err := unix.ProcessVMWritev(int(pid), local[:k], remote[:k], 0)
	switch {
	case err == nil && n == total:
		return nil
	case err == nil:
		return unix.EFAULT // stopped at a segment that is not (all) mapped
	case err == unix.EPERM || err == unix.ENOSYS:
		return writeEach(pid, segs)
	}
	return err
}

func writeEach(pid uint32, segs []Segment) error {
	for _, sg := range segs {
		if err := targetIO(pid, sg.Addr, sg.Buf, true); err != nil {
			return err
		}
	}
	return nil
}

func procMemIO(pid uint32, addr uint64, buf []byte, write bool) error {
	mode := unix.O_RDONLY
	if write {
		mode = unix.O_WRONLY
	}
	fd, err := unix.Open("/proc/"+strconv.FormatUint(uint64(pid), 10)+"/mem", mode|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return unix.ESRCH
		}
		return err
	}
	defer unix.Close(fd)
	var n int
	if write {
		n, err = unix.Pwrite(fd, buf, int64(addr))
	} else {
		n, err = unix.Pread(fd, buf, int64(addr))
	}
	if err == unix.EIO || (err == nil && n != len(buf)) {
		return unix.EFAULT
	}
	return err
}
