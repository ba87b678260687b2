package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Handler implements the ops of a stack process.
type Handler interface {
	Status() Status
	Connections() []Connection
	// Handoff takes ownership of fd (also on error).
	Handoff(req Request, fd int) error
}

// Capturer is implemented by handlers that can stream their link as pcap
// (OpCapture). Capture writes to w until ctx ends (the client went away).
type Capturer interface {
	Capture(ctx context.Context, w io.Writer) error
}

// Announcer is implemented by handlers that can announce the sandbox's
// addresses on its link with gratuitous ARP (OpAnnounce).
type Announcer interface {
	Announce() error
}

// requestTimeout bounds how long a client may take to send its request.
const requestTimeout = 10 * time.Second

// Serve accepts connections on ln and answers their requests until ctx
// ends; it then closes ln and waits for the requests in progress.
func Serve(ctx context.Context, ln *net.UnixListener, h Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	AcceptLoop(ctx, ln, log, "control", func(c *net.UnixConn) {
		defer c.Close()
		serveConn(c, h, log)
	})
	return nil
}

// AcceptLoop hands every connection accepted on ln to serve, each in its
// own goroutine, until ctx ends; it then closes ln and waits for the
// serve calls in progress. Accept errors other than closing are logged
// (prefixed with name) and retried after a short pause.
func AcceptLoop(ctx context.Context, ln *net.UnixListener, log *slog.Logger, name string, serve func(*net.UnixConn)) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn(name+": accept", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(c)
		}()
	}
}

func serveConn(c *net.UnixConn, h Handler, log *slog.Logger) {
	c.SetDeadline(time.Now().Add(requestTimeout))
	req, fd, err := readRequest(c)
	if err == nil && req.Op == OpCapture {
		if fd >= 0 {
			unix.Close(fd)
		}
		serveCapture(c, h, log)
		return
	}
	var resp Response
	if err != nil {
		resp.Error = err.Error()
		log.Warn("control: bad request", "err", err)
	} else {
		resp = answer(req, fd, h)
		fd = -1 // the handler owns it now
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	writeResponse(c, resp)
}

// serveCapture answers OpCapture: the answer line, then the pcap stream
// until the client closes its end.
func serveCapture(c *net.UnixConn, h Handler, log *slog.Logger) {
	capt, ok := h.(Capturer)
	if !ok {
		writeResponse(c, Response{Error: "capture: this stack process cannot capture its link"})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.SetDeadline(time.Time{})
	// The client sends nothing more: EOF (or an error) means it is gone.
	go func() {
		var b [1]byte
		c.Read(b[:])
		cancel()
	}()
	// The answer line goes out only once recording started, so a refusal
	// (another capture running) is an error answer, not a broken stream.
	started := false
	w := writerFunc(func(p []byte) (int, error) {
		if !started {
			started = true
			line, _ := json.Marshal(Response{OK: true})
			if _, err := c.Write(append(line, '\n')); err != nil {
				return 0, err
			}
		}
		return c.Write(p)
	})
	if err := capt.Capture(ctx, w); err != nil {
		if !started {
			writeResponse(c, Response{Error: "capture: " + err.Error()})
		}
		log.Info("control: capture ended", "err", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func writeResponse(c *net.UnixConn, resp Response) {
	line, _ := json.Marshal(resp)
	c.SetDeadline(time.Now().Add(requestTimeout))
	c.Write(append(line, '\n'))
}

func answer(req Request, fd int, h Handler) Response {
	closeFD := func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	switch req.Op {
	case OpStatus:
		closeFD()
		st := h.Status()
		return Response{OK: true, Status: &st}
	case OpConnections:
		closeFD()
		return Response{OK: true, Connections: h.Connections()}
	case OpAnnounce:
		closeFD()
		an, ok := h.(Announcer)
		if !ok {
			return Response{Error: "announce: not supported by this stack process"}
		}
		if err := an.Announce(); err != nil {
			return Response{Error: "announce: " + err.Error()}
		}
		return Response{OK: true}
	case OpHandoff:
		if fd < 0 {
			return Response{Error: "handoff: no fd attached (send the seccomp fd with SCM_RIGHTS)"}
		}
		if err := h.Handoff(req, fd); err != nil {
			return Response{Error: "handoff: " + err.Error()}
		}
		return Response{OK: true}
	}
	closeFD()
	return Response{Error: fmt.Sprintf("unknown op %q (want %s, %s, %s, %s or %s)", req.Op, OpStatus, OpConnections, OpHandoff, OpAnnounce, OpCapture)}
}

// readRequest reads one request line and at most one fd sent with it.
func readRequest(c *net.UnixConn) (Request, int, error) {
	var req Request
	fd := -1
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(chunk, oob)
		if oobn > 0 {
			for _, f := range ParseRights(oob[:oobn]) {
				if fd < 0 {
					fd = f
				} else {
					unix.Close(f) // only one fd per request
				}
			}
		}
		buf = append(buf, chunk[:n]...)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			if err := json.Unmarshal(buf[:i], &req); err != nil {
				return req, fd, fmt.Errorf("request is not JSON: %w", err)
			}
			return req, fd, nil
		}
		if err != nil {
			return req, fd, fmt.Errorf("read request: %w", err)
		}
		if n == 0 {
			return req, fd, errors.New("read request: connection closed before newline")
		}
		if len(buf) > MaxRequestSize {
			return req, fd, fmt.Errorf("request longer than %d bytes", MaxRequestSize)
		}
	}
}

// ParseRights returns the fds of the SCM_RIGHTS messages in oob.
func ParseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}
