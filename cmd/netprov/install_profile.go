package main

import (
	"encoding/json"
	"fmt"
	"slices"
)

// defaultBaseProfile is podman's default seccomp profile (package
// golang-github-containers-common), the base of the generated one.
const defaultBaseProfile = "/usr/share/containers/seccomp.json"

// notifiedCalls are the socket calls served by the shim (socketshim.Filter)
// that the profile hands to the agent unconditionally.
var notifiedCalls = []string{
	"socket", "bind", "listen", "connect", "accept", "accept4",
	"getsockname", "getpeername", "setsockopt", "getsockopt", "shutdown",
	"sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
}

// addressedCalls are notified only when they carry an address (arg 4 != 0):
// send() and recv() are sendto/recvfrom with a NULL address, the data path.
var addressedCalls = []string{"sendto", "recvfrom"}

// refusedCalls are removed from every rule so that the profile's default
// action (ERRNO ENOSYS in podman's profile) refuses them: io_uring would
// perform socket I/O without a trap.
var refusedCalls = []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}

// notifyProfile turns a containers-style seccomp profile (podman's
// /usr/share/containers/seccomp.json) into one whose served socket calls
// are SCMP_ACT_NOTIFY with listenerPath set.
//
// Why the calls are removed from every existing rule instead of adding
// NOTIFY rules next to them: libseccomp resolves a syscall that has both an
// unconditional rule and a conditional rule with another action in favour
// of the unconditional one, and overlapping conditional rules by its own
// argument order (checked with runc 1.1.5 / libseccomp 2.5.4). Only
// disjoint rules have a well-defined result. Consequences, by design:
//   - socket() is notified for every family; the stack process lets the
//     kernel run the families it does not serve (CONTINUE). The default
//     profile's EINVAL for AF_NETLINK/NETLINK_AUDIT without
//     CAP_AUDIT_WRITE is lost with it.
//   - sendto/recvfrom: ALLOW when arg 4 (the address) == 0, NOTIFY
//     otherwise (disjoint, compared on all 64 bits).
//   - ioctl stays allowed by the default rules (not notified): FIONREAD
//     on an injected socket answers from the conduit's buffer, interface
//     ioctls see the container's own netns.
func notifyProfile(base []byte, listenerPath, metadata string) ([]byte, error) {
	var prof map[string]any
	if err := json.Unmarshal(base, &prof); err != nil {
		return nil, fmt.Errorf("base seccomp profile: %w", err)
	}
	if _, ok := prof["defaultAction"].(string); !ok {
		return nil, fmt.Errorf("base seccomp profile: no defaultAction")
	}
	rules, _ := prof["syscalls"].([]any)
	remove := slices.Concat(notifiedCalls, addressedCalls, refusedCalls)
	out := make([]any, 0, len(rules)+3)
	for _, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("base seccomp profile: syscalls entry is %T, not an object", r)
		}
		names, _ := rule["names"].([]any)
		if name, ok := rule["name"].(string); ok && len(names) == 0 {
			names = []any{name} // old single-name form
			delete(rule, "name")
		}
		kept := names[:0:0]
		for _, n := range names {
			if s, _ := n.(string); !slices.Contains(remove, s) {
				kept = append(kept, n)
			}
		}
		if len(kept) == 0 {
			continue
		}
		rule["names"] = kept
		out = append(out, rule)
	}
	toAny := func(ss []string) []any {
		a := make([]any, len(ss))
		for i, s := range ss {
			a[i] = s
		}
		return a
	}
	addrArg := func(op string) []any {
		return []any{map[string]any{"index": 4, "value": 0, "valueTwo": 0, "op": op}}
	}
	out = append(out,
		map[string]any{"names": toAny(notifiedCalls), "action": "SCMP_ACT_NOTIFY",
			"comment": "netprov: socket calls served by the sandbox's userspace stack"},
		map[string]any{"names": toAny(addressedCalls), "action": "SCMP_ACT_ALLOW", "args": addrArg("SCMP_CMP_EQ"),
			"comment": "netprov: send/recv without an address are the data path"},
		map[string]any{"names": toAny(addressedCalls), "action": "SCMP_ACT_NOTIFY", "args": addrArg("SCMP_CMP_NE"),
			"comment": "netprov: sendto/recvfrom with an address"},
	)
	prof["syscalls"] = out
	prof["listenerPath"] = listenerPath
	if metadata != "" {
		prof["listenerMetadata"] = metadata
	}
	b, err := json.MarshalIndent(prof, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
