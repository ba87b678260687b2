package programs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWget: wget in the sandbox downloads from the kernel peer's HTTP
// server (the 1 MiB body intact, the 404 reported as such), and a closed
// port fails at once with "Connection refused." (exit 4, network failure).
func TestWget(t *testing.T) {
	tp := newTopology(t)
	wget := needProgram(t, "wget", "wget")
	blob := randomBlob(1 << 20)
	dir := writeFiles(t, map[string]string{"blob.bin": string(blob)})
	tp.peerHTTPServer(t, dir, 8080)

	t.Run("GetFromKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		got := filepath.Join(t.TempDir(), "got.bin")
		o := tp.run(t, ctx, nil, wget, "-nv", "-T", "10", "-t", "1", "-O", got, fmt.Sprintf("http://%s:8080/blob.bin", tp.peerAddr))
		if o.code != 0 {
			t.Fatalf("wget: %v", o)
		}
		if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, blob) {
			t.Errorf("blob.bin: %d bytes (err %v), want the served %d bytes", len(b), err, len(blob))
		}
		if !strings.Contains(o.stderr, fmt.Sprintf("[%d/%d]", len(blob), len(blob))) {
			t.Errorf("wget -nv does not report %d bytes: %v", len(blob), o)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, wget, "-T", "10", "-t", "1", "-O", "/dev/null", fmt.Sprintf("http://%s:8080/missing", tp.peerAddr))
		if o.code != 8 || !strings.Contains(o.stderr, "404") {
			t.Errorf("wget of a missing file: want exit 8 (server error) and 404: %v", o)
		}
	})

	for _, c := range []struct{ name, host string }{{"RefusedByKernelPeer", tp.peerAddr.String()}, {"RefusedOnLoopback", "127.0.0.1"}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := bound(t)
			o := tp.run(t, ctx, nil, wget, "-T", "10", "-t", "1", "-O", "/dev/null", "http://"+c.host+":8081/")
			if o.code != 4 {
				t.Errorf("wget exit %d, want 4 (network failure): %v", o.code, o)
			}
			if !strings.Contains(o.stderr, "Connection refused.") {
				t.Errorf("wget does not say Connection refused.: %v", o)
			}
			if o.elapsed > refusedBound {
				t.Errorf("refused connect took %v, want < %v (RST, not a timeout)", o.elapsed, refusedBound)
			}
		})
	}
}
