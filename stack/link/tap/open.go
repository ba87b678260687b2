package tap

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/link/vnet"
	"github.com/netprov/netprov/stack/netns"
)

// openTAP creates (or attaches to) the TAP device in the configured
// namespace and returns its non-blocking file descriptor and name.
func openTAP(cfg *Config) (fd int, name string, err error) {
	err = netns.Do(cfg.NetNS, func() error {
		fd, name, err = openTAPHere(cfg)
		return err
	})
	return fd, name, err
}

func openTAPHere(cfg *Config) (int, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, "", fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		return -1, "", fmt.Errorf("tap: device name %q: %w", cfg.Name, err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if cfg.VnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return -1, "", fmt.Errorf("tap: TUNSETIFF %q: %w", cfg.Name, err)
	}
	name := ifr.Name()
	if cfg.VnetHdr {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnet.LenMrg); err != nil {
			return -1, "", fmt.Errorf("tap: TUNSETVNETHDRSZ on %s: %w", name, err)
		}
		offload := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offload); err != nil {
			return -1, "", fmt.Errorf("tap: TUNSETOFFLOAD on %s: %w", name, err)
		}
	}
	if err := setMTU(name, cfg.MTU); err != nil {
		return -1, "", err
	}
	ok = true
	return fd, name, nil
}

// setMTU sets the kernel interface's MTU (SIOCSIFMTU).
func setMTU(name string, mtu int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tap: socket for SIOCSIFMTU: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("tap: %w", err)
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("tap: set MTU %d on %s: %w", mtu, name, err)
	}
	return nil
}
