package header

import (
	"encoding/binary"
	"os"
	"testing"
)

// readPcap returns the frames of a little-endian, microsecond pcap file as
// written by tcpdump -w.
func readPcap(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(data) < 24 || binary.LittleEndian.Uint32(data[0:4]) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian pcap file", path)
	}
	if lt := binary.LittleEndian.Uint32(data[20:24]); lt != 1 {
		t.Fatalf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	var frames [][]byte
	for off := 24; off < len(data); {
		if len(data)-off < 16 {
			t.Fatalf("%s: truncated record header at %d", path, off)
		}
		n := int(binary.LittleEndian.Uint32(data[off+8 : off+12]))
		off += 16
		if len(data)-off < n {
			t.Fatalf("%s: truncated record at %d", path, off)
		}
		frames = append(frames, data[off:off+n:off+n])
		off += n
	}
	return frames
}

// linuxFrames returns the frames of testdata/linux_veth.pcap: traffic
// between two Linux network namespaces over a veth pair with checksum
// offload off (testdata/capture.sh made it; testdata/linux_veth.txt is
// tcpdump's decoding, the independent oracle for the expected values).
func linuxFrames(t testing.TB) [][]byte {
	f := readPcap(t, "testdata/linux_veth.pcap")
	if len(f) != 32 {
		t.Fatalf("linux_veth.pcap has %d frames, want 32", len(f))
	}
	return f
}
