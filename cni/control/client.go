package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds a call whose ctx has no deadline.
const DefaultTimeout = 10 * time.Second

// Call sends req to the control socket at path, with fd attached by
// SCM_RIGHTS when fd >= 0 (the caller keeps its copy), and returns the
// answer. An answer with OK=false is returned as an error too.
func Call(ctx context.Context, path string, req Request, fd int) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control %s: %w", path, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if _, _, err := conn.WriteMsgUnix(line, oob, nil); err != nil {
		return nil, fmt.Errorf("control %s: send %s: %w", path, req.Op, err)
	}
	r := bufio.NewReader(conn)
	ans, err := r.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("control %s: %s: no answer: %w", path, req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(ans, &resp); err != nil {
		return nil, fmt.Errorf("control %s: %s: bad answer: %w", path, req.Op, err)
	}
	if !resp.OK {
		if resp.Error == "" {
			resp.Error = "failed"
		}
		return &resp, fmt.Errorf("control %s: %s: %w", path, req.Op, errors.New(resp.Error))
	}
	return &resp, nil
}

// GetStatus asks the stack process at path for its status.
func GetStatus(ctx context.Context, path string) (*Status, error) {
	resp, err := Call(ctx, path, Request{Op: OpStatus}, -1)
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("control %s: status: empty answer", path)
	}
	return resp.Status, nil
}

// GetConnections lists the sandbox's sockets.
func GetConnections(ctx context.Context, path string) ([]Connection, error) {
	resp, err := Call(ctx, path, Request{Op: OpConnections}, -1)
	if err != nil {
		return nil, err
	}
	return resp.Connections, nil
}

// Handoff gives the seccomp notify fd of container id (init pid, host pid
// namespace) to the stack process at path. The caller may close its fd
// afterwards.
func Handoff(ctx context.Context, path, id string, pid int, metadata string, fd int) error {
	if fd < 0 {
		return fmt.Errorf("control %s: handoff: no fd", path)
	}
	_, err := Call(ctx, path, Request{Op: OpHandoff, ContainerID: id, PID: pid, Metadata: metadata}, fd)
	return err
}

// Announce asks the stack process at path to announce its addresses with
// gratuitous ARP.
func Announce(ctx context.Context, path string) error {
	_, err := Call(ctx, path, Request{Op: OpAnnounce}, -1)
	return err
}
