package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/netprov/netprov/cni/control"
)

const (
	demoPodmanHTTPPort = 8000 // the kernel HTTP server on the gateway
	demoPodmanHoldPort = 8001 // the connection held open for `netprov ss`
)

// demoPodman is `netprov demo --podman`: a busybox container under
// rootful podman (CNI backend, runc) whose sockets netprov serves, in a
// throwaway network namespace, fetching a page from a kernel HTTP server.
func demoPodman(ctx context.Context, args []string, out io.Writer, netprov string) error {
	fs := flag.NewFlagSet("demo --podman", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: netprov demo --podman")
		fmt.Fprintln(os.Stderr, "Runs a busybox container under podman (CNI backend, runc) on a netprov network")
		fmt.Fprintln(os.Stderr, "in a throwaway network namespace, fetches a page from a kernel HTTP server,")
		fmt.Fprintln(os.Stderr, "shows the container's connections, and removes everything again. Needs root.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageError{"demo --podman takes no arguments"}
	}
	if os.Geteuid() != 0 {
		return errors.New("demo --podman needs root (rootful podman, network namespaces): run it as root")
	}
	var missing []string
	for _, tool := range demoPodmanTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, f := range []string{"/usr/lib/cni/host-local", "/usr/lib/cni/portmap", defaultBaseProfile} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo --podman needs %s (scripts/setup installs the container_runtime group: podman runc busybox-static containernetworking-plugins golang-github-containers-common)", strings.Join(missing, ", "))
	}

	fmt.Fprintln(out, "== netprov demo --podman: a podman container whose sockets netprov's userspace stack serves")
	e, err := newPodmanDemoEnv(ctx, netprov)
	if err != nil {
		return fmt.Errorf("build the podman demo environment: %w", err)
	}
	defer func() {
		fmt.Fprintf(out, "\n== teardown: removing containers, agent, namespace %s, %s\n", e.nsName, e.work)
		if err := e.close(); err != nil {
			fmt.Fprintf(out, "   %v\n", err)
		}
	}()
	fmt.Fprintf(out, "   namespace %s: podman runs here (nsenter --net), bridge %s with %v\n", e.nsName, e.network, e.gateway)
	fmt.Fprintf(out, "   netprov install: CNI network %q (%v) and seccomp profile %s in %s\n", e.network, demoPodmanSubnet, e.profile, e.work)
	fmt.Fprintf(out, "   podman: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF in %s/conf (CNI backend, runc, storage in %s)\n", e.work, e.work)

	page, err := e.fetchPage(ctx, out)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, indent(page))
	if err := e.showConnection(ctx, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n== demo complete: the container's TCP went through netprov's userspace stack")
	return nil
}

// fetchPage serves HTTP from a kernel socket on the gateway and fetches it
// with busybox nc in a container; it returns the page.
func (e *podmanDemoEnv) fetchPage(ctx context.Context, out io.Writer) (string, error) {
	addr := netip.AddrPortFrom(e.gateway, demoPodmanHTTPPort)
	ln, err := e.listen(addr)
	if err != nil {
		return "", fmt.Errorf("kernel HTTP server on %v: %w", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from the Linux kernel's TCP (namespace %s)! You are %s.\n", e.nsName, r.RemoteAddr)
	}), ReadHeaderTimeout: httpTimeout}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "\n== a busybox container fetches http://%v/ from a kernel HTTP server\n", addr)
	script := fmt.Sprintf(`printf "GET / HTTP/1.0\r\nHost: demo\r\n\r\n" | nc %v %d`, e.gateway, demoPodmanHTTPPort)
	fmt.Fprintf(out, "   $ podman run --rm --network %s --security-opt seccomp=%s --rootfs %s \\\n       /bin/busybox sh -c %s\n",
		e.network, e.profile, e.rootfs, shellQuote(script))
	resp, err := e.podman(ctx, "run", "--rm", "--network", e.network, "--security-opt", "seccomp="+e.profile,
		"--rootfs", e.rootfs, "/bin/busybox", "sh", "-c", script)
	if err != nil {
		return "", err
	}
	if !strings.Contains(resp, "Hello from the Linux kernel") {
		return "", fmt.Errorf("the container fetched something else: %q", resp)
	}
	return resp, nil
}

// showConnection holds a connection from a container open and prints the
// container's connections as netprov's stack knows them (`netprov ss`).
func (e *podmanDemoEnv) showConnection(ctx context.Context, out io.Writer) error {
	addr := netip.AddrPortFrom(e.gateway, demoPodmanHoldPort)
	ln, err := e.listen(addr)
	if err != nil {
		return fmt.Errorf("listen on %v: %w", addr, err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	fmt.Fprintf(out, "\n== a container holds a connection to %v open; its sockets as netprov sees them\n", addr)
	id, err := e.podman(ctx, "run", "-d", "--network", e.network, "--security-opt", "seccomp="+e.profile,
		"--rootfs", e.rootfs, "/bin/busybox", "sh", "-c", fmt.Sprintf("sleep 600 | nc %v %d", e.gateway, demoPodmanHoldPort))
	if err != nil {
		return err
	}
	if lines := strings.Split(id, "\n"); len(lines) > 0 {
		id = strings.TrimSpace(lines[len(lines)-1])
	}
	defer e.podman(context.Background(), "rm", "-f", "-t", "0", id)
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(30 * time.Second):
		return errors.New("the container did not connect within 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conns, err := control.GetConnections(cctx, control.SocketPath(e.stateDir, id))
	if err != nil {
		return fmt.Errorf("connections of %s: %w", id[:12], err)
	}
	var b bytes.Buffer
	writeConnections(&b, conns, false)
	fmt.Fprintf(out, "   $ netprov ss --state-dir %s %s\n%s\n", e.stateDir, id[:12], indent(b.String()))
	for _, c := range conns {
		if c.Protocol == "tcp" && c.State == "ESTAB" && c.Remote == addr {
			return nil
		}
	}
	return fmt.Errorf("netprov ss does not show the open connection to %v", addr)
}

// shellQuote quotes s for a POSIX shell command line.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
