package socketshim

import (
	"context"
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
	for ino, e := range old {
		if live[ino] {
			continue
		}
		s.table.remove(ino)
		if !e.released.Load() {
			e.sock.Close()
		}
		for a, ok := e.popAccepted(); ok; a, ok = e.popAccepted() {
			a.sock.Close()
		}
	}
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
	for _, p := range procs {
		name := p.Name()
		if name[0] < '0' || name[0] > '9' {
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
