package socketshim

import "testing"

// TestTCPMatchesLinux: socket/bind/listen/accept4/connect (non-blocking,
// refused, again), getsockname/getpeername with truncation and bad
// pointers, options, shutdown, FIONREAD/SIOCOUTQ and interface ioctls in
// the caller's namespace print exactly what Linux prints.
func TestTCPMatchesLinux(t *testing.T) { compareWithOracle(t, "tcp") }

// TestUDPMatchesLinux: sendto/recvfrom with addresses, MSG_TRUNC, MSG_PEEK,
// sendmsg/recvmsg scatter-gather with msg_namelen/controllen/flags written
// back, sendmmsg/recvmmsg, address length errors, connected UDP and IPv6.
func TestUDPMatchesLinux(t *testing.T) { compareWithOracle(t, "udp") }

// TestSocketSharing: a socket is found by its inode, so dup, SCM_RIGHTS
// over an (untrapped) AF_UNIX socketpair and a child process inheriting the
// fd all reach the same served socket.
func TestSocketSharing(t *testing.T) { compareWithOracle(t, "sharing") }

// TestSigpipe: a served send failing with EPIPE raises SIGPIPE in the
// target unless MSG_NOSIGNAL, after ECONNRESET first, as on Linux.
func TestSigpipe(t *testing.T) { compareWithOracle(t, "sigpipe") }

// TestAcceptInterrupted: a signal (SA_RESTART) interrupting a served
// blocking accept restarts it; the connection arriving later is accepted.
func TestAcceptInterrupted(t *testing.T) { compareWithOracle(t, "intr") }

// TestAcceptInterruptedKillable: with killable waits (as `netprov run`
// installs the filter) a signal no longer ends the target's wait by
// itself; the Server sees it pending (signalPending) and answers the
// blocked accept ERESTARTSYS, so the handler runs and the accept restarts
// (SA_RESTART) exactly as on Linux.
func TestAcceptInterruptedKillable(t *testing.T) {
	t.Setenv(testKillableEnv, "1")
	compareWithOracle(t, "intr")
}

// TestIOURingRefused: io_uring_setup fails with ENOSYS under the filter.
func TestIOURingRefused(t *testing.T) {
	requireRoot(t)
	got, _ := runShimmed(t, "iouring")
	if got.out["io_uring_setup"] != "ENOSYS" {
		t.Errorf("io_uring_setup = %q, want ENOSYS; stdout %s stderr %s", got.out["io_uring_setup"], got.stdout, got.stderr)
	}
}

// TestCloseFreesPort: a closed listener's or UDP socket's port can be
// bound again (the Server sweeps for sockets no sandbox process holds).
func TestCloseFreesPort(t *testing.T) { compareWithOracle(t, "close") }

// TestCloseFreesPortAtOnce: binding a just-closed listener's or UDP
// socket's port succeeds at once, as on Linux, although the periodic sweep
// has not run yet: a port conflict makes the Server sweep on demand
// (sweepNow) and retry.
func TestCloseFreesPortAtOnce(t *testing.T) { compareWithOracle(t, "rebind") }

// TestConnectToClosedListener: a connect to a listener the target just
// closed is refused at once (ECONNREFUSED), as on Linux: a served
// listener on the destination port is checked first (sweepListeners).
func TestConnectToClosedListener(t *testing.T) { compareWithOracle(t, "connectclosed") }
