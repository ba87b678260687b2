package seccomp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testBound bounds every wait in these tests.
const testBound = 10 * time.Second

func requireUserNotif(t testing.TB) {
	t.Helper()
	if err := CheckABI(); err != nil {
		t.Skipf("seccomp user notification unavailable: %v", err)
	}
}

// stagedTarget is a target started through the stage protocol.
type stagedTarget struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	l      *Listener
	exited chan error
}

// startTarget starts the test binary as stage + target for scenario and
// returns once the listener is received and the target released.
func startTarget(t testing.TB, ctx context.Context, scenario string) *stagedTarget {
	t.Helper()
	requireUserNotif(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	st := &stagedTarget{exited: make(chan error, 1)}
	st.cmd = exec.Command(self)
	st.cmd.Env = append(os.Environ(), testRoleEnv+"=stage", testScenarioEnv+"="+scenario)
	st.cmd.Stdout, st.cmd.Stderr = &st.stdout, &st.stderr
	sc, err := StartStage(st.cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	go func() { st.exited <- st.cmd.Wait() }()
	t.Cleanup(func() {
		st.cmd.Process.Kill()
		select {
		case <-st.exited:
		case <-time.After(testBound):
			t.Errorf("target did not exit")
		}
	})
	st.l, err = sc.ReceiveListener(ctx)
	if err != nil {
		t.Fatalf("ReceiveListener: %v (stage stderr: %s)", err, st.stderr.String())
	}
	t.Cleanup(func() { st.l.Close() })
	if err := sc.Release(ctx); err != nil {
		t.Fatalf("Release: %v (stage stderr: %s)", err, st.stderr.String())
	}
	if sc.Pid() != st.cmd.Process.Pid {
		t.Errorf("StageConn.Pid = %d, want %d", sc.Pid(), st.cmd.Process.Pid)
	}
	return st
}

// waitExit waits for the target to exit and returns its key=value output.
func (st *stagedTarget) waitExit(t testing.TB) map[string]string {
	t.Helper()
	select {
	case err := <-st.exited:
		st.exited <- err // for the cleanup
		if err != nil {
			t.Errorf("target: %v; stderr: %s", err, st.stderr.String())
		}
	case <-time.After(testBound):
		t.Fatalf("target did not exit; stdout so far: %s", st.stdout.String())
	}
	out := map[string]string{}
	sc := bufio.NewScanner(&st.stdout)
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}

// expectGone asserts that Recv reports ErrTargetGone promptly once the
// target has exited and been reaped.
func expectGone(t *testing.T, l *Listener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	n, err := l.Recv(ctx)
	if !errors.Is(err, ErrTargetGone) {
		t.Fatalf("Recv after target exit = %+v, %v; want ErrTargetGone", n, err)
	}
}

func recvNr(t *testing.T, ctx context.Context, l *Listener, nr int) *Notif {
	t.Helper()
	n, err := l.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv (want syscall %d): %v", nr, err)
	}
	if n.Data.Nr != int32(nr) || n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
		t.Fatalf("notification nr=%d arch=%#x, want nr=%d", n.Data.Nr, n.Data.Arch, nr)
	}
	return n
}

func wantOut(t testing.TB, out map[string]string, key, want string) {
	t.Helper()
	if got, ok := out[key]; !ok || got != want {
		t.Errorf("target printed %s=%q (present=%t), want %q; all: %v", key, got, ok, want, out)
	}
}

// TestShimOverStage walks the shim's mechanics end to end on a real target:
// fd injection with ADDFD SEND, a native data path, connect answered from
// the sockaddr in target memory, EFAULT/EINVAL for bad sockaddrs, a
// truncated getpeername result written back, AF_UNIX sockets not trapped,
// io_uring refused, SETFD replacing an fd in place, EBUSY for a nested
// listener, and ErrTargetGone from Recv after exit.
func TestShimOverStage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	st := startTarget(t, ctx, "basic")
	l := st.l

	// socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC): inject a socketpair end.
	n := recvNr(t, ctx, l, unix.SYS_SOCKET)
	if n.Data.Args[0] != unix.AF_INET || n.Data.Args[1] != unix.SOCK_STREAM|unix.SOCK_CLOEXEC {
		t.Fatalf("socket args %v", n.Data.Args[:3])
	}
	if int(n.PID) != st.cmd.Process.Pid {
		t.Errorf("notification pid %d, want target pid %d (exec keeps the stage's)", n.PID, st.cmd.Process.Pid)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	tfd, err := l.AddFD(n.ID, pair[1], unix.O_CLOEXEC, true)
	unix.Close(pair[1])
	if err != nil || tfd < 3 {
		t.Fatalf("AddFD SEND = %d, %v", tfd, err)
	}
	if err := l.IDValid(n.ID); !errors.Is(err, ErrTargetGone) {
		t.Errorf("IDValid after ADDFD SEND = %v, want ErrTargetGone (the syscall completed)", err)
	}

	// connect(fd, 10.213.0.1:4242): the bytes written before it must
	// already be at our end, without any notification for write().
	n = recvNr(t, ctx, l, unix.SYS_CONNECT)
	if int(n.Data.Args[0]) != tfd {
		t.Errorf("connect fd %d, want injected %d", n.Data.Args[0], tfd)
	}
	unix.SetNonblock(pair[0], true)
	buf := make([]byte, 64)
	got, err := unix.Read(pair[0], buf)
	if err != nil || string(buf[:got]) != "ping-from-target" {
		t.Errorf("read from our end: %q, %v; want ping-from-target", buf[:max(got, 0)], err)
	}
	sa, err := l.ReadSockaddr(n.PID, n.ID, n.Data.Args[1], n.Data.Args[2])
	if err != nil {
		t.Fatalf("ReadSockaddr: %v", err)
	}
	b := sa.Bytes()
	if sa.Len != 16 || sa.Family() != unix.AF_INET || binary.BigEndian.Uint16(b[2:]) != testPeerPort || [4]byte(b[4:8]) != testPeer {
		t.Errorf("sockaddr %x, want AF_INET 10.213.0.1:4242", b)
	}
	if err := l.Respond(n.ID, 0, unix.ECONNREFUSED); err != nil {
		t.Fatal(err)
	}

	// connect with an unmapped sockaddr pointer: EFAULT, like the kernel.
	n = recvNr(t, ctx, l, unix.SYS_CONNECT)
	_, err = l.ReadSockaddr(n.PID, n.ID, n.Data.Args[1], n.Data.Args[2])
	if !errors.Is(err, unix.EFAULT) {
		t.Errorf("ReadSockaddr(addr=%#x) = %v, want EFAULT", n.Data.Args[1], err)
	}
	l.Respond(n.ID, 0, unix.EFAULT)
	// connect with addrlen 200: EINVAL before touching memory.
	n = recvNr(t, ctx, l, unix.SYS_CONNECT)
	_, err = l.ReadSockaddr(n.PID, n.ID, n.Data.Args[1], n.Data.Args[2])
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("ReadSockaddr(len=%d) = %v, want EINVAL", n.Data.Args[2], err)
	}
	l.Respond(n.ID, 0, unix.EINVAL)

	// getpeername with an 8-byte buffer: 8 bytes copied, length 16 back.
	n = recvNr(t, ctx, l, unix.SYS_GETPEERNAME)
	peer := sockaddrIn(testPeer, testPeerPort)
	if err := l.WriteSockaddr(n.PID, n.ID, n.Data.Args[1], n.Data.Args[2], peer[:]); err != nil {
		t.Fatalf("WriteSockaddr: %v", err)
	}
	l.Respond(n.ID, 0, 0)

	// socket(AF_UNIX) must not trap: the next notification is the
	// AF_INET6 socket. SETFD replaces the target's fd 50 with our pipe.
	n = recvNr(t, ctx, l, unix.SYS_SOCKET)
	if n.Data.Args[0] != unix.AF_INET6 {
		t.Fatalf("socket family %d, want AF_INET6 (AF_UNIX must not be notified)", n.Data.Args[0])
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	at, err := l.AddFDAt(n.ID, p[1], 50, 0)
	unix.Close(p[1])
	if err != nil || at != 50 {
		t.Fatalf("AddFDAt(50) = %d, %v", at, err)
	}
	if err := l.Respond(n.ID, 50, 0); err != nil {
		t.Fatal(err)
	}

	out := st.waitExit(t)
	wantOut(t, out, "socket_inet", strconv.Itoa(tfd))
	wantOut(t, out, "socket_inet_err", "ok")
	wantOut(t, out, "socket_inet_cloexec", "true")
	wantOut(t, out, "write_n", "16")
	wantOut(t, out, "connect", "ECONNREFUSED")
	wantOut(t, out, "connect_badptr", "EFAULT")
	wantOut(t, out, "connect_biglen", "EINVAL")
	wantOut(t, out, "getpeername", "ok")
	wantOut(t, out, "getpeername_len", "16")
	// First 8 bytes of sockaddr_in 10.213.0.1:4242, the rest untouched.
	wantOut(t, out, "getpeername_bytes", "020010920ad50001eeeeeeeeeeeeeeee")
	wantOut(t, out, "socket_unix_err", "ok")
	wantOut(t, out, "socket_unix_domain", strconv.Itoa(unix.AF_UNIX))
	wantOut(t, out, "io_uring_setup", "ENOSYS")
	wantOut(t, out, "devnull_at_50", "ok")
	wantOut(t, out, "socket_inet6", "50")
	wantOut(t, out, "fd50_fifo", "true")
	wantOut(t, out, "fd50_write", "9")
	wantOut(t, out, "nested_listener", "EBUSY")
	unix.SetNonblock(p[0], true)
	got, err = unix.Read(p[0], buf)
	if err != nil || string(buf[:got]) != "via-setfd" {
		t.Errorf("pipe behind target fd 50: %q, %v; want via-setfd", buf[:max(got, 0)], err)
	}
	expectGone(t, l)
}

// TestRespondAfterTargetKilled: a notification whose target was killed
// gives ErrTargetGone from Respond, IDValid, AddFD and ReadMemory, and Recv
// then reports the filter's end.
func TestRespondAfterTargetKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	st := startTarget(t, ctx, "block")
	n := recvNr(t, ctx, st.l, unix.SYS_CONNECT)
	if err := st.l.IDValid(n.ID); err != nil {
		t.Fatalf("IDValid while pending: %v", err)
	}
	st.cmd.Process.Kill()
	select {
	case <-st.exited:
		close(st.exited) // cleanup's receive returns at once
	case <-time.After(testBound):
		t.Fatal("killed target not reaped")
	}
	if err := st.l.Respond(n.ID, 0, unix.ECONNREFUSED); !errors.Is(err, ErrTargetGone) {
		t.Errorf("Respond = %v, want ErrTargetGone", err)
	}
	if err := st.l.Continue(n.ID); !errors.Is(err, ErrTargetGone) {
		t.Errorf("Continue = %v, want ErrTargetGone", err)
	}
	if err := st.l.IDValid(n.ID); !errors.Is(err, ErrTargetGone) {
		t.Errorf("IDValid = %v, want ErrTargetGone", err)
	}
	if _, err := st.l.AddFD(n.ID, 0, 0, true); !errors.Is(err, ErrTargetGone) {
		t.Errorf("AddFD = %v, want ErrTargetGone", err)
	}
	var b [16]byte
	if err := st.l.ReadMemory(n.PID, n.ID, n.Data.Args[1], b[:]); !errors.Is(err, ErrTargetGone) {
		t.Errorf("ReadMemory = %v, want ErrTargetGone", err)
	}
	expectGone(t, st.l)
	if strings.Contains(st.stdout.String(), "connect returned") {
		t.Errorf("killed target returned from connect")
	}
}

// TestStagePidfdHandoff: when the filter traps sendmsg, the stage cannot
// pass the listener with SCM_RIGHTS; the supervisor takes it with
// pidfd_getfd and it works the same.
func TestStagePidfdHandoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	st := startTarget(t, ctx, "pidfd")
	n := recvNr(t, ctx, st.l, unix.SYS_CONNECT)
	if err := st.l.Respond(n.ID, 0, unix.ENETUNREACH); err != nil {
		t.Fatal(err)
	}
	wantOut(t, st.waitExit(t), "connect", "ENETUNREACH")
	expectGone(t, st.l)
}

// TestStageRejectsTrappedProtocolSyscall: a filter that traps read() would
// deadlock the stage protocol; the stage refuses before installing it and
// the supervisor gets the reason.
func TestStageRejectsTrappedProtocolSyscall(t *testing.T) {
	requireUserNotif(t)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), testRoleEnv+"=stage", testScenarioEnv+"=trapread")
	sc, err := StartStage(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	defer cmd.Wait()
	l, err := sc.ReceiveListener(ctx)
	if err == nil {
		l.Close()
		t.Fatal("ReceiveListener succeeded for a filter that traps read()")
	}
	if !strings.Contains(err.Error(), "must allow syscall 0") {
		t.Errorf("error %q does not name the read syscall", err)
	}
}

// TestRecvHonoursContext: Recv with nothing pending returns the context's
// error when it ends, and the listener keeps working afterwards.
func TestRecvHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	st := startTarget(t, ctx, "connect")
	// The target's connect is pending; take it, then wait with nothing
	// pending under a short deadline and under a cancel.
	n := recvNr(t, ctx, st.l, unix.SYS_CONNECT)
	short, c1 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer c1()
	if _, err := st.l.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv with expired deadline = %v, want DeadlineExceeded", err)
	}
	cctx, c2 := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, c2)
	if _, err := st.l.Recv(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel = %v, want Canceled", err)
	}
	if err := st.l.Respond(n.ID, 0, unix.ETIMEDOUT); err != nil {
		t.Fatal(err)
	}
	wantOut(t, st.waitExit(t), "connect", "ETIMEDOUT")
	expectGone(t, st.l)
	st.l.Close()
	if _, err := st.l.Recv(ctx); !errors.Is(err, ErrListenerClosed) {
		t.Errorf("Recv after Close = %v, want ErrListenerClosed", err)
	}
}

// TestStageOverSocketPath: a stage told "unix:PATH" connects to a
// supervisor's SOCK_SEQPACKET socket (before its filter exists); the
// supervisor learns its pid from SO_PEERCRED.
func TestStageOverSocketPath(t *testing.T) {
	requireUserNotif(t)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	path := filepath.Join(t.TempDir(), "sup.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), testRoleEnv+"=stage", testScenarioEnv+"=connect", StageEnv+"=unix:"+path)
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	ln.SetDeadline(time.Now().Add(testBound))
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := NewStageConn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if sc.Pid() != cmd.Process.Pid {
		t.Errorf("SO_PEERCRED pid %d, want %d", sc.Pid(), cmd.Process.Pid)
	}
	l, err := sc.ReceiveListener(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := sc.Release(ctx); err != nil {
		t.Fatal(err)
	}
	n := recvNr(t, ctx, l, unix.SYS_CONNECT)
	if err := l.Respond(n.ID, 0, unix.EHOSTUNREACH); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("target: %v", err)
		}
	case <-time.After(testBound):
		t.Fatal("target did not exit")
	}
	if got := strings.TrimSpace(stdout.String()); got != "connect=EHOSTUNREACH" {
		t.Errorf("target printed %q, want connect=EHOSTUNREACH", got)
	}
	expectGone(t, l)
}
