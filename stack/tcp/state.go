package tcp

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// State is the TCP state with Linux's numbering (include/net/tcp_states.h),
// as TCP_INFO and /proc/net/tcp report it.
type State uint8

// TCP states.
const (
	StateEstablished State = 1
	StateSynSent     State = 2
	StateSynRecv     State = 3
	StateFinWait1    State = 4
	StateFinWait2    State = 5
	StateTimeWait    State = 6
	StateClose       State = 7
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateListen      State = 10
	StateClosing     State = 11
)

var stateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// userState is the state the socket's owner sees (TCP_INFO, getpeername).
// Linux moves a connection entering TIME_WAIT to a separate timewait
// socket and closes the user's socket (tcp_time_wait ends in tcp_done),
// so a socket still held by the application reads CLOSE; the endpoint
// itself stays in TIME_WAIT to hold the 4-tuple and ACK old FINs.
func (e *endpoint) userState() State {
	if e.state == StateTimeWait {
		return StateClose
	}
	return e.state
}

// synchronized reports whether the handshake has completed in this state.
func (s State) synchronized() bool {
	switch s {
	case StateEstablished, StateFinWait1, StateFinWait2, StateCloseWait, StateClosing, StateLastAck, StateTimeWait:
		return true
	}
	return false
}

// socketState is the BSD socket state (SS_*) the connect rules depend on
// (spec behaviour 18).
type socketState uint8

const (
	ssUnconnected socketState = iota
	ssConnecting
	ssConnected
)

// setState changes the TCP state with Linux's side effects
// (tcp_set_state): CurrEstab accounting, and on CLOSE unhashing, releasing
// an automatically chosen port and stopping the timers.
func (e *endpoint) setState(s State) {
	old := e.state
	if old == s {
		return
	}
	st := e.stack.Stats()
	wasEst := old == StateEstablished || old == StateCloseWait
	isEst := s == StateEstablished || s == StateCloseWait
	if isEst && !wasEst {
		st.TCP.CurrEstab.Add(1)
	} else if wasEst && !isEst {
		st.TCP.CurrEstab.Add(^uint64(0))
		if s == StateClose {
			st.TCP.EstabResets.Add(1)
		}
	}
	e.state = s
	if s == StateEstablished {
		e.ever = true
	}
	if s == StateClose {
		e.stopTimers()
		e.shutdown = rcvShutdown | sendShutdown
		e.releaseLocked()
	}
	if s == StateClose || s == StateTimeWait {
		e.releaseBuffers()
	}
}

// releaseBuffers returns ring storage to the pool once the connection no
// longer needs it: the send buffer in CLOSE and TIME_WAIT (nothing is left
// to send or retransmit), the receive buffer when the application has
// read everything or will never read again (an orphan).
func (e *endpoint) releaseBuffers() {
	e.sndBuf.release()
	if e.orphan || e.rcvBuf.n == 0 {
		e.rcvBuf.release()
		e.ooo = e.ooo[:0]
	}
}

// releaseLocked unhashes the socket. An orphan gives up everything; a
// socket the user still holds keeps a port it bound explicitly
// (SOCK_BINDPORT_LOCK) and can connect again.
func (e *endpoint) releaseLocked() {
	t := e.proto.ports
	t.mu.Lock()
	if e.state == StateListen || (e.owner != nil && e.owner.listening) {
		t.unlistenLocked(e)
	}
	if e.hashed {
		if t.established[e.key] == e {
			delete(t.established, e.key)
		}
		e.hashed = false
	}
	if e.owner != nil && e.ownerBound && !t.hasOwnerLocked(e.owner, e.lport) {
		// Evicted by a connect that reused our TIME_WAIT 4-tuple.
		e.ownerBound = false
	}
	if e.ownerBound && (e.orphan || !e.userBound) {
		t.unbindLocked(e.owner, e.lport)
		e.ownerBound = false
	}
	if e.owner != nil {
		e.owner.timeWait = false
	}
	t.mu.Unlock()
	if !e.ownerBound {
		if !e.orphan && e.lport != 0 && e.raddr.IsValid() {
			e.keptName = netip.AddrPortFrom(e.laddr, e.lport)
		}
		e.lport = 0
		if !e.addrBound {
			e.laddr = netip.Addr{}
		}
	} else if !e.addrBound && e.owner != nil {
		e.laddr = e.owner.addr
	}
}

// abort ends the connection with an error (tcp_done after tcp_reset or a
// timeout): the error is reported to the next call and to poll.
func (e *endpoint) abort(err unix.Errno) {
	e.err = err
	e.setState(StateClose)
	e.notify(waiterAll)
}

// reset handles an acceptable RST (tcp_reset).
func (e *endpoint) reset() {
	var err unix.Errno
	switch e.state {
	case StateSynSent:
		err = unix.ECONNREFUSED
	case StateCloseWait:
		err = unix.EPIPE
	case StateClose:
		return
	default:
		err = unix.ECONNRESET
	}
	if e.state == StateSynSent || e.state == StateSynRecv {
		e.stack.Stats().TCP.AttemptFails.Add(1)
	}
	e.abort(err)
}

// enterTimeWait moves to TIME_WAIT for 60 s (tcp_time_wait). The socket
// stays in the established hash so that retransmitted FINs are ACKed and
// old duplicates cannot reach a new incarnation.
func (e *endpoint) enterTimeWait() {
	e.setState(StateTimeWait)
	e.stopRtx()
	e.stopDelack()
	e.stack.Stats().TCPExt.TW.Add(1)
	t := e.proto.ports
	t.mu.Lock()
	if e.owner != nil {
		e.owner.timeWait = true
	}
	e.twStamp = e.tsRecentStamp
	e.twLoopback = e.route != nil && e.route.IsLocal()
	t.mu.Unlock()
	e.armKeep(timerTimeWait, timeWaitLen)
	e.notify(waiterAll)
}

// twReusable is tcp_twsk_unique: connect may take over this TIME_WAIT
// 4-tuple when tcp_tw_reuse allows (2: loopback only), timestamps were in
// use and the last one is at least a second old. Called under the table
// lock only; reads fields written under it.
func (e *endpoint) twReusable(p *Protocol) bool {
	if e.owner == nil || !e.owner.timeWait {
		return false
	}
	switch p.cfg.TwReuse {
	case 0:
		return false
	case 2:
		if !e.twLoopback {
			return false
		}
	}
	return !e.twStamp.IsZero() && p.clock.Now().Sub(e.twStamp) >= time.Second
}

// timeWaitSegment is tcp_timewait_state_process. It returns true when a
// new SYN should open a new connection through the listener (TCP_TW_SYN).
func (e *endpoint) timeWaitSegment(s *segment) bool {
	if s.has(header.TCPFlagRst) {
		// TIME_WAIT assassination (tcp_rfc1337 = 0): the RST kills us.
		if s.seq == e.rcvNxt || s.seq.InWindow(e.rcvNxt, seqnum.Size(max(e.rcvWnd, 1))) {
			e.setState(StateClose)
		}
		return false
	}
	if s.has(header.TCPFlagSyn) && !s.has(header.TCPFlagAck) {
		newer := e.rcvNxt.LessThan(s.seq)
		if e.tsOK && s.opts.HasTimestamps {
			newer = int32(s.opts.TSVal-e.tsRecent) > 0 || newer && int32(s.opts.TSVal-e.tsRecent) >= 0
		}
		if newer {
			e.setState(StateClose)
			return true
		}
	}
	if e.tsOK && s.opts.HasTimestamps && int32(s.opts.TSVal-e.tsRecent) < 0 {
		e.stack.Stats().TCPExt.PAWSEstab.Add(1)
		e.sendTWAck()
		return false
	}
	if s.has(header.TCPFlagFin) && s.endSeq == e.rcvNxt {
		// A retransmitted FIN: ACK it and restart the timer.
		e.armKeep(timerTimeWait, timeWaitLen)
	}
	if s.length() > 0 || s.has(header.TCPFlagAck) && !s.has(header.TCPFlagSyn) && s.endSeq != e.rcvNxt {
		e.sendTWAck()
		return false
	}
	if s.has(header.TCPFlagFin) || s.has(header.TCPFlagSyn) {
		e.sendTWAck()
	}
	return false
}

// sendTWAck sends the ACK of a TIME_WAIT socket (tcp_v4_timewait_ack).
func (e *endpoint) sendTWAck() {
	if e.route == nil {
		return
	}
	e.transmit(e.sndNxt, 0, ackFlag, false)
}
