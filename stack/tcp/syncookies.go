package tcp

import (
	"time"

	"github.com/netprov/netprov/stack/tcp/seqnum"
)

// SYN cookies as Linux encodes them (net/ipv4/syncookies.c): the ISN of
// the SYN-ACK carries a keyed hash of the 4-tuple, a minute counter and the
// index of the peer's MSS in cookieMSSTable; the timestamp carries the
// window scale and SACK-permitted bits.

const (
	cookieBits = 24
	cookieMask = (1 << cookieBits) - 1
	tsBits     = 6
	tsMask     = (1 << tsBits) - 1
	tsOptSACK  = 1 << 4
	tsWsNone   = 0xf
)

// cookieMSSTable is msstab of syncookies.c.
var cookieMSSTable = [...]uint16{536, 1300, 1440, 1460}

func (p *Protocol) cookieHash(k tupleKey, count uint32, c int) uint32 {
	var buf [5]uint64
	key := p.secrets.cookie
	if c == 1 {
		key = p.secrets.cookie2
	}
	return uint32(siphash(key, tupleWords(&buf, k.raddr, k.laddr, k.rport, k.lport, count)))
}

// cookieTime is tcp_cookie_time: minutes.
func cookieTime(now time.Time) uint32 { return uint32(now.Unix() / 60) }

// cookieInitSeq is cookie_v4_init_sequence: the cookie ISN for a SYN with
// sequence sseq and the MSS index chosen for mss.
func (p *Protocol) cookieInitSeq(k tupleKey, sseq seqnum.Value, mss int, now time.Time) (seqnum.Value, uint32) {
	var ind uint32
	for i := len(cookieMSSTable) - 1; i >= 0; i-- {
		if mss >= int(cookieMSSTable[i]) {
			ind = uint32(i)
			break
		}
	}
	count := cookieTime(now)
	c := p.cookieHash(k, 0, 0) + uint32(sseq) + count<<cookieBits +
		((p.cookieHash(k, count, 1) + ind) & cookieMask)
	return seqnum.Value(c), ind
}

// cookieCheck is __cookie_v4_check: it returns the MSS index, or -1.
func (p *Protocol) cookieCheck(k tupleKey, sseq seqnum.Value, cookie uint32, now time.Time) int {
	count := cookieTime(now)
	cookie -= p.cookieHash(k, 0, 0) + uint32(sseq)
	diff := (count - cookie>>cookieBits) & (^uint32(0) >> cookieBits)
	if diff >= maxSynCookieAge {
		return -1
	}
	ind := (cookie - p.cookieHash(k, count-diff, 1)) & cookieMask
	if ind >= uint32(len(cookieMSSTable)) {
		return -1
	}
	return int(ind)
}

// cookieTimestamp is cookie_init_timestamp: the low 6 bits of the
// timestamp encode the options (window scale, SACK).
func cookieTimestamp(now uint32, req *request) uint32 {
	opts := uint32(tsWsNone)
	if req.sndWscale >= 0 {
		opts = uint32(req.sndWscale) & 0xf
	}
	if req.sackOK {
		opts |= tsOptSACK
	}
	ts := now&^tsMask | opts
	if int32(ts-now) > 0 {
		ts -= tsMask + 1
	}
	return ts
}

// cookieAck handles an ACK that may complete a SYN-cookie handshake
// (cookie_v4_check). It returns true when the ACK was consumed.
func (l *endpoint) cookieAck(s *segment, k tupleKey) bool {
	p := l.proto
	if p.cfg.Syncookies == 0 {
		return false
	}
	now := p.clock.Now()
	if p.cfg.Syncookies != 2 && (l.lastOverflow.IsZero() || now.Sub(l.lastOverflow) > 2*time.Minute) {
		return false // tcp_synq_no_recent_overflow
	}
	st := l.stack.Stats()
	ind := p.cookieCheck(k, s.seq-1, uint32(s.ack-1), now)
	if ind < 0 {
		st.TCPExt.SyncookiesFailed.Add(1)
		return false
	}
	st.TCPExt.SyncookiesRecv.Add(1)
	r, err := p.stack.FindRoute(0, s.dst, s.src)
	if err != nil {
		return true
	}
	req := &request{l: l, key: k, iss: s.ack - 1, irs: s.seq - 1, route: r, sndWscale: -1}
	req.peerMSS = int(cookieMSSTable[ind])
	if p.cfg.Timestamps && s.opts.HasTimestamps && s.opts.TSEcr != 0 {
		req.tsOK = true
		req.tsOffset = p.tsOffset(s.dst, s.src)
		opts := (s.opts.TSEcr - req.tsOffset) & tsMask
		if ws := opts & 0xf; ws != tsWsNone && ws <= maxWscale {
			req.sndWscale = int8(ws)
		}
		req.sackOK = p.cfg.SACK && opts&tsOptSACK != 0
		req.tsRecent = s.opts.TSVal
	}
	req.advmss = r.DefaultMSS()
	if l.userMSS > 0 && l.userMSS < req.advmss {
		req.advmss = l.userMSS
	}
	l.requestWindow(req)
	if len(l.acceptQ) > l.backlog {
		st.TCPExt.ListenOverflows.Add(1)
		st.TCPExt.ListenDrops.Add(1)
		return true
	}
	c := l.createChild(req, s)
	if c != nil {
		c.mu.Lock()
		c.segmentArrived(s)
		c.mu.Unlock()
	}
	return true
}
