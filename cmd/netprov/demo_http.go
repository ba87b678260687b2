package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	stackHTTPPort  = 80
	kernelHTTPPort = 8000
	httpTimeout    = 10 * time.Second
)

// curlToStack serves HTTP from the userspace stack and fetches it with the
// kernel's curl over IPv4 and IPv6.
func (d *demo) curlToStack(ctx context.Context) error {
	n := d.topo.node
	var lns []net.Listener
	for _, a := range []netip.Addr{demoStackV4.Addr(), demoStackV6.Addr()} {
		ln, err := n.Listen("tcp", netip.AddrPortFrom(a, stackHTTPPort).String())
		if err != nil {
			return fmt.Errorf("listen on the stack: %w", err)
		}
		lns = append(lns, ln)
		d.sockets = append(d.sockets, ln)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			fmt.Fprintf(w, "Hello from netprov's userspace TCP/IP stack!\nYou (%s) reached %v: %s %s, served by Go's net/http on a stack listener.\n",
				r.RemoteAddr, local, r.Method, r.URL.Path)
		}),
		ReadHeaderTimeout: httpTimeout,
	}
	for _, ln := range lns {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.topo.log.Warn("stack HTTP server", "err", err)
			}
		}()
	}
	d.cleanups = append(d.cleanups, func() { srv.Close() })
	fmt.Fprintf(d.out, "   stack: net/http server listening on %s and %s\n", lns[0].Addr(), lns[1].Addr())

	for _, a := range []netip.Addr{demoStackV4.Addr(), demoStackV6.Addr()} {
		url := "http://" + netip.AddrPortFrom(a, stackHTTPPort).String() + "/hello"
		fmt.Fprintf(d.out, "   kernel$ curl -sS %s\n", url)
		out, err := d.topo.run(ctx, d.topo.kernelNS, "curl", "-sS", "--max-time", strconv.Itoa(int(httpTimeout/time.Second)), url)
		if err != nil {
			return err
		}
		fmt.Fprintln(d.out, indent(out))
	}
	return nil
}

// stackToPython starts the kernel's python3 http.server and fetches its
// page with net/http dialing through the userspace stack.
func (d *demo) stackToPython(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "netprov-demo-")
	if err != nil {
		return fmt.Errorf("web root: %w", err)
	}
	d.cleanups = append(d.cleanups, func() { os.RemoveAll(dir) })
	page := fmt.Sprintf("Hello from the Linux kernel's TCP/IP stack: python3 -m http.server in namespace %s.\n", d.topo.kernelNS)
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		return fmt.Errorf("web root: %w", err)
	}
	// "::" makes http.server listen dual-stack (IPv4 and IPv6).
	cmd := d.topo.kernelCommand("python3", "-m", "http.server", "--bind", "::", "--directory", dir, strconv.Itoa(kernelHTTPPort))
	if err := d.topo.start(cmd); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   kernel$ python3 -m http.server --bind :: %d\n", kernelHTTPPort)
	if err := d.waitKernelListening(ctx, kernelHTTPPort); err != nil {
		return err
	}

	client := &http.Client{
		Transport: &http.Transport{DialContext: d.topo.node.DialContext, DisableKeepAlives: true},
		Timeout:   httpTimeout,
	}
	for _, a := range []netip.Addr{demoKernelV4.Addr(), demoKernelV6.Addr()} {
		url := "http://" + netip.AddrPortFrom(a, kernelHTTPPort).String() + "/"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s through the stack: %w", url, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: read body: %w", url, err)
		}
		fmt.Fprintf(d.out, "   stack: GET %s -> %s, %d bytes:\n", url, resp.Status, len(body))
		fmt.Fprintln(d.out, indent(string(body)))
		if string(body) != page {
			return fmt.Errorf("GET %s: body differs from the file python serves", url)
		}
	}
	return nil
}

// waitKernelListening waits until a kernel TCP socket listens on port in
// the kernel peer's namespace.
func (d *demo) waitKernelListening(ctx context.Context, port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := d.topo.run(ctx, d.topo.kernelNS, "ss", "-Hltn", "sport", "= :"+strconv.Itoa(port))
		if err == nil && strings.TrimSpace(out) != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d in %s after 10 s", port, d.topo.kernelNS)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
