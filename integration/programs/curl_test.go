package programs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refusedBound is how long a connect to a closed port may take: Linux
// answers the SYN with RST at once, so the client fails in milliseconds;
// a SYN lost instead would take the client's 10 s timeout.
const refusedBound = 5 * time.Second

// randomBlob is n reproducible pseudo-random bytes.
func randomBlob(n int) []byte {
	r := rand.NewChaCha8([32]byte{'n', 'e', 't', 'p', 'r', 'o', 'v'})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// TestCurl: curl in the sandbox fetches files from python's http.server on
// the kernel peer (a 1 MiB body arrives intact; the peer sees the host
// side's masqueraded address), and a closed port, on the peer or on the
// sandbox's own loopback, fails at once with "Connection refused" (exit 7).
func TestCurl(t *testing.T) {
	tp := newTopology(t)
	curl := needProgram(t, "curl", "curl")
	blob := randomBlob(1 << 20)
	dir := writeFiles(t, map[string]string{"hello.txt": "hello from the kernel peer\n", "blob.bin": string(blob)})
	peerLog := tp.peerHTTPServer(t, dir, 8080)

	t.Run("GetFromKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		got := filepath.Join(t.TempDir(), "got.bin")
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s -sS -m 10 http://%[2]s:8080/hello.txt && %[1]s -sS -m 10 -o %[3]s -w '%%{http_code} %%{size_download}\\n' http://%[2]s:8080/blob.bin",
			curl, tp.peerAddr, got))
		if o.code != 0 {
			t.Fatalf("curl: %v", o)
		}
		if want := fmt.Sprintf("hello from the kernel peer\n200 %d\n", len(blob)); o.stdout != want {
			t.Errorf("curl printed %q, want %q", o.stdout, want)
		}
		if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, blob) {
			t.Errorf("blob.bin: %d bytes (err %v), want the served %d bytes", len(b), err, len(blob))
		}
		if want := tp.hostLink.String() + ` - - `; !strings.Contains(peerLog.String(), want) || !strings.Contains(peerLog.String(), `"GET /blob.bin HTTP/1.1" 200`) {
			t.Errorf("peer log lacks a GET of blob.bin from %s (masqueraded):\n%s", tp.hostLink, peerLog)
		}
	})

	for _, c := range []struct{ name, host string }{{"RefusedByKernelPeer", tp.peerAddr.String()}, {"RefusedOnLoopback", "127.0.0.1"}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := bound(t)
			o := tp.run(t, ctx, nil, curl, "-sS", "-v", "--connect-timeout", "10", "-m", "10", "http://"+c.host+":8081/")
			if o.code != 7 {
				t.Errorf("curl exit %d, want 7 (couldn't connect): %v", o.code, o)
			}
			if !strings.Contains(o.stderr, "Connection refused") {
				t.Errorf("curl -v does not say Connection refused: %v", o)
			}
			if o.elapsed > refusedBound {
				t.Errorf("refused connect took %v, want < %v (RST, not a timeout)", o.elapsed, refusedBound)
			}
		})
	}
}
