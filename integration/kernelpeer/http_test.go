package kernelpeer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKernelClientsToStackHTTPServer runs net/http on a listener of the
// userspace stack and fetches a page with the kernel's curl and with
// python3's urllib.
func TestKernelClientsToStackHTTPServer(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		ln, err := p.node.Listen("tcp", hostPort(fam.stack, 8080))
		if err != nil {
			t.Fatalf("stack listen: %v", err)
		}
		body := fmt.Sprintf("hello from the userspace stack over %s/%s\n", p.kind, fam.name)
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s%s %s from %s\n", body, r.Method, r.URL.Path, r.RemoteAddr)
			}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		t.Cleanup(func() {
			srv.Close()
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		})

		url := "http://" + hostPort(fam.stack, 8080) + "/page"
		want := body + "GET /page from " + hostPort(fam.kernel, 0)
		want = strings.TrimSuffix(want, ":0")
		const pyGet = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())"
		for _, client := range [][]string{
			{"curl", "-sS", "--max-time", "20", url},
			{"python3", "-c", pyGet, url},
		} {
			out, err := p.kernel.Exec(client...)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", client[0], url, err, out)
			}
			if !strings.HasPrefix(string(out), want) {
				t.Errorf("%s got %q, want prefix %q", client[0], out, want)
			}
		}
	})
}

// TestStackHTTPClientToKernelServer fetches a file from the kernel's
// `python3 -m http.server` with net/http whose transport dials through
// the userspace stack.
func TestStackHTTPClientToKernelServer(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		dir := t.TempDir()
		content := strings.Repeat(fmt.Sprintf("kernel page for %s/%s\n", p.kind, fam.name), 2000) // 70 KB: many segments
		if err := os.WriteFile(filepath.Join(dir, "page.txt"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		const port = 8000
		startPython(t, p, fam, dir, port)

		client := &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return p.node.DialContext(ctx, network, addr)
				},
			},
			Timeout: 20 * time.Second,
		}
		defer client.CloseIdleConnections()
		resp, err := client.Get("http://" + hostPort(fam.kernel, port) + "/page.txt")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s", resp.Status)
		}
		if string(got) != content {
			t.Errorf("body: %d bytes, want %d bytes of the file (first 80: %q)", len(got), len(content), truncate(got, 80))
		}
	})
}

// startPython serves dir with the kernel's python3 http.server on
// fam.kernel:port and waits until it listens.
func startPython(t *testing.T, p *peer, fam family, dir string, port int) {
	t.Helper()
	p.kernel.Start(t, "timeout", "120", "python3", "-m", "http.server", "--bind", fam.kernel.String(),
		"--directory", dir, strconv.Itoa(port))
	waitListening(t, p, port)
}

// waitListening waits until a kernel TCP socket listens on port in the
// peer namespace.
func waitListening(t *testing.T, p *peer, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := p.kernel.Exec("ss", "-Hltn", "sport", "= :"+strconv.Itoa(port))
		if strings.TrimSpace(string(out)) != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d in %s within 10 s", port, p.kernel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
