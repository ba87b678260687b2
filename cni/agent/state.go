package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/netprov/netprov/cni/control"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ContainerProcessState is what an OCI runtime sends to the listenerPath
// socket (runtime-spec config-linux.md, "Container Process State").
type ContainerProcessState struct {
	Version  string    `json:"ociVersion"`
	FDs      []string  `json:"fds"`
	PID      int       `json:"pid"`
	Metadata string    `json:"metadata,omitempty"`
	State    Container `json:"state"`
}

// Container is the OCI state of the container.
type Container struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	PID         int               `json:"pid,omitempty"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SeccompFDName names the notification fd in ContainerProcessState.FDs.
const SeccompFDName = "seccompFd"

// maxStateSize bounds the state message (annotations are unbounded in
// principle; real ones are about 1 KiB).
const maxStateSize = 1 << 20

// readTimeout bounds how long a runtime may take to send its state.
const readTimeout = 5 * time.Second

// errProbe marks a connection that sent nothing: EnsureRunning checking
// that the agent answers.
var errProbe = errors.New("empty message (liveness probe)")

// readState reads one state message and the fds sent with it. The runtime
// sends it with one sendmsg and then closes (runc) or keeps the connection
// (crun) until it is done; the JSON is complete when it parses. The
// returned fds are the caller's, also on error.
func readState(c *net.UnixConn) (*ContainerProcessState, []int, error) {
	c.SetReadDeadline(time.Now().Add(readTimeout))
	var buf []byte
	var fds []int
	chunk := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(16*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(chunk, oob)
		if oobn > 0 {
			fds = append(fds, control.ParseRights(oob[:oobn])...)
		}
		buf = append(buf, chunk[:n]...)
		if len(bytes.TrimSpace(buf)) > 0 && json.Valid(buf) {
			var st ContainerProcessState
			if err := json.Unmarshal(buf, &st); err != nil {
				return nil, fds, fmt.Errorf("state: %w", err)
			}
			return &st, fds, nil
		}
		if err != nil || n == 0 {
			if len(buf) == 0 && len(fds) == 0 {
				return nil, fds, errProbe
			}
			if err == nil {
				err = errors.New("connection closed")
			}
			return nil, fds, fmt.Errorf("state: incomplete message (%d bytes): %w", len(buf), err)
		}
		if len(buf) > maxStateSize {
			return nil, fds, fmt.Errorf("state: longer than %d bytes", maxStateSize)
		}
	}
}

// seccompFD picks the notification fd out of fds by its name in st.FDs
// and closes the others. It returns -1 if there is none.
func seccompFD(st *ContainerProcessState, fds []int) int {
	fd := -1
	for i, f := range fds {
		if fd < 0 && i < len(st.FDs) && st.FDs[i] == SeccompFDName {
			fd = f
			continue
		}
		unix.Close(f)
	}
	return fd
}
