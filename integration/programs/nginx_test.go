package programs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nginxConf runs nginx in the foreground with one worker, everything it
// writes in dir, serving dir on port (all addresses).
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
user root root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]d;
        root %[1]s;
    }
}
`

// TestNginx: nginx (master and worker, epoll, the channel socketpair)
// serves in the sandbox; curl on the sandbox's loopback, the kernel peer
// at the sandbox's address and the peer through a --publish'ed port on the
// host side all get the page (and a 404 for a missing one), the access log
// shows each client's address, and nginx stops cleanly on SIGTERM.
func TestNginx(t *testing.T) {
	tp := newTopology(t)
	nginx := needProgram(t, "nginx", "nginx")
	curl := needProgram(t, "curl", "curl")
	ctx := bound(t)
	dir := writeFiles(t, map[string]string{"index.html": "nginx in the sandbox\n"})
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, 8088)), 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx in the background; curl on loopback once it listens; then
	// nginx to the foreground so that netprov's SIGTERM reaches it.
	script := fmt.Sprintf(`%[1]s -e %[3]s/error.log -c %[4]s & N=$!
i=0; until out=$(%[2]s -sf -m 5 http://127.0.0.1:8088/index.html); do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done
echo "loopback: $out"
trap 'kill -TERM $N' TERM
wait $N; wait $N; echo "nginx exit $?"`, nginx, curl, dir, conf)
	s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String(), "--publish", "18088:8088"}, "loopback:", "sh", "-c", script)

	for _, c := range []struct{ name, url string }{
		{"SandboxAddress", fmt.Sprintf("http://%s:8088/", tp.sandboxAddr)},
		{"PublishedPort", fmt.Sprintf("http://%s:18088/", tp.hostLink)},
	} {
		out, err := tp.peerRun(ctx, curl, "-sS", "-m", "10", c.url+"index.html")
		if err != nil || out != "nginx in the sandbox\n" {
			t.Errorf("%s: peer curl %s: %v: %q", c.name, c.url, err, out)
		}
		out, err = tp.peerRun(ctx, curl, "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", c.url+"missing")
		if err != nil || out != "404" {
			t.Errorf("%s: peer curl of a missing page: %v: %q, want 404", c.name, err, out)
		}
	}
	o := s.stop(t)
	if !strings.Contains(o.stdout, "loopback: nginx in the sandbox\n") || !strings.Contains(o.stdout, "nginx exit 0\n") {
		t.Errorf("sandbox: want the loopback page and nginx exit 0: %v", o)
	}
	access, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	for _, want := range []string{"127.0.0.1 - - ", tp.peerAddr.String() + " - - "} {
		if !strings.Contains(string(access), want) {
			t.Errorf("access.log lacks a request from %q:\n%s", want, access)
		}
	}
	if n := strings.Count(string(access), "\n"); n != 5 {
		t.Errorf("access.log has %d requests, want 5:\n%s", n, access)
	}
	errorLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	for _, bad := range []string{"[emerg]", "[alert]", "[crit]"} {
		if strings.Contains(string(errorLog), bad) {
			t.Errorf("error.log has %s entries:\n%s", bad, errorLog)
		}
	}
}
