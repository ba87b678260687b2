package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// x32SyscallBit marks x32 ABI syscall numbers on x86_64 (__X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// maxProgramLen is BPF_MAXINSNS.
const maxProgramLen = 4096

// maxArgValues keeps an arg-conditional rule's jumps within BPF's 8-bit
// jump offsets.
const maxArgValues = 200

// ioURingSyscalls are always refused with ENOSYS: io_uring would perform
// socket operations without syscalls the filter can see, and programs fall
// back to plain syscalls on ENOSYS.
var ioURingSyscalls = [...]int{unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER}

// Rule says what to do with one syscall.
type Rule struct {
	Syscall int // unix.SYS_* number (x86_64)
	Action  Action
	// Arg, when non-nil, makes Action conditional on one argument;
	// otherwise Action applies to every call.
	Arg *ArgMatch
}

// ArgMatch applies a rule's Action when the low 32 bits of argument Index,
// masked with Mask, equal one of Values. Only the low half is compared: it
// is enough for the int arguments it is meant for (socket family, fd), which
// the kernel itself truncates to 32 bits.
type ArgMatch struct {
	Index int    // 0..5
	Mask  uint32 // 0 means all 32 bits (of the low half)
	// Wide also requires the high 32 bits to be zero for a match (a
	// pointer compared with NULL); otherwise only the low 32 bits count.
	Wide   bool
	Values []uint32 // values; with Ranges, 1..200 compares in all
	// Ranges also match (inclusive bounds, after Mask), e.g. a block of
	// ioctl request numbers.
	Ranges []ArgRange
	Else   Action // action when nothing matches (zero value: allow)
}

// ArgRange is an inclusive range of argument values.
type ArgRange struct{ Lo, Hi uint32 }

// Filter is a seccomp program description for x86_64. In order, the program:
// kills the process for any other architecture, fails x32 syscalls with
// ENOSYS, fails io_uring_setup/enter/register with ENOSYS, applies Rules
// (first match wins; each syscall may appear once) and allows the rest.
type Filter struct {
	Rules []Rule
}

// Build compiles the filter to classic BPF.
func (f Filter) Build() ([]unix.SockFilter, error) {
	seen := make(map[int]bool, len(f.Rules)+len(ioURingSyscalls))
	for _, nr := range ioURingSyscalls {
		seen[nr] = true
	}
	prog := []unix.SockFilter{
		loadAbs(offsetArch),
		jump(unix.BPF_JEQ, unix.AUDIT_ARCH_X86_64, 1, 0),
		ret(unix.SECCOMP_RET_KILL_PROCESS),
		loadAbs(offsetNr),
		jump(unix.BPF_JGE, x32SyscallBit, 0, 1),
		ret(ActErrno(unix.ENOSYS).Ret()),
	}
	for _, nr := range ioURingSyscalls {
		prog = append(prog, jump(unix.BPF_JEQ, uint32(nr), 0, 1), ret(ActErrno(unix.ENOSYS).Ret()))
	}
	for i, r := range f.Rules {
		if r.Syscall < 0 || r.Syscall >= x32SyscallBit {
			return nil, fmt.Errorf("seccomp filter rule %d: syscall %d out of range", i, r.Syscall)
		}
		if seen[r.Syscall] {
			return nil, fmt.Errorf("seccomp filter rule %d: syscall %d already has a rule (or is io_uring)", i, r.Syscall)
		}
		seen[r.Syscall] = true
		if !r.Action.valid() {
			return nil, fmt.Errorf("seccomp filter rule %d: invalid action %v", i, r.Action)
		}
		body, err := ruleBody(r)
		if err != nil {
			return nil, fmt.Errorf("seccomp filter rule %d (syscall %d): %w", i, r.Syscall, err)
		}
		// The accumulator holds nr here; every body ends in a return, so
		// skipping it on mismatch lands on the next rule's compare.
		prog = append(prog, jump(unix.BPF_JEQ, uint32(r.Syscall), 0, uint8(len(body))))
		prog = append(prog, body...)
	}
	prog = append(prog, ret(unix.SECCOMP_RET_ALLOW))
	if len(prog) > maxProgramLen {
		return nil, fmt.Errorf("seccomp filter: %d instructions, limit is %d", len(prog), maxProgramLen)
	}
	return prog, nil
}

// ruleBody is the code run once the syscall number matched; it always ends
// in a return.
func ruleBody(r Rule) ([]unix.SockFilter, error) {
	if r.Arg == nil {
		return []unix.SockFilter{ret(r.Action.Ret())}, nil
	}
	m := r.Arg
	if m.Index < 0 || m.Index > 5 {
		return nil, fmt.Errorf("argument index %d out of range 0..5", m.Index)
	}
	if nc := len(m.Values) + 2*len(m.Ranges); nc == 0 || nc > maxArgValues {
		return nil, fmt.Errorf("argument match needs 1..%d compares (a range counts 2), got %d", maxArgValues, nc)
	}
	for _, r := range m.Ranges {
		if r.Lo > r.Hi {
			return nil, fmt.Errorf("argument range %#x..%#x is empty", r.Lo, r.Hi)
		}
	}
	if !m.Else.valid() {
		return nil, fmt.Errorf("invalid else action %v", m.Else)
	}
	// Low 32 bits of args[i] at its offset, high ones 4 bytes on: x86_64
	// is little-endian.
	var body []unix.SockFilter
	if m.Wide {
		// A high half that is not zero goes to the else-return.
		body = append(body, loadAbs(offsetArgs+8*uint32(m.Index)+4), jump(unix.BPF_JEQ, 0, 1, 0), ret(m.Else.Ret()))
	}
	body = append(body, loadAbs(offsetArgs+8*uint32(m.Index)))
	if m.Mask != 0 && m.Mask != 0xffffffff {
		body = append(body, unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: m.Mask})
	}
	// Each compare jumps over the remaining compares and the else-return
	// to the match-return; rest counts the instructions after it.
	rest := len(m.Values) + 2*len(m.Ranges)
	for _, v := range m.Values {
		rest--
		body = append(body, jump(unix.BPF_JEQ, v, uint8(rest+1), 0))
	}
	for _, r := range m.Ranges {
		// x < Lo: skip this range's second compare; x > Hi: fall to the
		// next range; otherwise jump to the match-return.
		rest -= 2
		body = append(body, jump(unix.BPF_JGE, r.Lo, 0, 1), jump(unix.BPF_JGT, r.Hi, 0, uint8(rest+1)))
	}
	body = append(body, ret(m.Else.Ret()), ret(r.Action.Ret()))
	return body, nil
}

func loadAbs(off uint32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
}

func jump(op uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, Jt: jt, Jf: jf, K: k}
}

func ret(k uint32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k}
}
