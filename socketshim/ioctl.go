package socketshim

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/netns"
)

// Socket ioctl requests the filter traps (see Filter).
const (
	reqFIONREAD    = 0x541b // = SIOCINQ
	reqSIOCOUTQ    = 0x5411 // = TIOCOUTQ
	reqSIOCATMARK  = 0x8905
	reqSIOCGSTAMP  = 0x8906
	reqSIOCGSTAMPN = 0x8907
	reqSIOCGIFCONF = 0x8912
	reqSIOCOUTQNSD = 0x894b
	// sockIoctlFirst..sockIoctlLast is the block of socket ioctls
	// (include/uapi/linux/sockios.h), device-private ones included.
	sockIoctlFirst = 0x8900
	sockIoctlLast  = 0x89ff

	sizeofIfreq  = 40
	sizeofIfconf = 16
)

// ifreqIoctls take a struct ifreq with no pointer inside: they are run on a
// socket in the target's network namespace (a conduit's namespace is the
// provider's, which must never be configured or shown from the sandbox),
// the ones that change something only for a caller with CAP_NET_ADMIN
// over that namespace (privilegedIfreqIoctl, see netadmin.go).
var ifreqIoctls = map[uint32]bool{
	0x8910: true, // SIOCGIFNAME
	0x8911: true, // SIOCSIFLINK
	0x8913: true, // SIOCGIFFLAGS
	0x8914: true, // SIOCSIFFLAGS
	0x8915: true, // SIOCGIFADDR
	0x8916: true, // SIOCSIFADDR
	0x8917: true, // SIOCGIFDSTADDR
	0x8918: true, // SIOCSIFDSTADDR
	0x8919: true, // SIOCGIFBRDADDR
	0x891a: true, // SIOCSIFBRDADDR
	0x891b: true, // SIOCGIFNETMASK
	0x891c: true, // SIOCSIFNETMASK
	0x891d: true, // SIOCGIFMETRIC
	0x891e: true, // SIOCSIFMETRIC
	0x8921: true, // SIOCGIFMTU
	0x8922: true, // SIOCSIFMTU
	0x8923: true, // SIOCSIFNAME
	0x8924: true, // SIOCSIFHWADDR
	0x8925: true, // SIOCGIFENCAP
	0x8926: true, // SIOCSIFENCAP
	0x8927: true, // SIOCGIFHWADDR
	0x8931: true, // SIOCADDMULTI
	0x8932: true, // SIOCDELMULTI
	0x8933: true, // SIOCGIFINDEX
	0x8934: true, // SIOCSIFPFLAGS
	0x8935: true, // SIOCGIFPFLAGS
	0x8936: true, // SIOCDIFADDR
	0x8937: true, // SIOCSIFHWBROADCAST
	0x8938: true, // SIOCGIFCOUNT
	0x8942: true, // SIOCGIFTXQLEN
	0x8943: true, // SIOCSIFTXQLEN
	0x8947: true, // SIOCGMIIPHY
	0x8948: true, // SIOCGMIIREG
	0x8949: true, // SIOCSMIIREG
	0x8970: true, // SIOCGIFMAP
	0x8971: true, // SIOCSIFMAP
}

func (c *call) ioctl(e *entry) (int64, error) {
	req, argp := uint32(c.arg(1)), c.arg(2)
	switch {
	case req == reqFIONREAD || req == reqSIOCOUTQ || req == reqSIOCATMARK || req == reqSIOCOUTQNSD:
		v, err := c.sockIoctl(e, req)
		if err != nil {
			return 0, err
		}
		return 0, writeInt32(c.mem, argp, int32(v))
	case req == reqSIOCGSTAMP || req == reqSIOCGSTAMPN:
		return 0, unix.ENOENT // no packet timestamp recorded
	case req == reqSIOCGIFCONF:
		return 0, c.ifconf(e.family)
	case ifreqIoctls[req]:
		return 0, c.ifreq(e.family, req)
	case req >= sockIoctlFirst && req <= sockIoctlLast:
		// Pointer-carrying device ioctls (ethtool, private, bonding,
		// bridge, routes) are not proxied.
		return 0, unix.EOPNOTSUPP
	}
	return 0, errContinue
}

// ifreq runs an ifreq ioctl on a socket of the served socket's family in
// the target's network namespace: the family decides which requests are
// answered (AF_INET's inet_ioctl the IPv4 address ones, AF_INET6's
// inet6_ioctl SIOCSIFADDR/SIOCDIFADDR, others go to dev_ioctl).
func (c *call) ifreq(family int, req uint32) error {
	var ifr [sizeofIfreq]byte
	if err := c.mem.read(c.arg(2), ifr[:]); err != nil {
		return err
	}
	if privilegedIfreqIoctl(family, req) {
		if err := c.checkNetAdmin(); err != nil {
			return err
		}
	}
	fd, err := c.s.ifs.get(c.n.PID, family)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	return c.mem.write(c.arg(2), ifr[:])
}

// ifconf serves SIOCGIFCONF: the kernel fills a buffer of ours, which is
// then copied to the target's; a NULL buffer asks for the length needed.
func (c *call) ifconf(family int) error {
	argp := c.arg(2)
	var b [sizeofIfconf]byte
	if err := c.mem.read(argp, b[:]); err != nil {
		return err
	}
	ulen := int32(binary.LittleEndian.Uint32(b[0:]))
	ubuf := binary.LittleEndian.Uint64(b[8:])
	fd, err := c.s.ifs.get(c.n.PID, family)
	if err != nil {
		return err
	}
	var local []byte
	if ubuf != 0 && ulen > 0 {
		local = make([]byte, min(int(ulen), 64<<10))
	}
	var ifc struct {
		len int32
		_   int32
		buf uintptr
	}
	ifc.len = int32(len(local))
	if local != nil {
		ifc.buf = uintptr(unsafe.Pointer(&local[0]))
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), reqSIOCGIFCONF, uintptr(unsafe.Pointer(&ifc)))
	runtime.KeepAlive(local)
	if e != 0 {
		return e
	}
	if local != nil && ifc.len > 0 {
		if err := c.mem.write(ubuf, local[:ifc.len]); err != nil {
			return err
		}
	}
	return writeInt32(c.mem, argp, ifc.len)
}

// ifaceSockets caches one socket per target network namespace and family
// for the interface ioctls.
type ifaceSockets struct {
	mu sync.Mutex
	m  map[ifaceSocketKey]int // → socket fd
}

type ifaceSocketKey struct {
	netns  uint64 // inode
	family int
}

// get returns the socket for task tid's network namespace and family
// (AF_INET, AF_INET6; any other family gets an AF_UNIX socket, whose
// ioctls go straight to dev_ioctl).
func (s *ifaceSockets) get(tid uint32, family int) (int, error) {
	path := "/proc/" + strconv.FormatUint(uint64(tid), 10) + "/ns/net"
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return -1, fmt.Errorf("target netns: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if family != unix.AF_INET && family != unix.AF_INET6 {
		family = unix.AF_UNIX
	}
	key := ifaceSocketKey{st.Ino, family}
	if fd, ok := s.m[key]; ok {
		return fd, nil
	}
	fd, err := socketInNetns(path, family)
	if err != nil {
		return -1, err
	}
	if s.m == nil {
		s.m = map[ifaceSocketKey]int{}
	}
	s.m[key] = fd
	return fd, nil
}

func (s *ifaceSockets) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, fd := range s.m {
		unix.Close(fd)
		delete(s.m, k)
	}
}

// socketInNetns makes a datagram socket of family in the network namespace
// at nsPath, unbound (it takes no port): its ioctls (the family's own,
// then dev_ioctl's) answer interface ioctls for that namespace. The setns
// happens on a locked thread that is thrown away (never the main thread).
func socketInNetns(nsPath string, family int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	netns.OnDiscardedThread(func() {
		nsfd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{-1, fmt.Errorf("open %s: %w", nsPath, err)}
			return
		}
		defer unix.Close(nsfd)
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			ch <- result{-1, fmt.Errorf("unshare: %w", err)}
			return
		}
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == unix.EAFNOSUPPORT {
			// No IPv6 here: dev_ioctl's answers at least.
			fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		}
		if err != nil {
			err = fmt.Errorf("socket(%d) in %s: %w", family, nsPath, err)
		}
		ch <- result{fd, err}
	})
	r := <-ch
	return r.fd, r.err
}

// conduitIoctler is a provider socket whose queue ioctls count its
// conduit, looked at on the target's own fd (which the provider may no
// longer hold): netstack.Socket.
type conduitIoctler interface {
	IoctlWithConduit(req uint, conduit int) (int, error)
}

// sockIoctl asks the provider; FIONREAD and SIOCATMARK of a conduit
// socket are answered with lookup's copy of the target's fd (targetFile),
// so the bytes (and the urgent mark) already in the target end's queue
// are seen after the provider released its copy.
func (c *call) sockIoctl(e *entry, req uint32) (int, error) {
	ci, ok := e.sock.(conduitIoctler)
	if !ok || (req != reqFIONREAD && req != reqSIOCATMARK) || e.sock.Passthrough() {
		return e.sock.Ioctl(uint(req))
	}
	tfd, ok := c.targetFile(c.intArg(0))
	if !ok {
		return e.sock.Ioctl(uint(req))
	}
	return ci.IoctlWithConduit(uint(req), tfd)
}
