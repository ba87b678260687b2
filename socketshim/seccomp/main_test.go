package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The integration tests re-execute the test binary. testRoleEnv selects what
// the child does: "stage" runs RunStage, which executes the test binary a
// second time as "target" under the filter; testScenarioEnv picks the
// filter and what the target does.
const (
	testRoleEnv     = "NETPROV_SECCOMP_TEST_ROLE"
	testScenarioEnv = "NETPROV_SECCOMP_TEST_SCENARIO"
	testCallsEnv    = "NETPROV_SECCOMP_TEST_CALLS"
)

// Addresses the target connects to. They are never put on a wire: the
// supervisor answers connect() itself.
var testPeer = [4]byte{10, 213, 0, 1}

const testPeerPort = 4242

func TestMain(m *testing.M) {
	switch os.Getenv(testRoleEnv) {
	case "stage":
		runTestStage()
	case "target":
		runTestTarget()
	}
	os.Exit(m.Run())
}

// scenarioFilter is the filter each scenario's stage installs.
func scenarioFilter(scenario string) Filter {
	f := socketShimFilter()
	switch scenario {
	case "pidfd":
		// A trapped sendmsg forces the pidfd_getfd hand-over.
		f.Rules = append(f.Rules, Rule{Syscall: unix.SYS_SENDMSG, Action: ActNotify})
	case "trapread":
		f.Rules = append(f.Rules, Rule{Syscall: unix.SYS_READ, Action: ActNotify})
	}
	return f
}

func runTestStage() {
	scenario := os.Getenv(testScenarioEnv)
	prog, err := scenarioFilter(scenario).Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(2)
	}
	env := append(withoutEnv(os.Environ(), testRoleEnv), testRoleEnv+"=target")
	err = RunStage(StageConfig{Program: prog, Path: self, Argv: []string{self}, Env: env})
	fmt.Fprintln(os.Stderr, "stage:", err)
	os.Exit(3)
}

// runTestTarget runs under the filter and prints "key=value" lines that the
// test asserts on.
func runTestTarget() {
	switch os.Getenv(testScenarioEnv) {
	case "basic":
		targetBasic()
	case "connect", "pidfd":
		err := rawConnect(999, sockaddrIn(testPeer, testPeerPort))
		fmt.Printf("connect=%s\n", errName(err))
	case "calls":
		// testCallsEnv trapped getpeername calls, for the benchmarks.
		n, _ := strconv.Atoi(os.Getenv(testCallsEnv))
		var sa [16]byte
		l := uint32(len(sa))
		ok := 0
		for range n {
			_, _, e := unix.Syscall(unix.SYS_GETPEERNAME, 999, uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&l)))
			if e == 0 {
				ok++
			}
		}
		fmt.Printf("calls=%d\n", ok)
	case "block":
		// Blocks in a notified connect until the supervisor kills us.
		rawConnect(999, sockaddrIn(testPeer, testPeerPort))
		fmt.Println("connect returned")
	}
	os.Exit(0)
}

func targetBasic() {
	// 1. socket(AF_INET) is notified and answered with an injected fd.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	fmt.Printf("socket_inet=%d socket_inet_err=%s\n", fd, errName(err))
	if err != nil {
		return
	}
	flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	fmt.Printf("socket_inet_cloexec=%t\n", flags&unix.FD_CLOEXEC != 0)
	// 2. The data path is native: this write is not trapped.
	n, err := unix.Write(fd, []byte("ping-from-target"))
	fmt.Printf("write_n=%d write_err=%s\n", n, errName(err))
	// 3. connect() is answered from the sockaddr in our memory.
	fmt.Printf("connect=%s\n", errName(rawConnect(fd, sockaddrIn(testPeer, testPeerPort))))
	// 4. An unreadable sockaddr gives EFAULT, an oversized length EINVAL.
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), 8, 16)
	fmt.Printf("connect_badptr=%s\n", errName(errnoErr(e)))
	sa := sockaddrIn(testPeer, testPeerPort)
	_, _, e = unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), 200)
	fmt.Printf("connect_biglen=%s\n", errName(errnoErr(e)))
	// 5. getpeername with a short buffer: truncated copy, full length back.
	var peer [16]byte
	for i := range peer {
		peer[i] = 0xee
	}
	plen := uint32(8)
	_, _, e = unix.Syscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&peer[0])), uintptr(unsafe.Pointer(&plen)))
	fmt.Printf("getpeername=%s getpeername_len=%d getpeername_bytes=%x\n", errName(errnoErr(e)), plen, peer[:])
	// 6. socket(AF_UNIX) is not notified: the kernel makes it.
	ufd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	dom := -1
	if err == nil {
		dom, _ = unix.GetsockoptInt(ufd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	}
	fmt.Printf("socket_unix_err=%s socket_unix_domain=%d\n", errName(err), dom)
	// 7. io_uring is refused.
	var params [120]byte
	_, _, e = unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	fmt.Printf("io_uring_setup=%s\n", errName(errnoErr(e)))
	// 8. SETFD replaces fd 50 (here /dev/null) in place.
	null, err := unix.Open("/dev/null", unix.O_WRONLY, 0)
	if err == nil {
		err = unix.Dup3(null, 50, 0)
	}
	fmt.Printf("devnull_at_50=%s\n", errName(err))
	r, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	var st unix.Stat_t
	unix.Fstat(50, &st)
	n, werr := unix.Write(50, []byte("via-setfd"))
	fmt.Printf("socket_inet6=%d socket_inet6_err=%s fd50_fifo=%t fd50_write=%d fd50_err=%s\n",
		r, errName(err), st.Mode&unix.S_IFMT == unix.S_IFIFO, n, errName(werr))
	// 9. A second listener in the same filter chain is refused.
	runtime.LockOSThread()
	prog, _ := Filter{}.Build()
	_, err = InstallFilter(prog, 0)
	fmt.Printf("nested_listener=%s\n", errName(err))
}

func rawConnect(fd int, sa [16]byte) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	return errnoErr(e)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// errName prints an errno by name ("ok" for nil) so output is exact.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return "error:" + err.Error()
}

// sockaddrIn builds a struct sockaddr_in.
func sockaddrIn(addr [4]byte, port uint16) [16]byte {
	var b [16]byte
	b[0] = unix.AF_INET // sa_family, little-endian
	b[2], b[3] = byte(port>>8), byte(port)
	copy(b[4:8], addr[:])
	return b
}
