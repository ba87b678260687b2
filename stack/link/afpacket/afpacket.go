// Package afpacket is a link endpoint on an AF_PACKET raw socket bound to
// an existing interface (typically one end of a veth pair). Frames move in
// batches with recvmmsg and sendmmsg; with Config.VnetHdr each carries a
// virtio-net header for segmentation and checksum offload.
package afpacket

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
)

// Endpoint is a packet socket on one interface.
type Endpoint struct {
	iface   string
	mtu     int
	mac     header.MAC
	vnetHdr bool
	caps    link.Capabilities

	file *os.File
	conn syscall.RawConn

	dispatcher atomic.Pointer[link.Dispatcher]
	closed     atomic.Bool
	closeOnce  sync.Once
	wg         sync.WaitGroup
	stats      counters.Counters

	rx receiver
	tx transmitter
}

var _ link.Endpoint = (*Endpoint)(nil)

// New opens a packet socket on cfg.Interface and starts receiving.
func New(cfg Config) (*Endpoint, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("afpacket: no interface: %w", unix.EINVAL)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	fd, info, err := openSocket(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MAC == (header.MAC{}) {
		cfg.MAC = info.mac
	}
	if cfg.MTU <= 0 {
		cfg.MTU = info.mtu
	}
	e := &Endpoint{
		iface:   cfg.Interface,
		mtu:     cfg.MTU,
		mac:     cfg.MAC,
		vnetHdr: cfg.VnetHdr,
		caps:    link.CapEthernet,
		file:    os.NewFile(uintptr(fd), "afpacket:"+cfg.Interface),
	}
	if cfg.VnetHdr {
		e.caps |= link.CapGSO | link.CapTXChecksumOffload
	}
	e.conn, err = e.file.SyscallConn()
	if err != nil {
		e.file.Close()
		return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interface, err)
	}
	e.rx.init(e, cfg.BatchSize)
	e.tx.init(e, cfg.BatchSize)
	e.wg.Add(1)
	go e.readLoop()
	return e, nil
}

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.mtu }

// LinkAddress implements link.Endpoint.
func (e *Endpoint) LinkAddress() header.MAC { return e.mac }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		return
	}
	e.dispatcher.Store(&d)
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }

// Close implements link.Endpoint: it stops the reader and closes the
// socket.
func (e *Endpoint) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		err = e.file.Close()
		e.wg.Wait()
		e.rx.release()
	})
	if err != nil {
		return fmt.Errorf("afpacket: close %s: %w", e.iface, err)
	}
	return nil
}

// maxFrame is the largest frame the endpoint takes from the stack.
func (e *Endpoint) maxFrame() int {
	if e.vnetHdr {
		return link.GSOMaxSize + header.EthernetLen
	}
	return e.mtu + header.EthernetLen
}
