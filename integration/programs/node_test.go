package programs

import (
	"fmt"
	"testing"
)

// nodeServerJS answers every request with the client's address; it prints
// "listening" once it listens on argv port.
const nodeServerJS = `const http = require("http");
http.createServer((req, res) => res.end("node-server " + req.socket.remoteAddress + "\n"))
  .listen(Number(process.argv[1]), "0.0.0.0", () => console.log("listening"));`

// nodeClientJS fetches argv url, retrying refused connects (bounded: 100
// tries, 0.1 s apart), and prints status and body.
const nodeClientJS = `const http = require("http");
const url = process.argv[1];
let tries = 0;
function get() {
  http.get(url, (res) => {
    let body = "";
    res.on("data", (d) => (body += d));
    res.on("end", () => process.stdout.write(res.statusCode + " " + body));
  }).on("error", (e) => {
    if (e.code === "ECONNREFUSED" && ++tries < 100) return setTimeout(get, 100);
    console.error(e.message);
    process.exit(1);
  });
}
get();`

// TestNode: node's http module (libuv: epoll, non-blocking connect,
// accept4) as a server in the sandbox for the kernel peer's curl, as a
// client of the kernel peer's python server, and as server and client
// processes on the sandbox's loopback.
func TestNode(t *testing.T) {
	tp := newTopology(t)
	node := needProgram(t, "node", "nodejs")
	curl := needProgram(t, "curl", "curl")

	t.Run("ServerForKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "listening", node, "-e", nodeServerJS, "8090")
		out, err := tp.peerRun(ctx, curl, "-sS", "-m", "10", fmt.Sprintf("http://%s:8090/", tp.sandboxAddr))
		if want := "node-server " + tp.peerAddr.String() + "\n"; err != nil || out != want {
			t.Errorf("peer curl: %v: %q, want %q", err, out, want)
		}
		// node does not handle SIGTERM: it dies of it, 128+15.
		if o := s.stop(t); o.code != 143 {
			t.Errorf("node after SIGTERM: want exit 143: %v", o)
		}
	})

	t.Run("ClientOfKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		tp.peerHTTPServer(t, writeFiles(t, map[string]string{"n.txt": "for node\n"}), 8080)
		o := tp.run(t, ctx, nil, node, "-e", nodeClientJS, fmt.Sprintf("http://%s:8080/n.txt", tp.peerAddr))
		if o.code != 0 || o.stdout != "200 for node\n" {
			t.Errorf("node client: want 200 for node: %v", o)
		}
	})

	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s -e '%[2]s' 8091 >/dev/null & S=$!; %[1]s -e '%[3]s' http://127.0.0.1:8091/; R=$?; kill $S; exit $R",
			node, nodeServerJS, nodeClientJS))
		if o.code != 0 || o.stdout != "200 node-server 127.0.0.1\n" {
			t.Errorf("node client and server on loopback: want 200 node-server 127.0.0.1: %v", o)
		}
	})
}
