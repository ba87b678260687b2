package agent

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The two shapes real runtimes send (feasibility notes §4): crun
// pretty-prints with ociVersion 0.2.0, runc sends compact JSON.
const crunState = `{
  "ociVersion": "0.2.0",
  "fds": [
    "seccompFd"
  ],
  "pid": 16952,
  "metadata": "netprov",
  "state": {
    "ociVersion": "0.2.0",
    "id": "3db76ee1f0",
    "status": "creating",
    "pid": 16952,
    "bundle": "/var/lib/containers/storage/overlay-containers/3db76ee1f0/userdata",
    "annotations": {
      "io.container.manager": "libpod"
    }
  }
}`

const runcState = `{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":16953,"metadata":"netprov","state":{"ociVersion":"1.0.2-dev","id":"54daf1d3c872","status":"creating","pid":16953,"bundle":"/b","annotations":{"io.podman.annotations.autoremove":"TRUE"}}}`

// runtimeConn returns the agent's end of a unix stream pair and the
// runtime's end.
func runtimeConn(t *testing.T) (agentEnd *net.UnixConn, runtimeEnd *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, r := conv(fds[0]), conv(fds[1])
	t.Cleanup(func() { a.Close(); r.Close() })
	return a, r
}

// sameFile reports whether two fds refer to the same open file.
func sameFile(t *testing.T, a, b int) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func TestReadStateRuntimeShapes(t *testing.T) {
	for _, tc := range []struct {
		name, msg, id string
		pid           int
		split         bool
	}{
		{"crun", crunState, "3db76ee1f0", 16952, false},
		{"runc", runcState, "54daf1d3c872", 16953, false},
		{"split", runcState, "54daf1d3c872", 16953, true}, // stream may deliver it in pieces
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, r := runtimeConn(t)
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			first, rest := tc.msg, ""
			if tc.split {
				first, rest = tc.msg[:40], tc.msg[40:]
			}
			if _, _, err := r.WriteMsgUnix([]byte(first), unix.UnixRights(p[0]), nil); err != nil {
				t.Fatal(err)
			}
			if rest != "" {
				go r.Write([]byte(rest))
			}
			st, fds, err := readState(a)
			if err != nil {
				t.Fatal(err)
			}
			if st.State.ID != tc.id || st.PID != tc.pid || st.Metadata != "netprov" || st.State.Status != "creating" {
				t.Fatalf("state = %+v", st)
			}
			fd := seccompFD(st, fds)
			if fd < 0 {
				t.Fatalf("no seccompFd among %v (names %v)", fds, st.FDs)
			}
			defer unix.Close(fd)
			if !sameFile(t, fd, p[0]) {
				t.Fatal("the fd received is not the one sent")
			}
		})
	}
}

func TestReadStateProbeAndGarbage(t *testing.T) {
	a, r := runtimeConn(t)
	r.Close()
	if _, _, err := readState(a); err != errProbe {
		t.Fatalf("empty connection: err = %v, want errProbe", err)
	}
	a, r = runtimeConn(t)
	r.Write([]byte(`{"ociVersion": "1.0.2", "fds": [`))
	r.CloseWrite()
	if _, _, err := readState(a); err == nil || err == errProbe {
		t.Fatalf("truncated JSON: err = %v, want an error", err)
	}
}

func TestSeccompFDPicksByName(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	st := &ContainerProcessState{FDs: []string{"other", SeccompFDName}}
	got := seccompFD(st, []int{p[0], p[1]})
	if got != p[1] {
		t.Fatalf("seccompFD = %d, want %d", got, p[1])
	}
	// The other fd was closed.
	if err := unix.Fstat(p[0], new(unix.Stat_t)); err != unix.EBADF {
		t.Fatalf("fd of \"other\" not closed: fstat err = %v", err)
	}
	unix.Close(p[1])
	if fd := seccompFD(&ContainerProcessState{FDs: []string{"x"}}, nil); fd != -1 {
		t.Fatalf("no fds: got %d", fd)
	}
}
