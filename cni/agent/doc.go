// Package agent is netprov's OCI seccomp agent: the process behind the
// seccomp profile's listenerPath. An OCI runtime (crun, runc >= 1.1)
// connects once per container at create time and sends the container's
// state (JSON; crun pretty-prints it, runc sends it compact) with the
// seccomp notification fd attached by SCM_RIGHTS (named "seccompFd" in the
// state's "fds").
//
// The agent finds the container's sandbox among the state directories the
// CNI plugin's ADD wrote (control.SandboxDir): first by network namespace
// (the inode of /proc/<state pid>/ns/net against each sandbox's recorded
// netns), then by container id (state.id is podman's CNI_CONTAINERID), and
// hands the fd to that sandbox's stack process with a control "handoff".
// The agent keeps nothing per container afterwards: a crashed stack process
// only affects its own container, and a restarted agent serves new
// containers at once.
//
// Containers without a sandbox (another network, --network none or host,
// with the netprov profile set globally in containers.conf) are served in
// passthrough mode by default: the agent keeps their fd and answers every
// notification with CONTINUE, so the kernel runs the call in the
// container's own namespace exactly as under the base profile. With
// Unmatched = "close" the fd is closed instead and every notified call of
// that container fails with ENOSYS. Passthrough containers depend on the
// agent process: if it dies, their notified calls fail with ENOSYS (the
// kernel cannot give the fd to anyone else).
//
// When a sandbox is found but its stack process does not take the fd
// (crashed, hung), the fd is closed: the container's socket calls fail
// with ENOSYS rather than silently reaching a network namespace that was
// meant to be served by the stack.
package agent
