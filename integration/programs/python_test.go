package programs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// urlGetPy fetches argv[1] with urllib, retrying while the server is not
// up yet (bounded: 100 tries, 0.1 s apart), and prints status and body.
const urlGetPy = `import sys, time, urllib.request, urllib.error
for i in range(100):
    try:
        r = urllib.request.urlopen(sys.argv[1], timeout=10)
        break
    except urllib.error.URLError as e:
        if not isinstance(e.reason, ConnectionRefusedError):
            raise
        time.sleep(0.1)
print(r.status, r.read().decode(), end="", flush=True)`

// TestPython: python3's http.server and urllib, unmodified, in the sandbox:
// urllib fetches from the kernel peer; the kernel peer's curl fetches from
// http.server in the sandbox (which logs the peer's own address: inbound
// traffic is not masqueraded); and a server and a client process in one
// sandbox talk over its loopback.
func TestPython(t *testing.T) {
	tp := newTopology(t)
	py := needProgram(t, "python3", "python3")
	curl := needProgram(t, "curl", "curl")
	dir := writeFiles(t, map[string]string{"p.txt": "python file\n"})

	t.Run("UrllibToKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		peerLog := tp.peerHTTPServer(t, dir, 8080)
		o := tp.run(t, ctx, nil, py, "-c", urlGetPy, fmt.Sprintf("http://%s:8080/p.txt", tp.peerAddr))
		if o.code != 0 || o.stdout != "200 python file\n" {
			t.Errorf("urllib: want 200 python file: %v", o)
		}
		if !strings.Contains(peerLog.String(), tp.hostLink.String()+` - - `) {
			t.Errorf("peer log lacks the request from %s:\n%s", tp.hostLink, peerLog)
		}
	})

	t.Run("HTTPServerForKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "Serving HTTP",
			py, "-u", "-m", "http.server", "--bind", "0.0.0.0", "--directory", dir, "8000")
		out, err := tp.peerRun(ctx, curl, "-sS", "-m", "10", fmt.Sprintf("http://%s:8000/p.txt", tp.sandboxAddr))
		if err != nil || out != "python file\n" {
			t.Errorf("peer curl: %v: %q, want python file", err, out)
		}
		o := s.stop(t)
		if !strings.Contains(o.stderr, tp.peerAddr.String()+` - - `) || !strings.Contains(o.stderr, `"GET /p.txt HTTP/1.1" 200`) {
			t.Errorf("http.server log lacks GET /p.txt from %s: %v", tp.peerAddr, o)
		}
	})

	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		serverLog := filepath.Join(t.TempDir(), "server.log")
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s -m http.server --bind 127.0.0.1 --directory %[2]s 8001 >/dev/null 2>%[4]s & S=$!; %[1]s -c '%[3]s' http://127.0.0.1:8001/p.txt; R=$?; kill $S; exit $R",
			py, dir, urlGetPy, serverLog))
		if o.code != 0 || o.stdout != "200 python file\n" {
			t.Errorf("urllib to http.server on loopback: want 200 python file: %v", o)
		}
		if b, _ := os.ReadFile(serverLog); !strings.Contains(string(b), `127.0.0.1 - - `) {
			t.Errorf("http.server log lacks the request from 127.0.0.1:\n%s", b)
		}
	})
}
