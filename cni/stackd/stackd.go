// Package stackd is the per-sandbox stack process (`netprov stack`): it
// opens the sandbox's TAP, runs a stack node with the sandbox's addresses
// and routes, and serves the control socket (see package control), through
// which seccomp notify fds arrive and are served by socketshim over the
// node's netstack provider (or over kernel sockets with provider "host").
package stackd

import (
	"context"
	"errors"
	"fmt"
	"github.com/netprov/netprov/stack/link/sniffer"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/netprov/netprov/cni/attachnet"
	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/provider/host"
	"github.com/netprov/netprov/provider/netstack"
	"github.com/netprov/netprov/socketshim"
	"github.com/netprov/netprov/socketshim/seccomp"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/tap"
	"github.com/netprov/netprov/stack/node"
)

// defaultHandoffWarn is how long the process waits for a seccomp fd
// before it warns that the container has loopback only.
const defaultHandoffWarn = 30 * time.Second

// Run runs the stack process of the sandbox whose state directory is dir
// until ctx ends (SIGTERM), then stops every Server, closes the stack and
// removes the control socket and pid file.
func Run(ctx context.Context, dir string, log *slog.Logger) error {
	cfg, err := control.ReadSandboxConfig(dir)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	log = log.With("container", cfg.ContainerID)
	d := &daemon{cfg: cfg, log: log, started: time.Now(), servers: map[int]context.CancelFunc{}}
	if d.attach, err = ReadAttachConfig(dir); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	prov, mac, err := d.buildProvider()
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	defer func() {
		prov.Close()
		d.releaseAttach() // after the packet socket is closed
	}()
	d.prov, d.mac = prov, mac

	sock := filepath.Join(dir, control.SocketFile)
	os.Remove(sock) // stale, from a process that died
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("stack: control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("stack: %w", err)
	}
	pidFile := filepath.Join(dir, control.PIDFile)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("stack: %w", err)
	}
	d.setReady()
	log.Info("stack ready", "provider", cfg.Provider, "tap", cfg.TAP, "mac", mac, "addresses", cfg.Addresses)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.warnWithoutHandoff(runCtx)
	serveErr := control.Serve(runCtx, ln, d, log)
	cancel()
	d.wg.Wait()
	os.Remove(pidFile)
	log.Info("stack stopped", "handoffs", d.handoffCount())
	return serveErr
}

// daemon is the running stack process; it implements control.Handler.
type daemon struct {
	cfg     *control.SandboxConfig
	log     *slog.Logger
	started time.Time
	prov    provider.Provider
	mac     string
	// sniffer wraps the TAP or packet socket (netstack provider) for
	// netprov capture.
	sniffer *sniffer.Endpoint
	// announce sends gratuitous ARP for the sandbox addresses (TAP mode).
	announce func()
	// attach is set for an attach-mode sandbox (AttachFile); attached is
	// its link once open.
	attach   *AttachConfig
	attached *attachnet.Link
	wg       sync.WaitGroup

	mu       sync.Mutex
	ready    bool
	handoffs int
	closing  bool // shutting down: no new Servers
	nextID   int
	servers  map[int]context.CancelFunc
}

func (d *daemon) setReady() {
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
}

func (d *daemon) handoffCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handoffs
}

// buildProvider makes the provider: netstack over the TAP, or host.
func (d *daemon) buildProvider() (provider.Provider, string, error) {
	switch d.cfg.Provider {
	case "host":
		p, err := host.New("/proc/self/ns/net")
		if err != nil {
			return nil, "", err
		}
		return p, d.cfg.MAC, nil
	case "netstack", "":
	default:
		return nil, "", fmt.Errorf("unknown provider %q", d.cfg.Provider)
	}
	if d.attach != nil {
		return d.buildAttachProvider()
	}
	var mac header.MAC
	if d.cfg.MAC != "" {
		hw, err := net.ParseMAC(d.cfg.MAC)
		// A multicast source address is never valid on the wire (the CNI
		// plugin refuses it; a hand-edited config.json may not).
		if err != nil || len(hw) != 6 || hw[0]&0x01 != 0 {
			return nil, "", fmt.Errorf("bad MAC %q: want a unicast Ethernet address", d.cfg.MAC)
		}
		copy(mac[:], hw)
	}
	// With the virtio-net header TCP sends super-segments (see netprov run).
	ep, err := tap.New(tap.Config{Name: d.cfg.TAP, MTU: d.cfg.MTU, MAC: mac, VnetHdr: true})
	if err != nil {
		return nil, "", fmt.Errorf("TAP %s: %w", d.cfg.TAP, err)
	}
	// Recording is off until `netprov capture` asks for it (OpCapture).
	sniff, err := sniffer.New(ep, nil, sniffer.Config{})
	if err != nil {
		ep.Close()
		return nil, "", fmt.Errorf("sniffer: %w", err)
	}
	d.sniffer = sniff
	n, err := node.New(node.Options{})
	if err != nil {
		ep.Close()
		return nil, "", fmt.Errorf("node: %w", err)
	}
	nic, err := n.AddNIC(sniff, d.cfg.IfName, d.cfg.Addresses...)
	if err != nil {
		n.Close()
		ep.Close()
		return nil, "", fmt.Errorf("NIC: %w", err)
	}
	if err := addRoutes(n, nic.ID(), d.cfg.Routes); err != nil {
		n.Close()
		return nil, "", err
	}
	if a := n.ARP.Endpoint(nic.ID()); a != nil {
		d.announce = a.Announce
	}
	return netstack.NewWithConfig(n, netstack.Config{OwnsNode: true}), ep.LinkAddress().String(), nil
}

// Announce implements control.Announcer: the plugin asks for it once the
// TAP is on the bridge, where the addresses' first gratuitous ARP (sent
// when they were added, into a TAP not yet attached) could not go.
func (d *daemon) Announce() error {
	if d.announce == nil {
		return fmt.Errorf("provider %s has no link of its own to announce on", d.cfg.Provider)
	}
	d.announce()
	return nil
}

// Capture implements control.Capturer: the sandbox link as pcap until
// ctx ends.
func (d *daemon) Capture(ctx context.Context, w io.Writer) error {
	if d.sniffer == nil {
		return fmt.Errorf("provider %s has no link of its own to capture", d.cfg.Provider)
	}
	if err := d.sniffer.Start(w); err != nil {
		return err
	}
	defer d.sniffer.Stop()
	<-ctx.Done()
	return nil
}

// Status implements control.Handler.
func (d *daemon) Status() control.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return control.Status{
		Version:     control.Version,
		ContainerID: d.cfg.ContainerID,
		PID:         os.Getpid(),
		Provider:    d.prov.Name(),
		Ready:       d.ready,
		Started:     d.started,
		TAP:         d.cfg.TAP,
		Bridge:      d.cfg.Bridge,
		MAC:         d.mac,
		Addresses:   d.cfg.Addresses,
		Handoffs:    d.handoffs,
		Serving:     len(d.servers),
	}
}

// Connections implements control.Handler.
func (d *daemon) Connections() []control.Connection {
	l, ok := d.prov.(provider.Lister)
	if !ok {
		return nil
	}
	var out []control.Connection
	for _, c := range l.Connections() {
		out = append(out, control.Connection{Protocol: c.Protocol, State: c.State, Local: c.Local, Remote: c.Remote, RecvQ: c.RecvQ, SendQ: c.SendQ})
	}
	return out
}

// Handoff implements control.Handler: one socketshim Server per fd, in
// its own goroutine; its end (the target exited) or its panic ends only it.
func (d *daemon) Handoff(req control.Request, fd int) error {
	if req.ContainerID != d.cfg.ContainerID {
		closeFD(fd)
		return fmt.Errorf("this is the stack of container %s, not %q", d.cfg.ContainerID, req.ContainerID)
	}
	l, err := seccomp.NewListener(fd)
	if err != nil {
		closeFD(fd)
		return fmt.Errorf("not a seccomp notify fd: %w", err)
	}
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		l.Close()
		return errors.New("the stack process is shutting down")
	}
	d.handoffs++
	d.nextID++
	id := d.nextID
	ctx, cancel := context.WithCancel(context.Background())
	d.servers[id] = cancel
	d.mu.Unlock()
	log := d.log.With("handoff", id, "pid", req.PID)
	log.Info("serving seccomp fd", "metadata", req.Metadata)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				log.Error("socket server panicked; the stack keeps running", "panic", r)
			}
			l.Close()
			cancel()
			d.mu.Lock()
			delete(d.servers, id)
			d.mu.Unlock()
		}()
		err := socketshim.NewServer(l, d.prov, socketshim.Config{Logger: log}).Serve(ctx)
		switch {
		case err == nil, errors.Is(err, context.Canceled), errors.Is(err, seccomp.ErrTargetGone):
			log.Info("seccomp target ended")
		default:
			log.Warn("seccomp server ended", "err", err)
		}
	}()
	return nil
}

// stopServers cancels every Server (shutdown).
func (d *daemon) stopServers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closing = true
	for _, c := range d.servers {
		c()
	}
}

// warnWithoutHandoff logs once when no seccomp fd has arrived in time: the
// container's sockets then live in its kernel netns, which has loopback
// only. At the end it stops the Servers.
func (d *daemon) warnWithoutHandoff(ctx context.Context) {
	wait := defaultHandoffWarn
	if d.cfg.HandoffWarnSeconds > 0 {
		wait = time.Duration(d.cfg.HandoffWarnSeconds) * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		if d.handoffCount() == 0 {
			d.log.Warn("no seccomp fd handed off: the container has loopback only (is the netprov seccomp profile with listenerPath in use, and `netprov agent` running?)",
				"after", wait.String())
		}
		<-ctx.Done()
	}
	d.stopServers()
}
