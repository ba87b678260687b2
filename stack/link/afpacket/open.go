package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/netns"
)

// ifaceInfo is what the endpoint learns about its interface.
type ifaceInfo struct {
	index int
	mac   header.MAC
	mtu   int
}

// htons converts to network byte order, as the packet socket API wants
// protocol numbers.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// openSocket creates the packet socket bound to the interface, inside the
// configured namespace.
func openSocket(cfg *Config) (fd int, info ifaceInfo, err error) {
	err = netns.Do(cfg.NetNS, func() error {
		fd, info, err = openSocketHere(cfg)
		return err
	})
	return fd, info, err
}

func openSocketHere(cfg *Config) (int, ifaceInfo, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return -1, ifaceInfo{}, fmt.Errorf("afpacket: interface %q: %w", cfg.Interface, err)
	}
	info := ifaceInfo{index: ifi.Index, mtu: ifi.MTU}
	copy(info.mac[:], ifi.HardwareAddr)
	// Protocol 0: the socket receives nothing until it is bound to the
	// interface, so no frame of another interface slips in.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, info, fmt.Errorf("afpacket: socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// Do not read back the frames the endpoint sends.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return -1, info, fmt.Errorf("afpacket: PACKET_IGNORE_OUTGOING: %w", err)
	}
	if cfg.VnetHdr {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return -1, info, fmt.Errorf("afpacket: PACKET_VNET_HDR: %w", err)
		}
	} else {
		// The auxiliary data tells which checksums need no verification.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return -1, info, fmt.Errorf("afpacket: PACKET_AUXDATA: %w", err)
		}
	}
	if cfg.SocketBuffer > 0 {
		for _, opt := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, cfg.SocketBuffer); err != nil {
				return -1, info, fmt.Errorf("afpacket: socket buffer %d: %w", cfg.SocketBuffer, err)
			}
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, info, fmt.Errorf("afpacket: bind to %s: %w", cfg.Interface, err)
	}
	if cfg.Promiscuous {
		mreq := &unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
			return -1, info, fmt.Errorf("afpacket: promiscuous mode on %s: %w", cfg.Interface, err)
		}
	}
	ok = true
	return fd, info, nil
}
