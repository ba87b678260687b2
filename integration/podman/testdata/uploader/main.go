// Command uploader connects to the TCP address in its argument and writes
// until a write fails, then reads once, and prints both errors by errno
// name: the container-side view of a stack process that died mid-upload
// (TestStackKilledDuringTransfer). Built static into the test's rootfs.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(2)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second)) // bounded: never hang the test
	buf := make([]byte, 64<<10)
	for {
		if _, err = c.Write(buf); err != nil {
			break
		}
	}
	fmt.Println("write:", name(err))
	_, err = c.Read(buf)
	fmt.Println("read:", name(err))
}

func name(err error) string {
	for _, e := range []struct {
		errno syscall.Errno
		name  string
	}{{syscall.ECONNRESET, "ECONNRESET"}, {syscall.EPIPE, "EPIPE"}, {syscall.ENOTCONN, "ENOTCONN"}} {
		if errors.Is(err, e.errno) {
			return e.name
		}
	}
	if errors.Is(err, io.EOF) {
		return "EOF"
	}
	return fmt.Sprint(err)
}
