package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestArgRanges: a rule with values and inclusive ranges matches exactly
// the listed values and the range bounds and interiors, nothing else.
func TestArgRanges(t *testing.T) {
	f := Filter{Rules: []Rule{{Syscall: unix.SYS_IOCTL, Action: ActNotify, Arg: &ArgMatch{
		Index:  1,
		Values: []uint32{0x541b, unix.TIOCOUTQ},
		Ranges: []ArgRange{{0x8900, 0x89ff}, {0x9000, 0x9000}},
	}}}}
	prog := mustBuild(t, f)
	for _, c := range []struct {
		req    uint32
		notify bool
	}{
		{0x541b, true}, {unix.TIOCOUTQ, true}, {unix.TCGETS, false},
		{0x88ff, false}, {0x8900, true}, {0x8915, true}, {0x89ff, true}, {0x8a00, false},
		{0x8fff, false}, {0x9000, true}, {0x9001, false}, {0, false}, {0xffffffff, false},
	} {
		d := SeccompData{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{3, uint64(c.req)}}
		got, err := Evaluate(prog, &d)
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(unix.SECCOMP_RET_ALLOW)
		if c.notify {
			want = unix.SECCOMP_RET_USER_NOTIF
		}
		if got != want {
			t.Errorf("ioctl request %#x: %s, want %s", c.req, RetString(got), RetString(want))
		}
	}
	if _, err := (Filter{Rules: []Rule{{Syscall: unix.SYS_IOCTL, Action: ActNotify,
		Arg: &ArgMatch{Index: 1, Ranges: []ArgRange{{2, 1}}}}}}).Build(); err == nil {
		t.Error("empty range accepted")
	}
}
