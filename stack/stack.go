package stack

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/link"
)

// Options configure a new Stack.
type Options struct {
	// Clock drives every timer; nil means the wall clock.
	Clock clock.Clock
	// Config is the namespace-wide settings; the zero value means DefaultConfig.
	Config *Config
	// Logger receives the stack's diagnostics; nil means slog.Default.
	Logger *slog.Logger
}

// Stack is one userspace network namespace: NICs, addresses, routes and the
// protocols registered on it.
type Stack struct {
	clock  clock.Clock
	config Config
	log    *slog.Logger
	stats  Stats

	// Protocol registries are written only before the first NIC is added and
	// read without locks afterwards (on every packet).
	netProtos   []NetworkProtocol
	transProtos [256]TransportProtocol
	sealed      atomic.Bool

	mu     sync.RWMutex
	nics   map[int]*NIC
	nextID int
	routes routeTable

	// local is the lock-free snapshot of assigned addresses (localaddr.go);
	// localMu serialises its rebuilds.
	localMu sync.Mutex
	local   atomic.Pointer[localAddrs]
}

// New returns an empty stack. Register protocols, then add NICs.
func New(o Options) *Stack {
	s := &Stack{clock: o.Clock, log: o.Logger, nics: make(map[int]*NIC), nextID: 1}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.Config != nil {
		s.config = *o.Config
	} else {
		s.config = DefaultConfig()
	}
	return s
}

// Clock returns the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clock }

// Config returns the namespace-wide settings. Callers must not modify it.
func (s *Stack) Config() *Config { return &s.config }

// Logger returns the stack's logger.
func (s *Stack) Logger() *slog.Logger { return s.log }

// Stats returns the stack's counters.
func (s *Stack) Stats() *Stats { return &s.stats }

// RegisterNetworkProtocol adds a network protocol. It must be called before
// any NIC is added.
func (s *Stack) RegisterNetworkProtocol(p NetworkProtocol) {
	if s.sealed.Load() {
		panic("stack: network protocol registered after a NIC was added")
	}
	s.netProtos = append(s.netProtos, p)
}

// RegisterTransportProtocol adds a transport protocol. It must be called
// before any NIC is added.
func (s *Stack) RegisterTransportProtocol(p TransportProtocol) {
	if s.sealed.Load() {
		panic("stack: transport protocol registered after a NIC was added")
	}
	s.transProtos[p.Number()] = p
}

// TransportProtocol returns the registered protocol with IP protocol
// number n, or nil.
func (s *Stack) TransportProtocol(n uint8) TransportProtocol { return s.transProtos[n] }

// NICOptions configure a new NIC.
type NICOptions struct {
	// Name is the interface name shown to users ("eth0", "lo").
	Name string
}

// AddNIC attaches a link endpoint as a new NIC and starts receiving on it.
func (s *Stack) AddNIC(ep link.Endpoint, o NICOptions) (*NIC, error) {
	s.sealed.Store(true)
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	if o.Name == "" {
		o.Name = fmt.Sprintf("nic%d", id)
	}
	for _, n := range s.nics {
		if n.name == o.Name {
			s.mu.Unlock()
			return nil, fmt.Errorf("add NIC %q: name already in use", o.Name)
		}
	}
	nic := newNIC(s, id, o.Name, ep)
	s.nics[id] = nic
	s.mu.Unlock()
	s.rebuildLocal()
	ep.Attach(nic)
	return nic, nil
}

// RemoveNIC detaches and closes a NIC and removes its routes.
func (s *Stack) RemoveNIC(id int) error {
	s.mu.Lock()
	nic, ok := s.nics[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("remove NIC %d: no such NIC", id)
	}
	delete(s.nics, id)
	s.routes.removeNIC(id)
	s.mu.Unlock()
	s.rebuildLocal()
	return nic.close()
}

// NIC returns the NIC with the given id, or nil.
func (s *Stack) NIC(id int) *NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nics[id]
}

// NICByName returns the NIC with the given name, or nil.
func (s *Stack) NICByName(name string) *NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range s.nics {
		if n.name == name {
			return n
		}
	}
	return nil
}

// NICs returns all NICs ordered by id.
func (s *Stack) NICs() []*NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*NIC, 0, len(s.nics))
	for id := 1; id < s.nextID; id++ {
		if n, ok := s.nics[id]; ok {
			out = append(out, n)
		}
	}
	return out
}

// Close removes every NIC.
func (s *Stack) Close() error {
	var first error
	for _, n := range s.NICs() {
		if err := s.RemoveNIC(n.id); err != nil && first == nil {
			first = err
		}
	}
	return first
}
