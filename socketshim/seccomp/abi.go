package seccomp

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompData is struct seccomp_data: what a BPF filter sees (64 bytes).
type SeccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif is struct seccomp_notif as filled by SECCOMP_IOCTL_NOTIF_RECV (80 bytes).
// PID is in the listener owner's PID namespace.
type Notif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  SeccompData
}

// notifResp is struct seccomp_notif_resp (24 bytes). Error is a negative errno.
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifAddFD is struct seccomp_notif_addfd (24 bytes).
type notifAddFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// NotifSizes is struct seccomp_notif_sizes as returned by SECCOMP_GET_NOTIF_SIZES.
type NotifSizes struct {
	Notif     uint16
	NotifResp uint16
	Data      uint16
}

// Byte offsets inside SeccompData, for BPF_LD|BPF_ABS.
const (
	offsetNr   = 0
	offsetArch = 4
	offsetArgs = 16
)

// KernelNotifSizes asks the kernel for the sizes of its notification structs.
func KernelNotifSizes() (NotifSizes, error) {
	var s NotifSizes
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s)))
	if errno != 0 {
		return NotifSizes{}, fmt.Errorf("seccomp(SECCOMP_GET_NOTIF_SIZES): %w", errno)
	}
	return s, nil
}

// abiMismatch reports how our struct sizes differ from the kernel's, or nil.
func abiMismatch(k NotifSizes) error {
	ours := NotifSizes{
		Notif:     uint16(unsafe.Sizeof(Notif{})),
		NotifResp: uint16(unsafe.Sizeof(notifResp{})),
		Data:      uint16(unsafe.Sizeof(SeccompData{})),
	}
	// The kernel copies its own struct sizes to and from user memory, so any
	// difference (larger or smaller) would corrupt memory or lose fields.
	if k != ours {
		return fmt.Errorf("seccomp notification ABI mismatch: kernel %+v, package %+v", k, ours)
	}
	return nil
}

// checkABI runs once per process; the result is cached because the kernel
// cannot change under a running process.
var checkABI = sync.OnceValue(func() error {
	k, err := KernelNotifSizes()
	if err != nil {
		return err
	}
	return abiMismatch(k)
})

// CheckABI verifies that the kernel supports user notification and that its
// struct sizes match this package's. InstallFilter and NewListener call it.
func CheckABI() error { return checkABI() }
