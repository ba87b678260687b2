// probe_core.h: the framework of the differential socket-semantics probe
// (see probe.c). Included once, by probe.c only; it is a header only to keep
// the framework apart from the scenarios.
//
// Every scenario runs in its own forked child, so that fd leaks, signal
// dispositions and crashes stay inside it. A scenario appends " key=value"
// pairs with kv() and prints its line with emit(); every value is
// normalised so that the Linux kernel and netprov print the same bytes:
// errno values by name, poll/epoll masks as flags, ports relative to the
// scenario's own port block (P0..P7) or "EPH" for ephemeral ports.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EPH_LO 32768 // default net.ipv4.ip_local_port_range
#define EPH_HI 60999
#define PORT_BASE 20000 // scenario port blocks sit below the ephemeral range
#define PORTS_PER_SCENARIO 8
#define SCENARIO_TIMEOUT_MS 10000
#define WAIT_MS 3000 // bound for an event that must happen "at once"

typedef void (*scenario_fn)(void);

struct scenario {
	const char *name; // derived from the function name: '_' -> '-'
	const char *ref;  // spec reference(s), e.g. "C.18"
	const char *group; // "main" or "narrow" (needs a one-port range)
	scenario_fn fn;
};

#define MAX_SCENARIOS 400
static struct scenario scenarios[MAX_SCENARIOS];
static int nscenarios;

static void register_scenario(const char *fname, const char *ref, const char *group, scenario_fn fn) {
	if (nscenarios == MAX_SCENARIOS) {
		fprintf(stderr, "too many scenarios\n");
		exit(2);
	}
	char *name = strdup(fname);
	for (char *p = name; *p; p++)
		if (*p == '_')
			*p = '-';
	scenarios[nscenarios++] = (struct scenario){name, ref, group, fn};
}

// SCEN defines a scenario of the main group; NARROW one that runs only in a
// namespace whose ip_local_port_range is a single port (-narrow PORT).
// Constructors run in source order, so the registration order (and with it
// every scenario's port block) is fixed for a given probe.c.
#define SCEN_G(fname, ref, group)                                                     \
	static void fname(void);                                                      \
	__attribute__((constructor)) static void reg_##fname(void) {                 \
		register_scenario(#fname, ref, group, fname);                         \
	}                                                                             \
	static void fname(void)
#define SCEN(fname, ref) SCEN_G(fname, ref, "main")
#define NARROW(fname, ref) SCEN_G(fname, ref, "narrow")

// Per-run and per-scenario context.
static const char *cur_name;
static int cur_port;              // first port of the scenario's block
static struct in_addr peer4;      // kernel peer (-peer), in the peer namespace
static struct in_addr self4;      // our address on the veth (-self)
static int have_peer;
static int narrow_port;           // the single ephemeral port of -narrow
static volatile sig_atomic_t sigpipe_count;
static volatile sig_atomic_t sigalrm_count;

#define P(i) (cur_port + (i))

// ---- output ---------------------------------------------------------------

static char linebuf[16384];
static size_t linelen;

static void kv(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(const char *key, const char *fmt, ...) {
	va_list ap;
	if (linelen + 2 >= sizeof linebuf)
		return;
	linelen += snprintf(linebuf + linelen, sizeof linebuf - linelen, " %s=", key);
	if (linelen >= sizeof linebuf)
		linelen = sizeof linebuf - 1;
	va_start(ap, fmt);
	linelen += vsnprintf(linebuf + linelen, sizeof linebuf - linelen, fmt, ap);
	va_end(ap);
	if (linelen >= sizeof linebuf)
		linelen = sizeof linebuf - 1;
}

// emit prints the pending pairs as one "name: k=v ..." line.
static void emit(void) {
	printf("%s:%s\n", cur_name, linebuf);
	fflush(stdout);
	linelen = 0;
	linebuf[0] = 0;
}

// fail reports that the probe itself could not set a scenario up (not a
// behaviour under test) and ends the scenario.
static void fail(const char *what) __attribute__((noreturn));
static void fail(const char *what) {
	int e = errno;
	emit();
	printf("%s: PROBE-ERROR %s errno=%d\n", cur_name, what, e);
	fflush(stdout);
	_exit(0);
}

// Rotating static buffers for the string helpers below.
static char *sbuf(void) {
	static char bufs[64][256];
	static int next;
	return bufs[next++ % 64];
}

static const char *ename(int e) {
	switch (e) {
#define X(n) \
	case n:  \
		return #n;
		X(EPERM) X(ENOENT) X(EINTR) X(EIO) X(EBADF) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT)
		X(EBUSY) X(EEXIST) X(ENODEV) X(ENOTDIR) X(EINVAL) X(ENFILE) X(EMFILE) X(ENOTTY)
		X(ENOSPC) X(ESPIPE) X(EPIPE) X(ERANGE) X(ENOSYS) X(ENOTSOCK) X(EDESTADDRREQ)
		X(EMSGSIZE) X(EPROTOTYPE) X(ENOPROTOOPT) X(EPROTONOSUPPORT) X(ESOCKTNOSUPPORT)
		X(EOPNOTSUPP) X(EPFNOSUPPORT) X(EAFNOSUPPORT) X(EADDRINUSE) X(EADDRNOTAVAIL)
		X(ENETDOWN) X(ENETUNREACH) X(ENETRESET) X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS)
		X(EISCONN) X(ENOTCONN) X(ESHUTDOWN) X(ETIMEDOUT) X(ECONNREFUSED) X(EHOSTDOWN)
		X(EHOSTUNREACH) X(EALREADY) X(EINPROGRESS) X(EDOM)
#undef X
	case 0:
		return "0";
	}
	char *b = sbuf();
	snprintf(b, 256, "E%d", e);
	return b;
}

// R formats a syscall result: "ok" for rc >= 0, else the errno's name.
static const char *R(long rc) {
	return rc >= 0 ? "ok" : ename(errno);
}

// N formats a result that carries a count: the number, or the errno's name.
static const char *N(long rc) {
	if (rc < 0)
		return ename(errno);
	char *b = sbuf();
	snprintf(b, 256, "%ld", rc);
	return b;
}

static const char *pmask(int m) {
	static const struct {
		int bit;
		const char *name;
	} t[] = {{POLLIN, "IN"},     {POLLPRI, "PRI"},       {POLLOUT, "OUT"},       {POLLERR, "ERR"},
		 {POLLHUP, "HUP"},   {POLLNVAL, "NVAL"},     {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"},
		 {POLLWRNORM, "WRNORM"}, {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"}};
	char *b = sbuf();
	b[0] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (m & t[i].bit) {
			if (b[0])
				strcat(b, "|");
			strcat(b, t[i].name);
			m &= ~t[i].bit;
		}
	if (m)
		snprintf(b + strlen(b), 256 - strlen(b), "%s0x%x", b[0] ? "|" : "", m);
	if (!b[0])
		strcpy(b, "0");
	return b;
}

static const char *emask(uint32_t m) {
	// The EPOLL* bits equal the POLL* bits for everything reported here.
	return pmask((int)m);
}

static const char *port_str(int port) {
	char *b = sbuf();
	if (cur_port && port >= cur_port && port < cur_port + PORTS_PER_SCENARIO)
		snprintf(b, 256, "P%d", port - cur_port);
	else if (narrow_port && port == narrow_port)
		snprintf(b, 256, "NARROW");
	else if (port >= EPH_LO && port <= EPH_HI)
		snprintf(b, 256, "EPH");
	else
		snprintf(b, 256, "%d", port);
	return b;
}

static const char *ip4_str(struct in_addr a) {
	char *b = sbuf();
	if (have_peer && a.s_addr == peer4.s_addr)
		return "PEER";
	if (have_peer && a.s_addr == self4.s_addr)
		return "SELF";
	inet_ntop(AF_INET, &a, b, 256);
	return b;
}

// sa_str normalises a socket address: family, address (PEER/SELF for the
// veth addresses) and port (see port_str).
static const char *sa_str(const struct sockaddr *sa, socklen_t len) {
	char *b = sbuf();
	if (len == 0) {
		return "none";
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		snprintf(b, 256, "%s:%s", ip4_str(s->sin_addr), port_str(ntohs(s->sin_port)));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		char a[64];
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			struct in_addr v4;
			memcpy(&v4, &s->sin6_addr.s6_addr[12], 4);
			snprintf(a, sizeof a, "::ffff:%s", ip4_str(v4));
		} else
			inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
		snprintf(b, 256, "[%s]:%s", a, port_str(ntohs(s->sin6_port)));
	} else if (sa->sa_family == AF_UNSPEC) {
		snprintf(b, 256, "unspec");
	} else {
		snprintf(b, 256, "family%d", sa->sa_family);
	}
	return b;
}

static const char *sockname(int fd) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (void *)&ss, &len) < 0)
		return ename(errno);
	return sa_str((void *)&ss, len);
}

static const char *peername(int fd) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getpeername(fd, (void *)&ss, &len) < 0)
		return ename(errno);
	return sa_str((void *)&ss, len);
}

static int local_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (void *)&ss, &len) < 0)
		fail("getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int in_eph(int port) {
	return port >= EPH_LO && port <= EPH_HI;
}

// ---- readiness ---------------------------------------------------------------

#define PROBE_EVENTS (POLLIN | POLLPRI | POLLOUT | POLLRDHUP)

// pollnow returns the current readiness of fd (events IN|PRI|OUT|RDHUP plus
// the always-reported ERR|HUP|NVAL).
static int pollnow(int fd) {
	struct pollfd p = {.fd = fd, .events = PROBE_EVENTS};
	int n = poll(&p, 1, 0);
	if (n < 0)
		fail("poll");
	return n ? p.revents : 0;
}

// waitfor waits up to ms for any of ev (plus ERR/HUP) on fd and returns the
// revents seen (0 on timeout).
static int waitfor(int fd, short ev, int ms) {
	struct pollfd p = {.fd = fd, .events = ev};
	for (int settle = 0;;) {
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("poll wait");
		// POLLERR and POLLHUP are reported unasked. A reset taken on
		// another CPU shows them a moment before the events it also
		// brings (tcp_done sets TCP_CLOSE, then sk_shutdown): on Linux
		// too whenever the RST does not come within the caller's own
		// system call. Such a half-done state is waited out (100 ms at
		// most) instead of being returned.
		if (n && !(p.revents & ev) && (p.revents & (POLLERR | POLLHUP)) && settle++ < 100) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			ms = 0;
			continue;
		}
		return n ? p.revents : 0;
	}
}

static uint32_t epollnow(int fd) {
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP, .data.fd = fd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		fail("epoll_ctl");
	struct epoll_event out;
	int n = epoll_wait(ep, &out, 1, 0);
	close(ep);
	if (n < 0)
		fail("epoll_wait");
	return n ? out.events : 0;
}

// ---- socket helpers ------------------------------------------------------

static struct sockaddr_in sin4(const char *ip, int port) {
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &s.sin_addr) != 1)
		fail("inet_pton");
	return s;
}

static struct sockaddr_in6 sin6(const char *ip, int port) {
	struct sockaddr_in6 s;
	memset(&s, 0, sizeof s);
	s.sin6_family = AF_INET6;
	s.sin6_port = htons(port);
	if (inet_pton(AF_INET6, ip, &s.sin6_addr) != 1)
		fail("inet_pton6");
	return s;
}

static struct sockaddr_in peer_sin(int port) {
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	s.sin_addr = peer4;
	return s;
}

static int xsocket(int family, int type) {
	int fd = socket(family, type, 0);
	if (fd < 0)
		fail("socket");
	return fd;
}

static void setint(int fd, int level, int opt, int v) {
	if (setsockopt(fd, level, opt, &v, sizeof v) < 0)
		fail("setsockopt");
}

// gi formats an integer option: its value or the errno's name.
static const char *gi(int fd, int level, int opt) {
	int v = 0;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, opt, &v, &len) < 0)
		return ename(errno);
	char *b = sbuf();
	snprintf(b, 256, "%d", v);
	return b;
}

static const char *so_error(int fd) {
	int v = 0;
	socklen_t len = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) < 0)
		return ename(errno);
	return ename(v);
}

static const char *tcp_state_name(int st) {
	static const char *names[] = {"?",         "ESTABLISHED", "SYN_SENT", "SYN_RECV",  "FIN_WAIT1",
				      "FIN_WAIT2", "TIME_WAIT",   "CLOSE",    "CLOSE_WAIT", "LAST_ACK",
				      "LISTEN",    "CLOSING"};
	if (st >= 0 && st < (int)(sizeof names / sizeof names[0]))
		return names[st];
	return "?";
}

static const char *tcp_state(int fd) {
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return ename(errno);
	return tcp_state_name(ti.tcpi_state);
}

static void xbind4(int fd, const char *ip, int port) {
	struct sockaddr_in a = sin4(ip, port);
	if (bind(fd, (void *)&a, sizeof a) < 0)
		fail("bind");
}

// listener4 returns a TCP listener on 127.0.0.1:port (0: ephemeral).
static int listener4(int port, int backlog) {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.1", port);
	if (listen(fd, backlog) < 0)
		fail("listen");
	return fd;
}

static int listener6(const char *ip, int port, int v6only, int backlog) {
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	if (v6only >= 0)
		setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
	struct sockaddr_in6 a = sin6(ip, port);
	if (bind(fd, (void *)&a, sizeof a) < 0)
		fail("bind6");
	if (listen(fd, backlog) < 0)
		fail("listen6");
	return fd;
}

// connect4 returns a blocking TCP socket connected to 127.0.0.1:port.
static int connect4(int port) {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in a = sin4("127.0.0.1", port);
	if (connect(fd, (void *)&a, sizeof a) < 0)
		fail("connect");
	return fd;
}

static int xaccept(int lfd) {
	if (!(waitfor(lfd, POLLIN, WAIT_MS) & POLLIN)) {
		errno = ETIMEDOUT;
		fail("accept wait");
	}
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		fail("accept");
	return fd;
}

// tcp_pair connects a client to a listener on P(slot) and returns both ends.
static void tcp_pair(int slot, int *cli, int *srv) {
	int l = listener4(P(slot), 8);
	*cli = connect4(P(slot));
	*srv = xaccept(l);
	close(l);
}

static void xsend(int fd, const char *s) {
	size_t n = strlen(s);
	if (send(fd, s, n, MSG_NOSIGNAL) != (ssize_t)n)
		fail("send");
}

// recv_str reads what is there (after waiting for readability) and returns
// it as a string or the errno's name / "EOF".
static const char *recv_str(int fd, int flags) {
	char *b = sbuf();
	waitfor(fd, POLLIN, WAIT_MS);
	ssize_t n = recv(fd, b, 200, flags | MSG_DONTWAIT);
	if (n < 0)
		return ename(errno);
	if (n == 0)
		return "EOF";
	b[n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (b[i] <= ' ' || b[i] > '~' || b[i] == '=')
			b[i] = '.';
	return b;
}

static int udp4(int port) {
	int fd = xsocket(AF_INET, SOCK_DGRAM);
	if (port >= 0)
		xbind4(fd, "127.0.0.1", port);
	return fd;
}

// wait_outq_empty waits (bounded) until everything sent on fd is acked.
static int wait_outq_empty(int fd) {
	for (int i = 0; i < 2000; i++) {
		int q = 0;
		if (ioctl(fd, SIOCOUTQ, &q) < 0)
			return -1;
		if (q == 0)
			return 1;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

// arm_alarm schedules SIGALRM after ms milliseconds and then every ms
// milliseconds until disarm_alarm: should the first signal come before
// the call under test blocks (a very slow machine), a later one still
// interrupts it. Scenarios report whether a signal came, not how many.
static void arm_alarm(int ms) {
	struct itimerval it;
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	it.it_interval = it.it_value;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		fail("setitimer");
}

static void disarm_alarm(void) {
	struct itimerval it;
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void set_handler(int sig, void (*h)(int), int flags) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		fail("sigaction");
}

static void on_sigpipe(int sig) {
	(void)sig;
	sigpipe_count++;
}
