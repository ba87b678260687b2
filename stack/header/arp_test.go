package header

import (
	"errors"
	"net/netip"
	"testing"
)

func TestARPParseErrors(t *testing.T) {
	var good [ARPLen]byte
	ARPFields{Op: ARPRequest, SenderIP: netip.MustParseAddr("10.213.0.1"), TargetIP: netip.MustParseAddr("10.213.0.2")}.Emit(good[:])
	if _, err := ParseARP(good[:]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		at   int
		val  byte
	}{
		{"hardware type 6 (IEEE 802)", 1, 6},
		{"protocol type IPv6", 2, 0x86},
		{"hardware length 8", 4, 8},
		{"protocol length 16", 5, 16},
	} {
		b := good
		b[c.at] = c.val
		if _, err := ParseARP(b[:]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", c.name, err)
		}
	}
	if _, err := ParseARP(good[:ARPLen-1]); !errors.Is(err, ErrTruncated) {
		t.Errorf("short: err %v, want ErrTruncated", err)
	}
}
