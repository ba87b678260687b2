package programs

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// goHTTPMain is a small net/http program: "serve ADDR" answers every
// request with the client's address; "get URL" fetches URL (retrying
// refused connects: 100 tries, 0.1 s apart) and prints status and body.
const goHTTPMain = `package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

func main() {
	switch os.Args[1] {
	case "serve":
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening", ln.Addr())
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "go-static %s\n", host)
		}))
	case "get":
		c := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			resp, err := c.Get(os.Args[2])
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) && i < 100 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("%d %s", resp.StatusCode, body)
			return
		}
	}
}
`

// buildStaticGo builds goHTTPMain with CGO_ENABLED=0 and checks that the
// result is static: no ELF interpreter, no shared libraries. Such a binary
// makes raw syscalls (no libc), from several threads, with the runtime's
// preemption signals arriving during them.
func buildStaticGo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goHTTPMain), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gohttp\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gohttp")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s has an ELF interpreter: not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s needs %v: not static", bin, libs)
	}
	return bin
}

// TestStaticGoBinary: a static Go net/http binary in the sandbox as a
// client of the kernel peer, as a server for the kernel peer's curl, and
// as server and client processes on the sandbox's loopback.
func TestStaticGoBinary(t *testing.T) {
	tp := newTopology(t)
	curl := needProgram(t, "curl", "curl")
	bin := buildStaticGo(t)

	t.Run("ClientOfKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		tp.peerHTTPServer(t, writeFiles(t, map[string]string{"g.txt": "for go\n"}), 8080)
		o := tp.run(t, ctx, nil, bin, "get", fmt.Sprintf("http://%s:8080/g.txt", tp.peerAddr))
		if o.code != 0 || o.stdout != "200 for go\n" {
			t.Errorf("go client: want 200 for go: %v", o)
		}
	})

	t.Run("ServerForKernelPeer", func(t *testing.T) {
		ctx := bound(t)
		s := tp.start(t, ctx, []string{"--ip", tp.sandboxAddr.String()}, "listening", bin, "serve", "0.0.0.0:8095")
		out, err := tp.peerRun(ctx, curl, "-sS", "-m", "10", fmt.Sprintf("http://%s:8095/", tp.sandboxAddr))
		if want := "go-static " + tp.peerAddr.String() + "\n"; err != nil || out != want {
			t.Errorf("peer curl: %v: %q, want %q", err, out, want)
		}
		if o := s.stop(t); o.code != 143 {
			t.Errorf("go server after SIGTERM: want exit 143: %v", o)
		}
	})

	t.Run("Loopback", func(t *testing.T) {
		ctx := bound(t)
		o := tp.run(t, ctx, nil, "sh", "-c", fmt.Sprintf(
			"%[1]s serve 127.0.0.1:8096 >/dev/null & S=$!; %[1]s get http://127.0.0.1:8096/; R=$?; kill $S; exit $R", bin))
		if o.code != 0 || o.stdout != "200 go-static 127.0.0.1\n" {
			t.Errorf("go client and server on loopback: want 200 go-static 127.0.0.1: %v", o)
		}
	})
}
