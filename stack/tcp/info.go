package tcp

import (
	"encoding/binary"
	"time"
)

// tcpInfoLen is sizeof(struct tcp_info) in Linux 6.10+.
const tcpInfoLen = 248

// tcpi_options bits.
const (
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
)

// fillTCPInfo writes struct tcp_info (include/uapi/linux/tcp.h) into b,
// which is tcpInfoLen bytes, native endian.
func (e *endpoint) fillTCPInfo(b []byte) {
	ne := binary.NativeEndian
	us := func(d time.Duration) uint32 { return uint32(d / time.Microsecond) }
	ms := func(t time.Time) uint32 {
		if t.IsZero() {
			return 0
		}
		return uint32(e.proto.clock.Now().Sub(t) / time.Millisecond)
	}
	b[0] = uint8(e.userState())
	b[1] = uint8(e.ca)
	b[2] = uint8(min(e.retransmits, 255))
	b[3] = uint8(min(e.probesOut, 255))
	b[4] = uint8(min(e.backoff, 255))
	var opts uint8
	if e.tsOK {
		opts |= tcpiOptTimestamps
	}
	if e.sackOK {
		opts |= tcpiOptSACK
	}
	if e.wscaleOK {
		opts |= tcpiOptWscale
	}
	b[5] = opts
	if e.wscaleOK {
		b[6] = e.sndWscale&0xf | e.rcvWscale<<4
	}
	if e.state == StateListen {
		// Listeners report the accept queue in unacked/sacked.
		ne.PutUint32(b[24:], uint32(len(e.acceptQ)))
		ne.PutUint32(b[28:], uint32(e.backlog))
		return
	}
	ne.PutUint32(b[8:], us(e.rto))
	ne.PutUint32(b[12:], us(e.ato))
	ne.PutUint32(b[16:], uint32(e.mss))
	ne.PutUint32(b[20:], uint32(e.rcvMSS))
	m := max(e.mss, 1)
	unacked := (int(e.sndUna.Size(e.sndNxt)) + m - 1) / m
	ne.PutUint32(b[24:], uint32(unacked))
	ne.PutUint32(b[28:], uint32((e.sackedBytes()+m-1)/m))
	if e.ca == caLoss || e.ca == caRecovery {
		from := e.sndUna
		if e.highRxt.LessThan(e.lostEnd) && from.LessThan(e.highRxt) {
			from = e.highRxt
		}
		if from.LessThan(e.lostEnd) {
			ne.PutUint32(b[32:], uint32((int(from.Size(e.lostEnd))+m-1)/m))
		}
	}
	ne.PutUint32(b[44:], ms(e.lastSend))
	ne.PutUint32(b[52:], ms(e.lastRecv))
	ne.PutUint32(b[56:], ms(e.lastAckRecv))
	if e.route != nil {
		ne.PutUint32(b[60:], uint32(e.route.MTU))
	}
	ne.PutUint32(b[64:], e.rcvSSThresh)
	ne.PutUint32(b[68:], us(e.srtt))
	ne.PutUint32(b[72:], us(e.rttvar))
	ne.PutUint32(b[76:], e.cw.SSThresh)
	ne.PutUint32(b[80:], e.cw.Cwnd)
	ne.PutUint32(b[84:], uint32(e.advmss))
	ne.PutUint32(b[88:], dupThresh)
	ne.PutUint32(b[92:], us(e.rcvRTT))
	ne.PutUint32(b[96:], uint32(e.rcvSpace))
	ne.PutUint32(b[100:], e.totalRetrans)
	ne.PutUint64(b[120:], e.bytesAcked)
	ne.PutUint64(b[128:], e.bytesReceived)
	ne.PutUint32(b[136:], e.segsOut)
	ne.PutUint32(b[140:], e.segsIn)
	unsent := 0
	if e.sndNxt.LessThan(e.writeSeq) {
		unsent = int(e.sndNxt.Size(e.writeSeq))
	}
	ne.PutUint32(b[144:], uint32(unsent))
	ne.PutUint32(b[148:], us(e.minRTT))
	ne.PutUint32(b[152:], e.dataSegsIn)
	ne.PutUint32(b[156:], e.dataSegsOut)
	ne.PutUint64(b[200:], e.bytesSent)
	ne.PutUint64(b[208:], e.bytesRetrans)
	ne.PutUint32(b[216:], e.dsackDups)
	ne.PutUint32(b[228:], e.sndWnd)
	ne.PutUint32(b[232:], e.rcvWnd)
}
