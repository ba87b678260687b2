package socketshim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childMemory is the address space of a real child process (a sleeping
// `sleep`), read and written with process_vm_readv/writev like the
// Server's, so decoding runs on genuine foreign memory.
type childMemory struct {
	pid  int
	base uint64 // start of a writable scratch area in the child
}

func (m childMemory) read(addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := unix.ProcessVMReadv(m.pid, []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}, 0)
	if err != nil {
		return err
	}
	if n != len(buf) {
		return unix.EFAULT
	}
	return nil
}

func (m childMemory) write(addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := unix.ProcessVMWritev(m.pid, []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}, 0)
	if err != nil {
		return err
	}
	if n != len(buf) {
		return unix.EFAULT
	}
	return nil
}

// startChild starts `sleep` and finds scratch space at the low end of its
// stack mapping (unused: the stack grows down from the top).
func startChild(t *testing.T) childMemory {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasSuffix(line, "[stack]") {
			continue
		}
		lo, _, _ := strings.Cut(strings.Fields(line)[0], "-")
		base, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		m := childMemory{pid: cmd.Process.Pid, base: base + 1024}
		if err := m.write(m.base, make([]byte, 8)); err != nil {
			t.Skipf("cannot write child memory: %v", err)
		}
		return m
	}
	t.Fatal("child has no [stack] mapping")
	return childMemory{}
}

func putMsghdr(b []byte, name uint64, namelen int32, iov, iovlen, control, controllen uint64, flags int32) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], name)
	le.PutUint32(b[8:], uint32(namelen))
	le.PutUint64(b[16:], iov)
	le.PutUint64(b[24:], iovlen)
	le.PutUint64(b[32:], control)
	le.PutUint64(b[40:], controllen)
	le.PutUint32(b[48:], uint32(flags))
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %s", what, err, unix.ErrnoName(want))
	}
}

// TestMsghdrRules: __copy_msghdr's rules on a msghdr in child memory.
func TestMsghdrRules(t *testing.T) {
	m := startChild(t)
	hdr := m.base
	b := make([]byte, sizeofMsghdr)
	cases := []struct {
		name        string
		namePtr     uint64
		namelen     int32
		iovlen      uint64
		wantNamelen int32
		wantErr     unix.Errno
	}{
		{"plain", 0x1000, 16, 2, 16, 0},
		{"null name ignores length", 0, -5, 1, 0, 0},
		{"negative namelen", 0x1000, -1, 1, 0, unix.EINVAL},
		{"namelen capped at sockaddr_storage", 0x1000, 200, 1, 128, 0},
		{"too many iovecs", 0x1000, 16, 1025, 0, unix.EMSGSIZE},
		{"UIO_MAXIOV iovecs", 0x1000, 16, 1024, 16, 0},
	}
	for _, c := range cases {
		putMsghdr(b, c.namePtr, c.namelen, 0x2000, c.iovlen, 0x3000, 24, 0x40)
		if err := m.write(hdr, b); err != nil {
			t.Fatal(err)
		}
		h, err := readMsghdr(m, hdr)
		if c.wantErr != 0 {
			wantErrno(t, c.name, err, c.wantErr)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if h.namelen != c.wantNamelen || h.iov != 0x2000 || h.iovlen != c.iovlen || h.control != 0x3000 || h.controllen != 24 || h.flags != 0x40 {
			t.Errorf("%s: decoded %+v", c.name, h)
		}
	}
	_, err := readMsghdr(m, 8)
	wantErrno(t, "msghdr at unmapped address", err, unix.EFAULT)
}

// TestIovecGatherScatter: iovecs decoded from child memory, data gathered
// across two buffers and scattered back, empty vectors skipped without
// touching their (bad) pointer, and import_iovec's length rules.
func TestIovecGatherScatter(t *testing.T) {
	m := startChild(t)
	bufA, bufB, vec := m.base+256, m.base+512, m.base
	m.write(bufA, []byte("hello"))
	m.write(bufB, []byte("world!"))
	v := make([]byte, 3*sizeofIovec)
	le := binary.LittleEndian
	le.PutUint64(v[0:], bufA)
	le.PutUint64(v[8:], 5)
	le.PutUint64(v[16:], 8) // bad pointer, zero length: never touched
	le.PutUint64(v[24:], 0)
	le.PutUint64(v[32:], bufB)
	le.PutUint64(v[40:], 6)
	m.write(vec, v)
	iovs, total, err := readIovecs(m, vec, 3)
	if err != nil || total != 11 || len(iovs) != 3 {
		t.Fatalf("readIovecs = %v, %d, %v", iovs, total, err)
	}
	data, err := gather(m, iovs, 64)
	if err != nil || string(data) != "helloworld!" {
		t.Errorf("gather = %q, %v", data, err)
	}
	if _, err := gather(m, iovs, 10); !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("gather over limit: %v, want EMSGSIZE", err)
	}
	n, err := scatter(m, iovs, []byte("ABCDEFGH"))
	if err != nil || n != 8 {
		t.Fatalf("scatter = %d, %v", n, err)
	}
	got := make([]byte, 6)
	m.read(bufA, got[:5])
	if string(got[:5]) != "ABCDE" {
		t.Errorf("first buffer %q", got[:5])
	}
	m.read(bufB, got)
	if string(got) != "FGHld!" {
		t.Errorf("second buffer %q, want FGHld! (only 3 bytes scattered there)", got)
	}

	// A length negative as ssize_t is EINVAL; the total is capped at
	// MAX_RW_COUNT by shortening later vectors.
	le.PutUint64(v[8:], 1<<63)
	m.write(vec, v)
	_, _, err = readIovecs(m, vec, 3)
	wantErrno(t, "negative iov_len", err, unix.EINVAL)
	le.PutUint64(v[8:], 0x7fff0000)
	le.PutUint64(v[40:], 0x7fff0000)
	m.write(vec, v)
	iovs, total, err = readIovecs(m, vec, 3)
	if err != nil || total != maxRWCount || iovs[2].len != maxRWCount-0x7fff0000 {
		t.Errorf("capped iovecs = %+v total %d, %v; want total %d", iovs, total, err, maxRWCount)
	}
	_, _, err = readIovecs(m, vec, 1025)
	wantErrno(t, "1025 iovecs", err, unix.EINVAL)
	_, _, err = readIovecs(m, 8, 1)
	wantErrno(t, "iovec array unmapped", err, unix.EFAULT)
}

// TestSockaddrRules: move_addr_to_kernel and move_addr_to_user semantics
// on child memory.
func TestSockaddrRules(t *testing.T) {
	m := startChild(t)
	addr, lenp := m.base, m.base+200
	sa := sin(localhost, 8080)
	m.write(addr, sa)
	got, err := readSockaddr(m, addr, 16)
	if err != nil || !bytes.Equal(got, sa) {
		t.Errorf("readSockaddr = %x, %v", got, err)
	}
	_, err = readSockaddr(m, addr, 129)
	wantErrno(t, "addrlen 129", err, unix.EINVAL)
	_, err = readSockaddr(m, addr, 0xffffffff) // -1 as an int
	wantErrno(t, "addrlen -1", err, unix.EINVAL)
	if got, err := readSockaddr(m, 8, 0); got != nil || err != nil {
		t.Errorf("addrlen 0 = %x, %v; want nothing read", got, err)
	}
	_, err = readSockaddr(m, 8, 16)
	wantErrno(t, "unmapped sockaddr", err, unix.EFAULT)

	// Truncation: 8-byte buffer gets 8 bytes, the length says 16.
	m.write(addr, bytes.Repeat([]byte{0xee}, 16))
	writeInt32(m, lenp, 8)
	if err := writeSockaddr(m, addr, lenp, sa, true); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16)
	m.read(addr, out)
	l, _ := readInt32(m, lenp)
	if !bytes.Equal(out[:8], sa[:8]) || !bytes.Equal(out[8:], bytes.Repeat([]byte{0xee}, 8)) || l != 16 {
		t.Errorf("truncated copy %x len %d", out, l)
	}
	writeInt32(m, lenp, -1)
	wantErrno(t, "negative buffer length", writeSockaddr(m, addr, lenp, sa, true), unix.EINVAL)
	wantErrno(t, "getsockname with NULL length", writeSockaddr(m, addr, 0, sa, true), unix.EFAULT)
	if err := writeSockaddr(m, 0, 0, sa, false); err != nil {
		t.Errorf("recvfrom without address: %v", err)
	}
}

func TestProcParsers(t *testing.T) {
	for in, want := range map[string]uint64{"socket:[12345]": 12345, "socket:[1]": 1} {
		if got, err := parseSocketLink([]byte(in)); err != nil || got != want {
			t.Errorf("parseSocketLink(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"pipe:[123]", "/dev/null", "socket:[]", "socket:[12x]", "anon_inode:[eventfd]"} {
		if _, err := parseSocketLink([]byte(in)); !errors.Is(err, errNotSocket) {
			t.Errorf("parseSocketLink(%q) = %v, want errNotSocket", in, err)
		}
	}
	fl, err := parseFdinfoFlags([]byte("pos:\t0\nflags:\t02004002\nmnt_id:\t15\n"))
	if err != nil || fl != 02004002 || fl&unix.O_NONBLOCK == 0 {
		t.Errorf("parseFdinfoFlags = %o, %v", fl, err)
	}
	// Our own fd table, through /proc like a target's.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	ino, err := fdInode(uint32(unix.Gettid()), fd)
	if err != nil || ino != st.Ino {
		t.Errorf("fdInode = %d, %v; fstat says %d", ino, err, st.Ino)
	}
	if _, err := fdInode(uint32(unix.Gettid()), 0x7ffff); !errors.Is(err, errNotSocket) {
		t.Errorf("fdInode(closed fd) = %v, want errNotSocket", err)
	}
	flags, err := fdStatusFlags(uint32(unix.Getpid()), fd)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		t.Errorf("fdStatusFlags = %o, %v; want O_NONBLOCK", flags, err)
	}
}

// TestSignalPendingParser: a pending signal counts unless blocked; a
// process-directed one only in a single-threaded process (in a
// multi-threaded one the kernel may have woken another thread).
func TestSignalPendingParser(t *testing.T) {
	status := func(threads int, sigPnd, shdPnd, sigBlk string) []byte {
		return []byte(fmt.Sprintf("Name:\tprobe\nThreads:\t%d\nSigQ:\t1/100\nSigPnd:\t%s\nShdPnd:\t%s\nSigBlk:\t%s\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000002000\n",
			threads, sigPnd, shdPnd, sigBlk))
	}
	const none, alrm, usr1 = "0000000000000000", "0000000000002000", "0000000000000200"
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"nothing", status(1, none, none, none), false},
		{"thread signal", status(4, usr1, none, none), true},
		{"thread signal blocked", status(4, usr1, none, usr1), false},
		{"shared, single thread", status(1, none, alrm, none), true},
		{"shared, blocked", status(1, none, alrm, alrm), false},
		{"shared, many threads", status(3, none, alrm, none), false},
		{"garbage", []byte("SigPnd:\tzz\n"), false},
	} {
		if got := parseSignalPending(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSockaddrPort: the port of AF_INET/AF_INET6 addresses (network
// order), 0 for other families and short addresses.
func TestSockaddrPort(t *testing.T) {
	v4 := make([]byte, 16)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 8080)
	v6 := make([]byte, 28)
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 443)
	unspec := make([]byte, 16)
	binary.BigEndian.PutUint16(unspec[2:], 80)
	for _, tc := range []struct {
		sa   []byte
		want uint16
	}{{v4, 8080}, {v6, 443}, {unspec, 0}, {v4[:3], 0}, {nil, 0}} {
		if got := sockaddrPort(tc.sa); got != tc.want {
			t.Errorf("sockaddrPort(%x) = %d, want %d", tc.sa, got, tc.want)
		}
	}
}
