package seccomp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// StageConn is the supervisor's end of the stage protocol with one stage.
type StageConn struct {
	conn *net.UnixConn
	pid  int // the stage's pid in our PID namespace, for pidfd_getfd
}

// StartStage starts cmd as a stage: it adds a SOCK_SEQPACKET socketpair end
// to cmd.ExtraFiles, sets StageEnv=fd:N in cmd.Env (os.Environ() if cmd.Env
// is nil) and starts cmd. cmd should run the same binary with something
// that makes it call RunStage (StageEnv itself is the marker; IsStage).
//
// Then: ReceiveListener, start serving notifications, Release.
func StartStage(cmd *exec.Cmd) (*StageConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("seccomp stage: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "seccomp-stage")
	theirs := os.NewFile(uintptr(fds[1]), "seccomp-stage-child")
	defer theirs.Close() // after Start, so that the stage's exit or exec reads as EOF
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("seccomp stage: %w", err)
	}
	childFd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(withoutEnv(cmd.Env, StageEnv), StageEnv+"=fd:"+strconv.Itoa(childFd))
	if err := cmd.Start(); err != nil {
		fc.Close()
		return nil, fmt.Errorf("seccomp stage: start: %w", err)
	}
	return &StageConn{conn: fc.(*net.UnixConn), pid: cmd.Process.Pid}, nil
}

// NewStageConn wraps a connection a stage made to a "unix:PATH" supervisor
// socket (accepted from a "unixpacket" listener). The stage's pid comes from
// SO_PEERCRED, translated to our PID namespace by the kernel.
func NewStageConn(c *net.UnixConn) (*StageConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("seccomp stage: SO_PEERCRED: %w", cerr)
	}
	return &StageConn{conn: c, pid: int(cred.Pid)}, nil
}

// Pid is the stage's pid (after Release, the target's: exec keeps it).
func (s *StageConn) Pid() int { return s.pid }

// Close closes the connection. Before Release this makes the stage fail.
func (s *StageConn) Close() error { return s.conn.Close() }

// ReceiveListener waits for the stage's listener fd. A stage that failed
// before installing reports its error here.
func (s *StageConn) ReceiveListener(ctx context.Context) (*Listener, error) {
	var buf [stageHeaderLen + stageMaxText]byte
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, err := s.readMsg(ctx, buf[:], oob)
	if err != nil {
		return nil, fmt.Errorf("seccomp stage: receive listener: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("seccomp stage: receive listener: %w", err)
	}
	kind, fd, text, err := parseStageMsg(buf[:n])
	if err != nil || kind != stageKindRights {
		closeAll(fds)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp stage: receive listener: %w", err)
	}
	switch kind {
	case stageKindError:
		return nil, fmt.Errorf("seccomp stage failed: %s", text)
	case stageKindRights:
		if len(fds) != 1 {
			closeAll(fds)
			return nil, fmt.Errorf("seccomp stage: expected 1 fd, got %d", len(fds))
		}
		return NewListener(fds[0])
	case stageKindPidfd:
		lfd, err := pidfdGetfd(s.pid, fd)
		if err != nil {
			return nil, fmt.Errorf("seccomp stage: take listener fd %d from pid %d: %w", fd, s.pid, err)
		}
		return NewListener(lfd)
	}
	return nil, fmt.Errorf("seccomp stage: unexpected message kind %q", kind)
}

// Release tells the stage to execute its target and waits for the outcome:
// nil once exec succeeded. The listener must already be served (another
// goroutine calling Recv) if the target may trap before Release returns.
func (s *StageConn) Release(ctx context.Context) error {
	if _, err := s.conn.Write([]byte{stageAck}); err != nil {
		return fmt.Errorf("seccomp stage: send ack: %w", err)
	}
	var buf [stageHeaderLen + stageMaxText]byte
	n, _, err := s.readMsg(ctx, buf[:], nil)
	if errors.Is(err, io.EOF) || (err == nil && n == 0) {
		return nil // close-on-exec closed the stage's end: exec succeeded
	}
	if err != nil {
		return fmt.Errorf("seccomp stage: wait for exec: %w", err)
	}
	kind, _, text, err := parseStageMsg(buf[:n])
	if err != nil {
		return fmt.Errorf("seccomp stage: wait for exec: %w", err)
	}
	if kind == stageKindError {
		return fmt.Errorf("seccomp stage failed: %s", text)
	}
	return fmt.Errorf("seccomp stage: unexpected message kind %q after ack", kind)
}

// readMsg reads one message, bounded by ctx.
func (s *StageConn) readMsg(ctx context.Context, buf, oob []byte) (n, oobn int, err error) {
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	n, oobn, _, _, err = s.conn.ReadMsgUnix(buf, oob)
	if err != nil && ctx.Err() != nil {
		return n, oobn, ctx.Err()
	}
	if err == nil && n == 0 && oobn == 0 {
		return 0, 0, io.EOF
	}
	return n, oobn, err
}

func parseStageMsg(b []byte) (kind byte, fd int, text string, err error) {
	if len(b) < stageHeaderLen || string(b[:4]) != stageMagic {
		return 0, 0, "", fmt.Errorf("malformed stage message (%d bytes)", len(b))
	}
	tl := int(binary.LittleEndian.Uint32(b[12:]))
	if tl > len(b)-stageHeaderLen {
		return 0, 0, "", fmt.Errorf("malformed stage message: text length %d", tl)
	}
	return b[4], int(int32(binary.LittleEndian.Uint32(b[8:]))), string(b[stageHeaderLen : stageHeaderLen+tl]), nil
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func pidfdGetfd(pid, fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	lfd, err := unix.PidfdGetfd(pidfd, fd, 0) // returned close-on-exec
	if err != nil {
		return -1, fmt.Errorf("pidfd_getfd: %w", err)
	}
	return lfd, nil
}
