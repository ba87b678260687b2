package socketshim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestInterfaceIoctlsNeedNetAdmin runs scenario "ifpriv" natively and
// under the shim: the interface ioctls that change an interface (MTU,
// flags, name, address) succeed for a thread with CAP_NET_ADMIN, fail
// with EPERM (interface unchanged) once the thread drops it from its
// effective set and again once it has raised it back, and fail with EPERM
// for a child in a user namespace of its own (all capabilities there, but
// the network namespace belongs to the initial one), as on Linux; reading
// needs no capability; the address ioctls are answered on an AF_INET
// socket only (as inet_ioctl's). The shim runs them on a socket of its own, with
// its own privileges: before, the unprivileged ones succeeded.
func TestInterfaceIoctlsNeedNetAdmin(t *testing.T) {
	got := compareWithOracle(t, "ifpriv")
	for k, want := range map[string]string{
		"priv_set_mtu":   "ok",
		"get_addr":       "ok/127.0.0.1",
		"get_addr6":      "ENOTTY",
		"unpriv_set_mtu": "EPERM",
		"unpriv_mtu":     "ok/65536",
		"userns_set_mtu": "EPERM",
		"userns_has_cap": "true",
		"repriv_set_mtu": "ok",
	} {
		if got.out[k] != want {
			t.Errorf("under the shim %s = %q, want %q", k, got.out[k], want)
		}
	}
}

func ifreqLo(fd int, req uint, set func(*unix.Ifreq)) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return nil, err
	}
	if set != nil {
		set(ifr)
	}
	return ifr, unix.IoctlIfreq(fd, req, ifr)
}

func loMTU(fd int) string {
	ifr, err := ifreqLo(fd, unix.SIOCGIFMTU, nil)
	return fmt.Sprintf("%s/%d", en(err), ifr.Uint32())
}

func setLoMTU(fd int, mtu uint32) string {
	_, err := ifreqLo(fd, unix.SIOCSIFMTU, func(ifr *unix.Ifreq) { ifr.SetUint32(mtu) })
	return en(err)
}

// loAddr is "errno/address" of an address ioctl on lo.
func loAddr(fd int, req uint) string {
	ifr, err := ifreqLo(fd, req, nil)
	if err != nil {
		return en(err)
	}
	a, err := ifr.Inet4Addr()
	if err != nil {
		return en(err)
	}
	return "ok/" + netip.AddrFrom4([4]byte(a)).String()
}

// loFlags is "errno/up".
func loFlags(fd int) string {
	ifr, err := ifreqLo(fd, unix.SIOCGIFFLAGS, nil)
	return fmt.Sprintf("%s/up=%t", en(err), ifr.Uint16()&unix.IFF_UP != 0)
}

// setNetAdmin adds CAP_NET_ADMIN to or removes it from the calling
// thread's effective set (capset is per thread).
func setNetAdmin(on bool) (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, err
	}
	had := data[0].Effective&(1<<capNetAdmin) != 0
	if on {
		data[0].Effective |= 1 << capNetAdmin
	} else {
		data[0].Effective &^= 1 << capNetAdmin
	}
	return had, unix.Capset(&hdr, &data[0])
}

func scenarioIfpriv() {
	runtime.LockOSThread() // capabilities are per thread
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	kv("socket", en(err))
	kv("mtu", loMTU(fd))
	kv("priv_set_mtu", setLoMTU(fd, 1500))
	kv("priv_mtu", loMTU(fd))
	kv("priv_restore_mtu", setLoMTU(fd, 65536))
	// The address ioctls are AF_INET's (inet_ioctl): an AF_INET6 socket
	// passes them to dev_ioctl, which does not know them.
	kv("get_addr", loAddr(fd, unix.SIOCGIFADDR))
	kv("get_netmask", loAddr(fd, unix.SIOCGIFNETMASK))
	fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	kv("socket6", en(err))
	_, err = ifreqLo(fd6, unix.SIOCGIFADDR, nil)
	kv("get_addr6", en(err))
	kv("mtu6", loMTU(fd6))

	had, err := setNetAdmin(false)
	kv("drop_net_admin", fmt.Sprintf("%s/had=%t", en(err), had))
	kv("unpriv_set_mtu", setLoMTU(fd, 1500))
	kv("unpriv_mtu", loMTU(fd))
	_, err = ifreqLo(fd, unix.SIOCSIFFLAGS, func(ifr *unix.Ifreq) { ifr.SetUint16(unix.IFF_LOOPBACK) })
	kv("unpriv_set_down", en(err))
	kv("unpriv_flags", loFlags(fd))
	var rename [40]byte // ifr_name "lo", ifr_newname "np0"
	copy(rename[:], "lo")
	copy(rename[16:], "np0")
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFNAME, uintptr(unsafe.Pointer(&rename[0])))
	kv("unpriv_set_name", en(errnoErr(e)))
	_, err = ifreqLo(fd, unix.SIOCSIFADDR, func(ifr *unix.Ifreq) { ifr.SetInet4Addr([]byte{127, 0, 0, 2}) })
	kv("unpriv_set_addr", en(err))
	_, err = ifreqLo(fd, unix.SIOCSIFTXQLEN, func(ifr *unix.Ifreq) { ifr.SetUint32(10) })
	kv("unpriv_set_txqlen", en(err))
	_, err = ifreqLo(fd, unix.SIOCGIFINDEX, nil)
	kv("unpriv_get_index", en(err))

	_, err = setNetAdmin(true)
	kv("raise_net_admin", en(err))
	kv("repriv_set_mtu", setLoMTU(fd, 9000))
	kv("repriv_mtu", loMTU(fd))
	kv("repriv_restore_mtu", setLoMTU(fd, 65536))

	// A child in a user namespace of its own: every capability there, none
	// over this network namespace.
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(withoutEnv(os.Environ(), testRoleEnv), testRoleEnv+"=child")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	kv("userns_child", en(cmd.Run()))
	kv("mtu_final", loMTU(fd))
	kv("flags_final", loFlags(fd))
}

// childIfpriv is scenario "ifpriv"'s child, in a user namespace of its own.
func childIfpriv() int {
	had, err := setNetAdmin(true)
	kv("userns_has_cap", fmt.Sprintf("%t", had && err == nil))
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	kv("userns_socket", en(err))
	kv("userns_set_mtu", setLoMTU(fd, 1500))
	kv("userns_mtu", loMTU(fd))
	return 0
}

// TestPrivilegedIfreqIoctlsLikeLinux checks privilegedIfreqIoctl against
// Linux: a child without capabilities (its thread's effective set
// emptied, in a network namespace of its own) issues every served ifreq ioctl on lo from an AF_INET and an
// AF_INET6 socket; exactly those Linux refuses with EPERM must be
// privileged (AF_INET6's SIOCSIFDSTADDR, refused with ENODEV before the
// check, excepted: see privilegedIfreqIoctl).
func TestPrivilegedIfreqIoctlsLikeLinux(t *testing.T) {
	requireRoot(t)
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), testRoleEnv+"=ifprobe")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v (%s)", err, out)
	}
	got, _ := parseOutput(string(out))
	checked := 0
	for _, fam := range []struct {
		name   string
		family int
	}{{"inet", unix.AF_INET}, {"inet6", unix.AF_INET6}} {
		for req := range ifreqIoctls {
			errno, ok := got[fmt.Sprintf("%s_%#x", fam.name, req)]
			if !ok {
				t.Errorf("%s %#x: not probed", fam.name, req)
				continue
			}
			checked++
			if fam.family == unix.AF_INET6 && req == unix.SIOCSIFDSTADDR {
				continue
			}
			if linux, ours := errno == "EPERM", privilegedIfreqIoctl(fam.family, req); linux != ours {
				t.Errorf("%s %#x: Linux answers an unprivileged caller %s, privilegedIfreqIoctl = %v", fam.name, req, errno, ours)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("nothing probed: %s", out)
	}
}

// probeIfreqIoctls is TestPrivilegedIfreqIoctlsLikeLinux's child.
func probeIfreqIoctls() int {
	runtime.LockOSThread() // capabilities are per thread
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		fmt.Fprintln(os.Stderr, "capget:", err)
		return 2
	}
	data[0].Effective, data[1].Effective = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		fmt.Fprintln(os.Stderr, "capset:", err)
		return 2
	}
	for _, fam := range []struct {
		name   string
		family int
	}{{"inet", unix.AF_INET}, {"inet6", unix.AF_INET6}} {
		fd, err := unix.Socket(fam.family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "socket:", err)
			return 2
		}
		for req := range ifreqIoctls {
			var ifr [sizeofIfreq]byte
			copy(ifr[:], "lo")
			binary.NativeEndian.PutUint16(ifr[16:], uint16(fam.family))
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&ifr[0])))
			kv(fmt.Sprintf("%s_%#x", fam.name, req), en(errnoErr(e)))
		}
		unix.Close(fd)
	}
	return 0
}
