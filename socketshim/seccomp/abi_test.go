package seccomp

import (
	"testing"
	"unsafe"
)

func TestStructSizesMatchUAPI(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"seccomp_data", unsafe.Sizeof(SeccompData{}), 64},
		{"seccomp_notif", unsafe.Sizeof(Notif{}), 80},
		{"seccomp_notif_resp", unsafe.Sizeof(notifResp{}), 24},
		{"seccomp_notif_addfd", unsafe.Sizeof(notifAddFD{}), 24},
		{"seccomp_notif_sizes", unsafe.Sizeof(NotifSizes{}), 6},
	} {
		if c.got != c.want {
			t.Errorf("sizeof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
	if off := unsafe.Offsetof(SeccompData{}.Args); off != offsetArgs {
		t.Errorf("offsetof(seccomp_data.args) = %d, want %d", off, offsetArgs)
	}
	if off := unsafe.Offsetof(Notif{}.Data); off != 16 {
		t.Errorf("offsetof(seccomp_notif.data) = %d, want 16", off)
	}
}

func TestKernelNotifSizesMatch(t *testing.T) {
	k, err := KernelNotifSizes()
	if err != nil {
		t.Skipf("kernel without seccomp user notification: %v", err)
	}
	if err := CheckABI(); err != nil {
		t.Fatalf("CheckABI with kernel sizes %+v: %v", k, err)
	}
}

func TestABIMismatchIsAnError(t *testing.T) {
	if err := abiMismatch(NotifSizes{Notif: 80, NotifResp: 24, Data: 64}); err != nil {
		t.Fatalf("matching sizes rejected: %v", err)
	}
	for _, k := range []NotifSizes{
		{Notif: 88, NotifResp: 24, Data: 64}, // a future kernel with a bigger notif
		{Notif: 80, NotifResp: 32, Data: 64},
		{Notif: 80, NotifResp: 24, Data: 72},
	} {
		if err := abiMismatch(k); err == nil {
			t.Errorf("kernel sizes %+v accepted", k)
		}
	}
}
