package socketshim

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The interface ioctls run on a socket the Server made in the target's
// network namespace, i.e. with the Server's privileges: those that change
// an interface (or read MII registers) must first pass the check Linux
// makes, ns_capable(net->user_ns, CAP_NET_ADMIN), for the calling thread,
// or an unprivileged sandboxed program could reconfigure its namespace.

// privilegedIfreqIoctls are the ifreq ioctls that Linux answers with EPERM
// without CAP_NET_ADMIN over the socket's network namespace, whatever the
// socket's family (dev_ioctl checks it before looking at the device).
// Measured as an unprivileged user on Linux 6.18: SIOCSIFLINK,
// SIOCSIFENCAP and SIOCSIFPFLAGS fail with ENOTTY or EINVAL before any
// check, and need none. The address ioctls depend on the family:
// privilegedIfreqIoctl.
var privilegedIfreqIoctls = map[uint32]bool{
	0x8914: true, // SIOCSIFFLAGS
	0x891e: true, // SIOCSIFMETRIC
	0x8922: true, // SIOCSIFMTU
	0x8923: true, // SIOCSIFNAME
	0x8924: true, // SIOCSIFHWADDR
	0x8931: true, // SIOCADDMULTI
	0x8932: true, // SIOCDELMULTI
	0x8937: true, // SIOCSIFHWBROADCAST
	0x8943: true, // SIOCSIFTXQLEN
	0x8947: true, // SIOCGMIIPHY
	0x8948: true, // SIOCGMIIREG
	0x8949: true, // SIOCSMIIREG
	0x8971: true, // SIOCSIFMAP
}

// privilegedIfreqIoctl reports whether request req on a socket of family
// needs CAP_NET_ADMIN: privilegedIfreqIoctls, and the address ioctls the
// family itself serves (devinet_ioctl for AF_INET; inet6_ioctl for
// AF_INET6, whose SIOCSIFDSTADDR, which configures sit tunnels, answers
// ENODEV before the check for a missing device on Linux and EPERM here).
// Other families pass the address ioctls to dev_ioctl, which answers
// ENOTTY.
func privilegedIfreqIoctl(family int, req uint32) bool {
	if privilegedIfreqIoctls[req] {
		return true
	}
	switch family {
	case unix.AF_INET:
		switch req {
		case unix.SIOCSIFADDR, unix.SIOCSIFDSTADDR, unix.SIOCSIFBRDADDR, unix.SIOCSIFNETMASK:
			return true
		}
	case unix.AF_INET6:
		switch req {
		case unix.SIOCSIFADDR, unix.SIOCSIFDSTADDR, unix.SIOCDIFADDR:
			return true
		}
	}
	return false
}

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// checkNetAdmin answers EPERM unless the calling thread has CAP_NET_ADMIN
// over the network namespace the interface ioctls run in (see
// taskHasNetAdmin). The notification is checked to be still pending after
// /proc was read, so what was read is the calling thread's.
func (c *call) checkNetAdmin() error {
	ok, err := taskHasNetAdmin(c.n.PID)
	if perr := c.pending(); perr != nil {
		return perr
	}
	if err != nil {
		c.s.log.Debug("socketshim: CAP_NET_ADMIN of target", "pid", c.n.PID, "err", err)
		return unix.EPERM
	}
	if !ok {
		return unix.EPERM
	}
	return nil
}

// taskHasNetAdmin reports whether thread tid has CAP_NET_ADMIN over its
// network namespace, conservatively: the capability must be in its
// effective set (/proc/<tid>/status CapEff) and its user namespace must
// be the one that owns the network namespace or an ancestor of it (walked
// up with NS_GET_PARENT). Linux also grants every capability in a user
// namespace to the owner (euid) of that namespace's creator in its parent
// namespace without a capability there (cap_capable); that case is
// answered EPERM here. Any failure to find out counts as no.
func taskHasNetAdmin(tid uint32) (bool, error) {
	base := "/proc/" + strconv.FormatUint(uint64(tid), 10)
	b, err := os.ReadFile(base + "/status")
	if err != nil {
		return false, fmt.Errorf("target status: %w", err)
	}
	eff, err := parseCapEff(b)
	if err != nil {
		return false, err
	}
	if eff&(1<<capNetAdmin) == 0 {
		return false, nil
	}
	var userns unix.Stat_t
	if err := unix.Stat(base+"/ns/user", &userns); err != nil {
		return false, fmt.Errorf("target user namespace: %w", err)
	}
	netns, err := unix.Open(base+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("target network namespace: %w", err)
	}
	defer unix.Close(netns)
	ns, err := unix.IoctlRetInt(netns, unix.NS_GET_USERNS)
	if err != nil {
		return false, fmt.Errorf("owner of network namespace: %w", err)
	}
	// User namespaces nest at most 32 deep.
	for range 33 {
		var st unix.Stat_t
		err := unix.Fstat(ns, &st)
		if err == nil && st.Dev == userns.Dev && st.Ino == userns.Ino {
			unix.Close(ns)
			return true, nil
		}
		var parent int
		if err == nil {
			parent, err = unix.IoctlRetInt(ns, unix.NS_GET_PARENT)
		}
		unix.Close(ns)
		if err != nil {
			// EPERM: the parent is outside the Server's user
			// namespace, so the target's is no ancestor either.
			return false, nil
		}
		ns = parent
	}
	unix.Close(ns)
	return false, nil
}

// parseCapEff returns the CapEff mask of a /proc/<pid>/status.
func parseCapEff(b []byte) (uint64, error) {
	v, ok := procField(b, "CapEff:")
	if !ok {
		return 0, errors.New("status has no CapEff line")
	}
	return strconv.ParseUint(v, 16, 64)
}
