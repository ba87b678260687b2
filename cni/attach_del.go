package cni

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
	"github.com/netprov/netprov/cni/kernelnet"
	"github.com/netprov/netprov/cni/stackd"
)

// teardownAttach removes the ingress drop a stack process that did not
// stop cleanly left on the attached interface (call it after stopStack).
// A sandbox that is not in attach mode, a namespace or interface that is
// gone: nothing to do.
func teardownAttach(ctx context.Context, dir string) error {
	a, err := stackd.ReadAttachConfig(dir)
	if err != nil || a == nil {
		return nil // no attach sandbox, or nothing readable to undo
	}
	if !isNetns(a.Netns) {
		return nil // the namespace, and the interface with it, is gone
	}
	on, err := kernelnet.Installed(ctx, a.Netns, a.Interface)
	if err != nil {
		return fmt.Errorf("attach: ingress drop on %s in %s: %w", a.Interface, a.Netns, err)
	}
	if !on {
		return nil
	}
	drop := kernelnet.ExistingIngressDrop(a.Netns, a.Interface)
	return drop.Remove(ctx)
}

// checkAttach is CHECK's part for attach mode: the interface is there
// with the stack's MAC, and the kernel is kept silent for it.
func checkAttach(ctx context.Context, dir string, st *control.Status) error {
	a, err := stackd.ReadAttachConfig(dir)
	if err != nil || a == nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("%s has no readable %s: not an attach-mode sandbox", dir, stackd.AttachFile), fmt.Sprint(err))
	}
	view, err := kernelnet.Read(ctx, a.Netns, a.Interface)
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("attached interface %s in %s is missing", a.Interface, a.Netns), err.Error())
	}
	if !view.Up {
		return types.NewError(types.ErrInternal, fmt.Sprintf("attached interface %s in %s is down", a.Interface, a.Netns), "")
	}
	// The stack took the MAC and MTU the interface had at ADD; a plugin
	// listed after netprov (tuning's mac or mtu) changes only the kernel's.
	if view.MAC.String() != st.MAC || (a.MTU != 0 && view.MTU != a.MTU) {
		return types.NewError(types.ErrInternal, fmt.Sprintf("interface %s has MAC %s and MTU %d, the stack serves it with MAC %s and MTU %d: "+
			"they were changed after netprov took the interface over; list the plugin that sets them (tuning's mac or mtu) before netprov in the conflist",
			a.Interface, view.MAC, view.MTU, st.MAC, a.MTU), "")
	}
	on, err := kernelnet.Installed(ctx, a.Netns, a.Interface)
	if err != nil || !on {
		return types.NewError(types.ErrInternal, fmt.Sprintf("the ingress drop on %s in %s is missing: the kernel answers for the interface too", a.Interface, a.Netns), fmt.Sprint(err))
	}
	return nil
}

// sameNetns reports whether two namespace paths are the same namespace.
func sameNetns(a, b string) bool {
	if a == b {
		return true
	}
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// isNetns reports whether path is (a bind mount of) a namespace: a netns
// file whose namespace was released is an empty file on tmpfs.
func isNetns(path string) bool {
	if path == "" {
		return false
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}
