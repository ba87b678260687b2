package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/cni/control"
)

// captureServer speaks the proposed capture op: answer line, then the
// stream (here: fixed bytes, then it keeps the connection open like a live
// capture) — or refuses it like a stack process without the op.
func captureServer(t *testing.T, support bool, stream []byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), control.SocketFile)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadBytes('\n')
		var req control.Request
		json.Unmarshal(line, &req)
		if !support || req.Op != control.OpCapture {
			c.Write([]byte(`{"ok":false,"error":"unknown op \"capture\""}` + "\n"))
			return
		}
		c.Write([]byte(`{"ok":true}` + "\n"))
		c.Write(stream)
		c.Read(make([]byte, 1)) // until the client closes
	}()
	return sock
}

func TestCaptureStreamsUntilCancelled(t *testing.T) {
	stream := []byte("\x4d\x3c\xb2\xa1pcap-bytes")
	sock := captureServer(t, true, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	n, err := capture(ctx, sock, &out)
	if err != nil {
		t.Fatalf("capture ended by its deadline must succeed: %v", err)
	}
	if n != int64(len(stream)) || !bytes.Equal(out.Bytes(), stream) {
		t.Fatalf("got %q (%d), want %q", out.Bytes(), n, stream)
	}
}

func TestCaptureRefusedByStack(t *testing.T) {
	sock := captureServer(t, false, nil)
	_, err := capture(context.Background(), sock, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Fatalf("err = %v, want the stack's refusal", err)
	}
}
