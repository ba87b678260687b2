package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// servedCallsC makes served (trapped) calls that never block on Linux —
// setsockopt, a non-blocking recvfrom with an address — while SIGALRM,
// whose handler has no SA_RESTART, arrives every 200 µs: on Linux none of
// them fails with EINTR; it prints how many did. Then a blocking recvfrom
// on an empty socket must be interrupted (EINTR), and one under
// SA_RESTART with SO_RCVTIMEO too (sock_intr_errno).
const servedCallsC = `#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
static volatile sig_atomic_t hits;
static void on_alarm(int s) { (void)s; hits++; }
static void timer(long usec) {
	struct itimerval it = {{0, usec}, {0, usec}};
	setitimer(ITIMER_REAL, &it, 0);
}
static void handler(int flags) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigaction(SIGALRM, &sa, 0);
}
int main(void) {
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in from;
	socklen_t fl;
	char b[4];
	int eintr = 0, other = 0;
	handler(0);
	timer(200);
	for (int i = 0; i < 4000; i++) {
		int v = 65536;
		if (setsockopt(u, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0)
			errno == EINTR ? eintr++ : other++;
		fl = sizeof from;
		if (recvfrom(u, b, sizeof b, MSG_DONTWAIT, (void *)&from, &fl) < 0)
			errno == EINTR ? eintr++ : errno == EAGAIN ? 0 : other++;
	}
	timer(0);
	printf("eintr=%d other=%d signalled=%d\n", eintr, other, hits > 0);
	timer(50000);
	fl = sizeof from;
	long r = recvfrom(u, b, sizeof b, 0, (void *)&from, &fl);
	printf("blocking=%s\n", r < 0 && errno == EINTR ? "EINTR" : "other");
	handler(SA_RESTART);
	struct timeval tv = {5, 0};
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	fl = sizeof from;
	r = recvfrom(u, b, sizeof b, 0, (void *)&from, &fl);
	printf("timeo_restart=%s\n", r < 0 && errno == EINTR ? "EINTR" : "other");
	timer(0);
	return 0;
}
`

// TestRunServedCallsInterruptedLikeLinux: with killable waits (the
// stage's seccomp.InstallWaitKillableRecv) blocking served calls are
// interrupted by the Server like Linux's: EINTR without SA_RESTART, and
// EINTR despite SA_RESTART when SO_RCVTIMEO is set (the kernel alone
// would restart the latter for ever). Served calls that never block fail
// with EINTR only when the signal comes before the Server received the
// notification (the wait is interruptible until then): the test logs how
// many did, which killable waits roughly halve, but cannot make zero.
func TestRunServedCallsInterruptedLikeLinux(t *testing.T) {
	needTool(t, "gcc")
	e := newRunEnv(t)
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "served.c"), filepath.Join(dir, "served")
	if err := os.WriteFile(src, []byte(servedCallsC), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTestBound)
	defer cancel()
	o := e.run(ctx, []string{"--provider", "none"}, bin)
	lines := strings.Split(o.stdout, "\n")
	if o.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "eintr=") ||
		!strings.HasSuffix(lines[0], " other=0 signalled=1") ||
		lines[1] != "blocking=EINTR" || lines[2] != "timeo_restart=EINTR" {
		t.Fatalf("exit %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
	t.Logf("non-blocking served calls failed with EINTR: %s of 8000", strings.Fields(lines[0])[0])
}
