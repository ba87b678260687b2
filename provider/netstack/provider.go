package netstack

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/stack/node"
	"github.com/netprov/netprov/stack/socket"
)

// Config configures a Provider.
type Config struct {
	// Name is what Name returns (default "netstack"; provider/none uses
	// "none").
	Name string
	// OwnsNode makes Close close the node too.
	OwnsNode bool
}

// Provider serves a sandbox's sockets from a userspace stack node.
type Provider struct {
	node *node.Node
	cfg  Config
	seed maphash.Seed

	mu      sync.Mutex
	sockets map[*Socket]struct{}
	closed  bool

	settle settleState // see settle.go

	cnetOnce sync.Once
	cnet     *conduitNet // nil: UDP and TCP sockets keep AF_UNIX conduits
	// pairs are the pair listeners of TCP conduits (AF_INET, AF_INET6),
	// under mu.
	pairs [2]*pairListener
}

var _ provider.Provider = (*Provider)(nil)
var _ provider.Lister = (*Provider)(nil)

// New returns a provider named "netstack" over n; n stays the caller's.
func New(n *node.Node) *Provider { return NewWithConfig(n, Config{}) }

// NewWithConfig returns a provider over n configured by cfg.
func NewWithConfig(n *node.Node, cfg Config) *Provider {
	if cfg.Name == "" {
		cfg.Name = "netstack"
	}
	return &Provider{node: n, cfg: cfg, seed: maphash.MakeSeed(), sockets: make(map[*Socket]struct{})}
}

// Node is the stack node behind the provider.
func (p *Provider) Node() *node.Node { return p.node }

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.cfg.Name }

// Handles implements provider.Provider: every AF_INET and AF_INET6 socket
// (the stack answers unsupported types with Linux's errno, e.g. EPERM for
// SOCK_RAW so ping falls back to an echo socket).
func (p *Provider) Handles(family, sotype, protocol int) bool {
	return family == unix.AF_INET || family == unix.AF_INET6
}

// Socket implements provider.Provider.
func (p *Provider) Socket(family, sotype, protocol int) (provider.Socket, error) {
	so, err := socket.New(p.node.Stack, family, sotype&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), protocol)
	if err != nil {
		return nil, err
	}
	s, err := p.wrap(so, false)
	if err != nil {
		so.Close()
		return nil, err
	}
	return s, nil
}

// wrap gives a stack socket its conduit and registers it. established
// marks an accepted connection (pumps start at once).
func (p *Provider) wrap(so *socket.Socket, established bool) (*Socket, error) {
	var c *conduit
	var err error
	if p.udpConduits(so) {
		// On failure (the conduit namespace's ports or addresses ran
		// out) the socket gets a SEQPACKET conduit instead.
		if c, err = newUDPConduit(p.cnet, so.Family()); err != nil {
			slog.Debug("netstack: UDP conduit", "err", err)
		}
	}
	if c == nil && so.Type() == unix.SOCK_STREAM {
		if l := p.pairListener(so); l != nil {
			if c, err = newTCPConduit(p.cnet, l, so.Family(), established); err != nil {
				slog.Debug("netstack: TCP conduit", "err", err)
			}
		}
	}
	switch {
	case c != nil:
	case so.Type() != unix.SOCK_STREAM:
		c, err = newConduit(unix.SOCK_SEQPACKET, dgramConduitBuf)
	case established:
		c, err = newConduit(unix.SOCK_STREAM, streamConduitBuf)
	default:
		// Not connected until connect or listen (see newStreamConduit).
		c, err = newStreamConduit(streamConduitBuf)
	}
	if err != nil {
		return nil, err
	}
	s := newSocket(p, so, c)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return nil, unix.EBADF
	}
	p.sockets[s] = struct{}{}
	p.mu.Unlock()
	switch {
	case established:
		s.startStream()
	case !s.stream:
		s.startDgram()
	}
	return s, nil
}

// udpConduits reports whether so gets a kernel UDP conduit
// (udpconduit.go), making the conduit namespace on first use. Without it
// (no CAP_SYS_ADMIN, or no IPv6 for an AF_INET6 socket) a UDP socket gets
// an AF_UNIX SOCK_SEQPACKET conduit, as ICMP echo sockets always do; see
// doc.go for what that changes.
func (p *Provider) udpConduits(so *socket.Socket) bool {
	if so.Protocol() != unix.IPPROTO_UDP {
		return false
	}
	n := p.conduitNet()
	return n != nil && (so.Family() == unix.AF_INET || n.v6)
}

// conduitNet is the conduit namespace, made on first use; nil when it
// cannot be made.
func (p *Provider) conduitNet() *conduitNet {
	p.cnetOnce.Do(func() {
		n, err := newConduitNet()
		if err != nil {
			slog.Warn("netstack: no conduit namespace: UDP and TCP sockets get AF_UNIX conduits", "err", err)
			return
		}
		p.cnet = n
	})
	return p.cnet
}

// pairListener is the pair listener for TCP conduits of so's family, made
// on first use; nil when TCP sockets keep AF_UNIX conduits.
func (p *Provider) pairListener(so *socket.Socket) *pairListener {
	n := p.conduitNet()
	if n == nil || so.Protocol() != unix.IPPROTO_TCP || so.Family() == unix.AF_INET6 && !n.v6 {
		return nil
	}
	i := 0
	if so.Family() == unix.AF_INET6 {
		i = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pairs[i] == nil && !p.closed {
		l, err := n.newPairListener(so.Family())
		if err != nil {
			slog.Warn("netstack: TCP sockets get AF_UNIX conduits", "err", err)
			return nil
		}
		p.pairs[i] = l
	}
	return p.pairs[i]
}

func (p *Provider) forget(s *Socket) {
	p.mu.Lock()
	delete(p.sockets, s)
	p.mu.Unlock()
}

// Close implements provider.Provider: every socket is closed at once (no
// flush of conduit data), then the node if the provider owns it.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	all := make([]*Socket, 0, len(p.sockets))
	for s := range p.sockets {
		all = append(all, s)
	}
	p.mu.Unlock()
	for _, s := range all {
		s.abort()
	}
	p.cnetOnce.Do(func() {})
	p.mu.Lock()
	for _, l := range p.pairs {
		if l != nil {
			l.close()
		}
	}
	p.mu.Unlock()
	if p.cnet != nil {
		p.cnet.close()
	}
	if p.cfg.OwnsNode {
		return p.node.Close()
	}
	return nil
}

// cancelled is a done context: passing it to a blocking stack call makes
// it non-blocking (the call returns the interruption errno instead of
// waiting), without touching the socket's O_NONBLOCK.
var cancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
