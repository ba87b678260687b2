package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestReadPcapRoundTrip(t *testing.T) {
	var b bytes.Buffer
	gh := make([]byte, 24)
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint32(gh[20:], LinkTypeEthernet)
	b.Write(gh)
	for _, payload := range []string{"first", "second frame"} {
		rh := make([]byte, 16)
		binary.LittleEndian.PutUint32(rh[0:], 1700000000)
		binary.LittleEndian.PutUint32(rh[4:], 250000) // µs
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(len(payload)))
		b.Write(rh)
		b.WriteString(payload)
	}
	b.Write([]byte{1, 2, 3}) // torn record at the end, as after SIGINT
	lt, frames, err := ReadPcap(&b)
	if err != nil || lt != LinkTypeEthernet || len(frames) != 2 {
		t.Fatalf("ReadPcap = %d, %d frames, %v", lt, len(frames), err)
	}
	if string(frames[1].Data) != "second frame" || frames[0].Time.Nanosecond() != 250000000 {
		t.Fatalf("frames = %+v", frames)
	}
}

func TestOptionLayout(t *testing.T) {
	linuxSYN := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	if got, want := OptionLayout(linuxSYN), "mss/4 sackOK/2 ts/10 nop wscale/3"; got != want {
		t.Fatalf("OptionLayout = %q, want %q", got, want)
	}
	if got := OptionLayout([]byte{2, 1}); got != "malformed" {
		t.Fatalf("bad length: %q, want malformed", got)
	}
}
