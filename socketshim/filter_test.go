package socketshim

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/socketshim/seccomp"
)

// The served filter traps the socket calls the Server serves; the
// pass-through filter (provider host) traps only socket() of AF_INET and
// AF_INET6, so every later call on an injected kernel socket runs natively.
func TestFilters(t *testing.T) {
	const x86 = unix.AUDIT_ARCH_X86_64
	cases := []struct {
		name                string
		data                seccomp.SeccompData
		served, passThrough uint32
	}{
		{"socket AF_INET", seccomp.SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_USER_NOTIF},
		{"socket AF_INET6", seccomp.SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_USER_NOTIF},
		{"socket AF_UNIX", seccomp.SeccompData{Nr: unix.SYS_SOCKET, Arch: x86, Args: [6]uint64{unix.AF_UNIX}},
			unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW},
		{"connect", seccomp.SeccompData{Nr: unix.SYS_CONNECT, Arch: x86},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"getsockname", seccomp.SeccompData{Nr: unix.SYS_GETSOCKNAME, Arch: x86},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"sendto with an address", seccomp.SeccompData{Nr: unix.SYS_SENDTO, Arch: x86, Args: [6]uint64{3, 0, 1, 0, 0x7000}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"send", seccomp.SeccompData{Nr: unix.SYS_SENDTO, Arch: x86, Args: [6]uint64{3, 0, 1, 0, 0}},
			unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW},
		{"sendto with an address whose low half is zero", seccomp.SeccompData{Nr: unix.SYS_SENDTO, Arch: x86, Args: [6]uint64{3, 0, 1, 0, 0x7f00_0000_0000}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"recvfrom with an address whose low half is zero", seccomp.SeccompData{Nr: unix.SYS_RECVFROM, Arch: x86, Args: [6]uint64{3, 0, 1, 0, 0x5500_0000_0000}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"recv", seccomp.SeccompData{Nr: unix.SYS_RECVFROM, Arch: x86, Args: [6]uint64{3, 0, 1, 0, 0}},
			unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW},
		{"ioctl FIONREAD", seccomp.SeccompData{Nr: unix.SYS_IOCTL, Arch: x86, Args: [6]uint64{3, reqFIONREAD}},
			unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW},
		{"io_uring_setup", seccomp.SeccompData{Nr: unix.SYS_IO_URING_SETUP, Arch: x86},
			unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	}
	served, err := Filter().Build()
	if err != nil {
		t.Fatal(err)
	}
	passthrough, err := PassthroughFilter().Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		for _, f := range []struct {
			name string
			prog []unix.SockFilter
			want uint32
		}{{"served", served, c.served}, {"pass-through", passthrough, c.passThrough}} {
			got, err := seccomp.Evaluate(f.prog, &c.data)
			if err != nil {
				t.Fatalf("%s filter, %s: %v", f.name, c.name, err)
			}
			if got != f.want {
				t.Errorf("%s filter, %s: %#x, want %#x", f.name, c.name, got, f.want)
			}
		}
	}
}
