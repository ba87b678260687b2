package seccomp

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// socketShimFilter notifies socket() for AF_INET/AF_INET6 only, and
// connect() always, as the socket shim will.
func socketShimFilter() Filter {
	return Filter{Rules: []Rule{
		{Syscall: unix.SYS_SOCKET, Action: ActNotify,
			Arg: &ArgMatch{Index: 0, Values: []uint32{unix.AF_INET, unix.AF_INET6}}},
		{Syscall: unix.SYS_CONNECT, Action: ActNotify},
		{Syscall: unix.SYS_GETPEERNAME, Action: ActNotify},
	}}
}

func mustBuild(t *testing.T, f Filter) []unix.SockFilter {
	t.Helper()
	prog, err := f.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return prog
}

func TestFilterDecisions(t *testing.T) {
	f := socketShimFilter()
	f.Rules = append(f.Rules,
		Rule{Syscall: unix.SYS_SETSOCKOPT, Action: ActErrno(unix.EPERM)},
		// Masked: sendto with MSG_OOB among its flags.
		Rule{Syscall: unix.SYS_SENDTO, Action: ActNotify,
			Arg: &ArgMatch{Index: 3, Mask: unix.MSG_OOB, Values: []uint32{unix.MSG_OOB}, Else: ActErrno(unix.EACCES)}},
	)
	prog := mustBuild(t, f)
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	cases := []struct {
		name string
		data SeccompData
		want uint32
	}{
		{"i386 arch killed", SeccompData{Nr: unix.SYS_READ, Arch: 0x40000003}, unix.SECCOMP_RET_KILL_PROCESS},
		{"x32 syscall ENOSYS", SeccompData{Nr: 0x40000000 + unix.SYS_SOCKET, Arch: x86}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"io_uring_setup ENOSYS", SeccompData{Nr: unix.SYS_IO_URING_SETUP, Arch: x86}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"io_uring_enter ENOSYS", SeccompData{Nr: unix.SYS_IO_URING_ENTER, Arch: x86}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"io_uring_register ENOSYS", SeccompData{Nr: unix.SYS_IO_URING_REGISTER, Arch: x86}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"socket AF_INET notified", SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM}}, unix.SECCOMP_RET_USER_NOTIF},
		{"socket AF_INET6 notified", SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_INET6}}, unix.SECCOMP_RET_USER_NOTIF},
		{"socket AF_UNIX allowed", SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_UNIX}}, unix.SECCOMP_RET_ALLOW},
		{"socket AF_NETLINK allowed", SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_NETLINK}}, unix.SECCOMP_RET_ALLOW},
		// The kernel takes family as an int: high bits are ignored, as here.
		{"socket family high bits ignored", SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{1<<32 | unix.AF_INET}}, unix.SECCOMP_RET_USER_NOTIF},
		{"connect notified", SeccompData{Nr: unix.SYS_CONNECT, Arch: x86}, unix.SECCOMP_RET_USER_NOTIF},
		{"getpeername notified", SeccompData{Nr: unix.SYS_GETPEERNAME, Arch: x86}, unix.SECCOMP_RET_USER_NOTIF},
		{"setsockopt errno", SeccompData{Nr: unix.SYS_SETSOCKOPT, Arch: x86}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"sendto masked match", SeccompData{Nr: unix.SYS_SENDTO, Arch: x86, Args: [6]uint64{3, 0, 0, unix.MSG_OOB | unix.MSG_DONTWAIT}}, unix.SECCOMP_RET_USER_NOTIF},
		{"sendto masked else", SeccompData{Nr: unix.SYS_SENDTO, Arch: x86, Args: [6]uint64{3, 0, 0, unix.MSG_DONTWAIT}}, unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{"read allowed", SeccompData{Nr: unix.SYS_READ, Arch: x86}, unix.SECCOMP_RET_ALLOW},
		{"nr 0 allowed", SeccompData{Nr: 0, Arch: x86}, unix.SECCOMP_RET_ALLOW},
	}
	for _, c := range cases {
		got, err := Evaluate(prog, &c.data)
		if err != nil {
			t.Fatalf("%s: Evaluate: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: filter returns %s, want %s\n%s", c.name, RetString(got), RetString(c.want), Disassemble(prog))
		}
	}
}

func TestFilterBuildRejectsBadRules(t *testing.T) {
	for name, f := range map[string]Filter{
		"duplicate syscall": {Rules: []Rule{{Syscall: unix.SYS_CONNECT, Action: ActNotify}, {Syscall: unix.SYS_CONNECT}}},
		"io_uring rule":     {Rules: []Rule{{Syscall: unix.SYS_IO_URING_SETUP, Action: ActNotify}}},
		"negative syscall":  {Rules: []Rule{{Syscall: -1, Action: ActNotify}}},
		"x32 syscall":       {Rules: []Rule{{Syscall: 0x40000000, Action: ActNotify}}},
		"bad action":        {Rules: []Rule{{Syscall: unix.SYS_CONNECT, Action: Action(7)}}},
		"arg index":         {Rules: []Rule{{Syscall: unix.SYS_SOCKET, Action: ActNotify, Arg: &ArgMatch{Index: 6, Values: []uint32{2}}}}},
		"no values":         {Rules: []Rule{{Syscall: unix.SYS_SOCKET, Action: ActNotify, Arg: &ArgMatch{}}}},
		"too many values":   {Rules: []Rule{{Syscall: unix.SYS_SOCKET, Action: ActNotify, Arg: &ArgMatch{Values: make([]uint32, maxArgValues+1)}}}},
	} {
		if prog, err := f.Build(); err == nil {
			t.Errorf("%s: Build accepted it:\n%s", name, Disassemble(prog))
		}
	}
}

// TestFilterLongArgList checks the 8-bit jump offsets at the largest
// accepted value list: every value matches and a miss goes to Else.
func TestFilterLongArgList(t *testing.T) {
	vals := make([]uint32, maxArgValues)
	for i := range vals {
		vals[i] = uint32(1000 + i)
	}
	prog := mustBuild(t, Filter{Rules: []Rule{
		{Syscall: unix.SYS_IOCTL, Action: ActNotify, Arg: &ArgMatch{Index: 1, Values: vals, Else: ActErrno(unix.ENOTTY)}},
		{Syscall: unix.SYS_CONNECT, Action: ActNotify},
	}})
	for _, v := range []uint32{1000, 1100, 1199} {
		d := SeccompData{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, uint64(v)}}
		if got, _ := Evaluate(prog, &d); got != unix.SECCOMP_RET_USER_NOTIF {
			t.Errorf("ioctl %d: %s, want USER_NOTIF", v, RetString(got))
		}
	}
	d := SeccompData{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, 1200}}
	if got, _ := Evaluate(prog, &d); got != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOTTY) {
		t.Errorf("ioctl 1200: %s, want ERRNO(ENOTTY)", RetString(got))
	}
	d = SeccompData{Nr: unix.SYS_CONNECT, Arch: unix.AUDIT_ARCH_X86_64}
	if got, _ := Evaluate(prog, &d); got != unix.SECCOMP_RET_USER_NOTIF {
		t.Errorf("connect after long rule: %s, want USER_NOTIF", RetString(got))
	}
}

func TestDisassemble(t *testing.T) {
	out := Disassemble(mustBuild(t, socketShimFilter()))
	for _, want := range []string{
		"0000: ld [4] arch\n",
		"0001: jeq #0xc000003e jt 3 jf 2\n",
		"0002: ret KILL_PROCESS\n",
		"0003: ld [0] nr\n",
		"0004: jge #0x40000000 jt 5 jf 6\n",
		"0005: ret ERRNO(ENOSYS)\n",
		"ld [16] args[0].lo\n",
		"ret USER_NOTIF\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("disassembly lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "ret ALLOW\n") {
		t.Errorf("program does not end in ALLOW:\n%s", out)
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{
		ActAllow: "allow", ActNotify: "notify", ActKillProcess: "kill_process",
		ActErrno(unix.ECONNREFUSED): "errno(ECONNREFUSED)",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint32(a), got, want)
		}
	}
	if e := ActErrno(unix.ENOSYS).Errno(); e != unix.ENOSYS {
		t.Errorf("ActErrno(ENOSYS).Errno() = %v", e)
	}
}
