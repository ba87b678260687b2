package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
)

// Conn adapts a connected socket (TCP, or UDP after connect) to net.Conn.
// Deadlines interrupt blocking calls through the socket's context
// parameter; Close wakes blocked calls, which then fail with
// net.ErrClosed.
type Conn struct {
	so     *Socket
	rd, wd deadline
	closed atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

// NewConn wraps so; the Conn owns it.
func NewConn(so *Socket) *Conn { return &Conn{so: so} }

// Socket returns the underlying socket.
func (c *Conn) Socket() *Socket { return c.so }

func (c *Conn) network() string {
	switch c.so.protocol {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	}
	return "ip"
}

// opError wraps a socket error as the net package does, mapping an
// interruption caused by a deadline or Close.
func opError(op, network string, so *Socket, closed bool, d *deadline, err error) error {
	switch {
	case closed:
		err = net.ErrClosed
	case IsInterrupt(err) && d.expired():
		err = os.ErrDeadlineExceeded
	case err == unix.EAGAIN && d.expired():
		err = os.ErrDeadlineExceeded
	default:
		err = os.NewSyscallError(op, err)
	}
	return &net.OpError{Op: op, Net: network, Source: sockAddr(so.protocol, so.LocalAddr()), Err: err}
}

// Read implements net.Conn: io.EOF once a stream's peer has closed.
func (c *Conn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, opError("read", c.network(), c.so, true, &c.rd, nil)
	}
	n, err := c.so.Read(&c.rd, p)
	if err != nil {
		return 0, opError("read", c.network(), c.so, c.closed.Load(), &c.rd, err)
	}
	if n == 0 && len(p) > 0 && c.so.sotype == unix.SOCK_STREAM {
		return 0, io.EOF
	}
	return n, nil
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, opError("write", c.network(), c.so, true, &c.wd, nil)
	}
	n, _, err := c.so.Send(&c.wd, p, unix.MSG_NOSIGNAL)
	if err == nil && n < len(p) && c.so.sotype == unix.SOCK_STREAM {
		err = unix.EINTR // a deadline or Close cut the write short
	}
	if err != nil {
		return n, opError("write", c.network(), c.so, c.closed.Load(), &c.wd, err)
	}
	return n, nil
}

// Close implements net.Conn.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return &net.OpError{Op: "close", Net: c.network(), Err: net.ErrClosed}
	}
	past := time.Unix(1, 0)
	c.rd.set(past)
	c.wd.set(past)
	return c.so.Close()
}

// CloseWrite shuts down the sending side (like *net.TCPConn).
func (c *Conn) CloseWrite() error { return c.so.Shutdown(unix.SHUT_WR) }

// CloseRead shuts down the receiving side.
func (c *Conn) CloseRead() error { return c.so.Shutdown(unix.SHUT_RD) }

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return sockAddr(c.so.protocol, c.so.LocalAddr()) }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr {
	ap, err := c.so.PeerAddr()
	if err != nil {
		return nil
	}
	return sockAddr(c.so.protocol, ap)
}

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// Listener adapts a listening socket to net.Listener.
type Listener struct {
	so     *Socket
	d      deadline
	closed atomic.Bool
}

var _ net.Listener = (*Listener)(nil)

// NewListener wraps a listening socket; the Listener owns it.
func NewListener(so *Socket) *Listener { return &Listener{so: so} }

// Socket returns the underlying socket.
func (l *Listener) Socket() *Socket { return l.so }

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	ns, _, err := l.so.AcceptAddr(&l.d, 0)
	if err != nil {
		return nil, opError("accept", "tcp", l.so, l.closed.Load(), &l.d, err)
	}
	return NewConn(ns), nil
}

// SetDeadline sets the deadline of Accept (like *net.TCPListener).
func (l *Listener) SetDeadline(t time.Time) error { l.d.set(t); return nil }

// Close implements net.Listener.
func (l *Listener) Close() error {
	if l.closed.Swap(true) {
		return &net.OpError{Op: "close", Net: "tcp", Err: net.ErrClosed}
	}
	l.d.set(time.Unix(1, 0))
	return l.so.Close()
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return sockAddr(l.so.protocol, l.so.LocalAddr()) }

// PacketConn adapts a datagram socket to net.PacketConn.
type PacketConn struct {
	Conn
}

var _ net.PacketConn = (*PacketConn)(nil)

// NewPacketConn wraps a datagram socket; the PacketConn owns it.
func NewPacketConn(so *Socket) *PacketConn {
	return &PacketConn{Conn: Conn{so: so}}
}

// ReadFrom implements net.PacketConn.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, sockAddr(c.so.protocol, from), nil
}

// ReadFromAddrPort is ReadFrom without allocating an address.
func (c *PacketConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	if c.closed.Load() {
		return 0, netip.AddrPort{}, opError("read", c.network(), c.so, true, &c.rd, nil)
	}
	r, err := c.so.RecvMsg(&c.rd, p, 0)
	if err != nil {
		return 0, netip.AddrPort{}, opError("read", c.network(), c.so, c.closed.Load(), &c.rd, err)
	}
	return r.N, r.From, nil
}

// WriteTo implements net.PacketConn.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.IPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return 0, &net.OpError{Op: "write", Net: c.network(), Addr: addr, Err: unix.EINVAL}
		}
		ap = netip.AddrPortFrom(ip, 0)
	default:
		return 0, &net.OpError{Op: "write", Net: c.network(), Addr: addr, Err: unix.EINVAL}
	}
	return c.WriteToAddrPort(p, ap)
}

// WriteToAddrPort is WriteTo with a typed address.
func (c *PacketConn) WriteToAddrPort(p []byte, ap netip.AddrPort) (int, error) {
	if c.closed.Load() {
		return 0, opError("write", c.network(), c.so, true, &c.wd, nil)
	}
	n, _, err := c.so.SendMsg(&c.wd, p, unix.MSG_NOSIGNAL, ap)
	if err != nil {
		return 0, opError("write", c.network(), c.so, c.closed.Load(), &c.wd, err)
	}
	return n, nil
}

// sockAddr converts an address to the net package's type for the
// protocol.
func sockAddr(protocol int, ap netip.AddrPort) net.Addr {
	switch protocol {
	case protoTCP:
		return net.TCPAddrFromAddrPort(ap)
	case protoUDP:
		return net.UDPAddrFromAddrPort(ap)
	}
	return &net.IPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone()}
}

// parseNetwork resolves a Go network name and a literal "host:port"
// address (no name resolution: the host is an IP literal, "localhost" or
// empty for the wildcard) into a family, type and address. "tcp" and
// "udp" with no host or an IPv6 host use a dual-stack AF_INET6 socket,
// as Go's net package does.
func parseNetwork(network, address string) (family, sotype int, ap netip.AddrPort, err error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		sotype = unix.SOCK_STREAM
	case "udp", "udp4", "udp6":
		sotype = unix.SOCK_DGRAM
	default:
		return 0, 0, ap, fmt.Errorf("network %q: %w", network, net.UnknownNetworkError(network))
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return 0, 0, ap, fmt.Errorf("address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, 0, ap, fmt.Errorf("address %q: bad port: %w", address, err)
	}
	var a netip.Addr
	switch host {
	case "":
	case "localhost":
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if network[len(network)-1] == '6' {
			a = netip.IPv6Loopback()
		}
	default:
		if a, err = netip.ParseAddr(host); err != nil {
			return 0, 0, ap, fmt.Errorf("address %q: host must be an IP literal: %w", address, err)
		}
	}
	suffix := network[len(network)-1]
	switch {
	case suffix == '4' || (suffix != '6' && a.Is4()):
		if a.IsValid() && !a.Unmap().Is4() {
			return 0, 0, ap, fmt.Errorf("address %q is not IPv4", address)
		}
		family = unix.AF_INET
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
		}
		a = a.Unmap()
	default:
		if suffix == '6' && a.Is4() {
			return 0, 0, ap, fmt.Errorf("address %q is not IPv6", address)
		}
		family = unix.AF_INET6
		if !a.IsValid() {
			a = netip.IPv6Unspecified()
		}
	}
	return family, sotype, netip.AddrPortFrom(a, uint16(port)), nil
}

// somaxconn is net.core.somaxconn, the backlog Go's listeners ask for.
const somaxconn = 4096

// Listen opens a stream listener on s, like net.Listen ("tcp", "tcp4",
// "tcp6"): SO_REUSEADDR is set, as Go does.
func Listen(s *stack.Stack, network, address string) (*Listener, error) {
	family, sotype, ap, err := parseNetwork(network, address)
	if err != nil {
		return nil, err
	}
	if sotype != unix.SOCK_STREAM {
		return nil, fmt.Errorf("listen %s: %w", network, net.UnknownNetworkError(network))
	}
	so, err := newBound(s, family, sotype, network, ap, true)
	if err != nil {
		return nil, err
	}
	if err := so.Listen(somaxconn); err != nil {
		so.Close()
		return nil, fmt.Errorf("listen %s %s: %w", network, address, err)
	}
	return NewListener(so), nil
}

// ListenPacket opens a datagram socket bound to address, like
// net.ListenPacket ("udp", "udp4", "udp6").
func ListenPacket(s *stack.Stack, network, address string) (*PacketConn, error) {
	family, sotype, ap, err := parseNetwork(network, address)
	if err != nil {
		return nil, err
	}
	if sotype != unix.SOCK_DGRAM {
		return nil, fmt.Errorf("listen packet %s: %w", network, net.UnknownNetworkError(network))
	}
	so, err := newBound(s, family, sotype, network, ap, false)
	if err != nil {
		return nil, err
	}
	return NewPacketConn(so), nil
}

func newBound(s *stack.Stack, family, sotype int, network string, ap netip.AddrPort, reuse bool) (*Socket, error) {
	so, err := New(s, family, sotype, 0)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", network, err)
	}
	var one [4]byte
	one[0] = 1
	if reuse {
		if err := so.SetSockOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR, one[:]); err != nil {
			so.Close()
			return nil, fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
		}
	}
	if family == unix.AF_INET6 && network[len(network)-1] == '6' {
		if err := so.SetSockOpt(unix.SOL_IPV6, unix.IPV6_V6ONLY, one[:]); err != nil {
			so.Close()
			return nil, fmt.Errorf("setsockopt IPV6_V6ONLY: %w", err)
		}
	}
	if err := so.BindAddr(ap); err != nil {
		so.Close()
		return nil, fmt.Errorf("bind %s %v: %w", network, ap, err)
	}
	return so, nil
}

// Dial connects to address on s, like net.Dial ("tcp*", "udp*"); ctx
// bounds a TCP handshake.
func Dial(ctx context.Context, s *stack.Stack, network, address string) (*Conn, error) {
	family, sotype, ap, err := parseNetwork(network, address)
	if err != nil {
		return nil, err
	}
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		// Go dials the local system for an empty host.
		if family == unix.AF_INET {
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
		} else {
			ap = netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
		}
	}
	so, err := New(s, family, sotype, 0)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", network, err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := so.ConnectAddr(ctx, ap); err != nil {
		so.Close()
		if IsInterrupt(err) && ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Addr: sockAddr(so.protocol, ap), Err: err}
	}
	return NewConn(so), nil
}
