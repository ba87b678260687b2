package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StageEnv names the environment variable that marks a process as a stage
// and tells it how to reach its supervisor: "fd:N" (an inherited
// SOCK_SEQPACKET unix socket, set up by StartStage) or "unix:PATH" /
// "unix:@NAME" (a SOCK_SEQPACKET socket to connect to; Go: "unixpacket").
const StageEnv = "NETPROV_SECCOMP_STAGE"

// Stage protocol, one SOCK_SEQPACKET message each:
//
//	stage → supervisor: listener  (kind 'R': fd attached with SCM_RIGHTS;
//	                               kind 'P': fetch fd N with pidfd_getfd)
//	                    or error  (kind 'E': text)
//	supervisor → stage: 1-byte ack
//	stage: execve; on failure an 'E' message; on success the stage's
//	       (close-on-exec) socket closes, which the supervisor reads as EOF.
const (
	stageMagic      = "NPSG"
	stageHeaderLen  = 16 // magic[4] kind[1] pad[3] fd[4] textlen[4]
	stageMaxText    = 2048
	stageKindRights = 'R'
	stageKindPidfd  = 'P'
	stageKindError  = 'E'
	stageAck        = 'G'
)

// StageConfig describes what a stage installs and then executes.
type StageConfig struct {
	Program []unix.SockFilter // from Filter.Build
	Flags   InstallFlags
	// Path is the executable; empty means Argv[0]. Without a slash it is
	// looked up in PATH (before the filter is installed).
	Path string
	Argv []string
	// Env for the target; nil means the stage's environment. StageEnv is
	// always removed.
	Env []string
}

// IsStage reports whether this process was started as a stage.
func IsStage() bool {
	_, ok := os.LookupEnv(StageEnv)
	return ok
}

// RunStage runs the stage side of the launcher protocol in a re-exec'ed
// child: it locks the OS thread, connects to the supervisor (before the
// filter exists, so that connect cannot be trapped), installs the filter
// with a listener, hands the listener to the supervisor, waits for its ack
// and executes the target on the same thread. It returns only on failure;
// the caller should then exit non-zero (the supervisor has been told).
//
// The protocol's own syscalls (read, write, close, execve, exit_group) must
// be allowed by the program (checked), and so must what the Go runtime does
// on a thread (mmap, futex, signals; not checked); if sendmsg is not
// allowed, the listener is handed over
// by number and the supervisor takes it with pidfd_getfd (needs ptrace
// access to the stage, as its parent or root has).
func RunStage(cfg StageConfig) error {
	// The filter is per thread: install and exec must happen on one thread.
	// The thread is never unlocked; the process image is replaced.
	runtime.LockOSThread()

	spec := os.Getenv(StageEnv)
	conn, err := stageConnect(spec)
	if err != nil {
		return fmt.Errorf("seccomp stage: supervisor %q: %w", spec, err)
	}
	fail := func(err error) error {
		stageSend(conn, stageKindError, -1, err.Error())
		unix.Close(conn)
		return err
	}
	if len(cfg.Argv) == 0 {
		return fail(errors.New("seccomp stage: empty argv"))
	}
	path := cfg.Path
	if path == "" {
		path = cfg.Argv[0]
	}
	if path, err = exec.LookPath(path); err != nil {
		return fail(fmt.Errorf("seccomp stage: %w", err))
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	env = withoutEnv(env, StageEnv)
	useRights, err := checkStageSyscalls(cfg.Program, conn)
	if err != nil {
		return fail(err)
	}
	lfd, err := InstallFilter(cfg.Program, cfg.Flags)
	if err != nil {
		return fail(fmt.Errorf("seccomp stage: %w", err))
	}
	if useRights {
		err = stageSend(conn, stageKindRights, lfd, "")
		unix.Close(lfd) // the target must not hold its own listener
	} else {
		// Kept open (close-on-exec) until the supervisor has taken it.
		err = stageSend(conn, stageKindPidfd, lfd, "")
	}
	if err != nil {
		return fmt.Errorf("seccomp stage: send listener: %w", err)
	}
	var ack [1]byte
	for {
		n, rerr := unix.Read(conn, ack[:])
		if rerr == unix.EINTR {
			continue
		}
		if rerr != nil || n != 1 || ack[0] != stageAck {
			return fmt.Errorf("seccomp stage: no ack from supervisor (n=%d): %v", n, rerr)
		}
		break
	}
	err = unix.Exec(path, cfg.Argv, env)
	return fail(fmt.Errorf("seccomp stage: exec %s: %w", path, err))
}

// checkStageSyscalls makes sure the program lets the protocol finish (a
// trapped read or execve would wait for a supervisor that is waiting for
// us), and decides whether the listener can travel by SCM_RIGHTS.
func checkStageSyscalls(prog []unix.SockFilter, conn int) (useRights bool, err error) {
	decide := func(nr int, args ...uint64) (uint32, error) {
		d := SeccompData{Nr: int32(nr), Arch: unix.AUDIT_ARCH_X86_64}
		copy(d.Args[:], args)
		return Evaluate(prog, &d)
	}
	c := uint64(conn)
	for _, sc := range []struct {
		nr   int
		args []uint64
	}{
		{unix.SYS_READ, []uint64{c}}, {unix.SYS_WRITE, []uint64{c}}, {unix.SYS_CLOSE, []uint64{c}},
		{unix.SYS_EXECVE, nil}, {unix.SYS_EXIT_GROUP, nil},
	} {
		r, err := decide(sc.nr, sc.args...)
		if err != nil {
			return false, fmt.Errorf("seccomp stage: evaluate filter: %w", err)
		}
		if r != unix.SECCOMP_RET_ALLOW {
			return false, fmt.Errorf("seccomp stage: filter must allow syscall %d (stage protocol), it returns %s", sc.nr, RetString(r))
		}
	}
	r, err := decide(unix.SYS_SENDMSG, c, 0, 0)
	if err != nil {
		return false, fmt.Errorf("seccomp stage: evaluate filter: %w", err)
	}
	return r == unix.SECCOMP_RET_ALLOW, nil
}

func stageConnect(spec string) (int, error) {
	switch {
	case strings.HasPrefix(spec, "fd:"):
		fd, err := strconv.Atoi(spec[3:])
		if err != nil || fd < 0 {
			return -1, fmt.Errorf("bad fd in %s", StageEnv)
		}
		// The target must not inherit it, and the supervisor reads its
		// closing at exec as success.
		unix.CloseOnExec(fd)
		return fd, nil
	case strings.HasPrefix(spec, "unix:"):
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		name := spec[5:]
		if strings.HasPrefix(name, "@") {
			name = "\x00" + name[1:]
		}
		for {
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: name})
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	return -1, fmt.Errorf("%s must be fd:N or unix:PATH", StageEnv)
}

// stageSend sends one protocol message; fd is attached with SCM_RIGHTS for
// kind 'R' and sent as a number for 'P'.
func stageSend(conn int, kind byte, fd int, text string) error {
	if len(text) > stageMaxText {
		text = text[:stageMaxText]
	}
	msg := make([]byte, stageHeaderLen+len(text))
	copy(msg, stageMagic)
	msg[4] = kind
	binary.LittleEndian.PutUint32(msg[8:], uint32(int32(fd)))
	binary.LittleEndian.PutUint32(msg[12:], uint32(len(text)))
	copy(msg[stageHeaderLen:], text)
	var oob []byte
	if kind == stageKindRights {
		oob = unix.UnixRights(fd)
		for {
			err := unix.Sendmsg(conn, msg, oob, nil, 0)
			if err != unix.EINTR {
				return err
			}
		}
	}
	for {
		_, err := unix.Write(conn, msg)
		if err != unix.EINTR {
			return err
		}
	}
}

func withoutEnv(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
