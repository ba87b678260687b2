package netns

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	nskit "github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/link/internal/linktest"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoRunsInsideAndRestores(t *testing.T) {
	linktest.RequireRoot(t)
	path := nskit.New(t, "").Path()
	before := inode(t, "/proc/thread-self/ns/net")
	var inside uint64
	if err := Do(path, func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != inode(t, path) || inside == before {
		t.Fatalf("f ran in namespace %d, want %d (caller's %d)", inside, inode(t, path), before)
	}
	if after := inode(t, "/proc/thread-self/ns/net"); after != before {
		t.Fatalf("caller now in namespace %d, was %d", after, before)
	}
	wantErr := errors.New("from f")
	if err := Do(path, func() error { return wantErr }); err != wantErr {
		t.Fatalf("Do returned %v, want f's error", err)
	}
	if err := Do("/run/netns/np-missing", func() error { return nil }); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Do on a missing namespace: %v", err)
	}
}
