package socketshim

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The target's close(2) is not trapped. Established stream sockets learn
// of it through their released conduit; listeners and datagram sockets
// keep the provider's copy of the conduit (see maybeRelease), so the
// Server finds their end by sweeping: a socket whose inode no process of
// the sandbox holds any more has been closed by the target, and the
// provider's Close is called (the port is free again, like Linux's close).
// The sandbox is every process in a network namespace a socket() call came
// from. A socket only in flight in an SCM_RIGHTS message for longer than a
// sweep interval would be closed early.
//
// Besides the periodic sweep, two events sweep at once, because Linux
// frees a closed socket's port immediately: a bind, listen or connect
// failing with EADDRINUSE or EADDRNOTAVAIL (retryAfterSweep), and a
// stream connect to the port of a listener the Server still serves
// (sweepListeners). These consider only installed sockets (AddFD
// returned) of any age; a socket in flight in SCM_RIGHTS at that moment
// would be closed early, as above.

// sweepLoop runs sweeps until ctx ends.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
			s.tasks.prune()
		}
	}
}

// noteNetns records the network namespace of a task that made a socket.
func (s *Server) noteNetns(tid uint32) {
	var st unix.Stat_t
	if unix.Stat("/proc/"+strconv.FormatUint(uint64(tid), 10)+"/ns/net", &st) != nil {
		return
	}
	s.nsMu.Lock()
	if s.netns == nil {
		s.netns = map[uint64]bool{}
	}
	s.netns[st.Ino] = true
	s.nsMu.Unlock()
}

func (s *Server) sweep() {
	old := s.table.olderThan(time.Now().Add(-s.cfg.SweepInterval))
	if len(old) == 0 {
		return
	}
	live, ok := s.liveSocketInodes()
	if !ok {
		return
	}
	s.closeDead(old, live)
}

// closeDead closes the entries of cand that no process holds any more and
// returns how many it closed.
func (s *Server) closeDead(cand map[uint64]*entry, live map[uint64]bool) int {
	closed := 0
	for ino, e := range cand {
		if live[ino] || !s.table.take(ino) {
			continue
		}
		closed++
		if !e.released.Load() {
			e.sock.Close()
		}
		for a, ok := e.popAccepted(); ok; a, ok = e.popAccepted() {
			a.sock.Close()
		}
	}
	return closed
}

// sweepNow is a sweep on demand, of every installed socket whatever its
// age: a port conflict (bind, listen or connect failing with EADDRINUSE
// or EADDRNOTAVAIL) may come from a socket the target closed since the
// last sweep, which on Linux would have freed the port at once (a program
// that closes a listener and binds its port again, or exits and is run
// again). It returns how many sockets it closed.
func (s *Server) sweepNow() int {
	cand := s.table.installedEntries()
	if len(cand) == 0 {
		return 0
	}
	live, ok := s.liveSocketInodes()
	if !ok {
		return 0
	}
	return s.closeDead(cand, live)
}

// sweepListeners closes the served listeners on port that the target
// closed since the last sweep, before a connect to port: on Linux a
// connect to a closed listener is refused at once. It costs a /proc scan
// only when a served listener has that port (a connect inside the
// sandbox); a port of 0 (or a malformed address) does nothing.
func (s *Server) sweepListeners(port uint16) {
	if port == 0 {
		return
	}
	cand := s.table.listeners(port)
	if len(cand) == 0 {
		return
	}
	if live, ok := s.liveSocketInodes(); ok {
		s.closeDead(cand, live)
	}
}

// sockaddrPort is the port of an AF_INET or AF_INET6 sockaddr, else 0.
func sockaddrPort(sa []byte) uint16 {
	if len(sa) < 4 {
		return 0
	}
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET, unix.AF_INET6:
		return binary.BigEndian.Uint16(sa[2:])
	}
	return 0
}

// Port-conflict retries after sweepNow closed something: closing a
// listener resets its unaccepted connections, whose peers free their
// ports when the reset arrives through the stack, a moment later.
const (
	conflictRetries    = 20
	conflictRetryPause = 5 * time.Millisecond
)

// isPortConflict reports the errors a closed-but-unswept socket can cause.
func isPortConflict(err error) bool {
	return errors.Is(err, unix.EADDRINUSE) || errors.Is(err, unix.EADDRNOTAVAIL)
}

// retryAfterSweep runs op; if it fails with a port conflict and sweepNow
// closed sockets the target had closed, op is retried (bounded) until the
// conflict is gone.
func (s *Server) retryAfterSweep(op func() error) error {
	err := op()
	if !isPortConflict(err) || s.sweepNow() == 0 {
		return err
	}
	for i := 0; i < conflictRetries; i++ {
		if err = op(); !isPortConflict(err) {
			return err
		}
		time.Sleep(conflictRetryPause)
	}
	return err
}

// liveSocketInodes collects the socket inodes open in the sandbox's
// processes.
func (s *Server) liveSocketInodes() (map[uint64]bool, bool) {
	s.nsMu.Lock()
	ns := make(map[uint64]bool, len(s.netns))
	for k := range s.netns {
		ns[k] = true
	}
	s.nsMu.Unlock()
	if len(ns) == 0 {
		return nil, false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	live := map[uint64]bool{}
	var link [64]byte
	// Our own process holds the providers' copies of conduits and is
	// never part of the sandbox, even when a thread of ours that entered
	// another namespace makes /proc/self/ns/net look like one.
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		name := p.Name()
		if name[0] < '0' || name[0] > '9' || name == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+name+"/ns/net", &st) != nil || !ns[st.Ino] {
			continue
		}
		dir := "/proc/" + name + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			n, err := unix.Readlink(dir+fd.Name(), link[:])
			if err != nil {
				continue
			}
			if ino, err := parseSocketLink(link[:n]); err == nil {
				live[ino] = true
			}
		}
	}
	return live, true
}
