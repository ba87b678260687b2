// serve: the kernel peer services the r-* scenarios talk to. The Go test
// runs `probe -serve PEER_IP` in the peer namespace; it prints "ready" once
// every socket is bound and runs until killed.
//
//   TCP 5001  echo (one process per connection)
//   TCP 5005  accept, read one byte, then close with SO_LINGER 0 (RST)
//   TCP 5006  accept, send "hello", close (FIN)
//   UDP 5003  echo
//   TCP 5002 and UDP 5004 stay closed (RST / ICMP port unreachable).
enum {
	SERVE_ECHO = 5001,
	SERVE_CLOSED_TCP = 5002,
	SERVE_UDP_ECHO = 5003,
	SERVE_CLOSED_UDP = 5004,
	SERVE_RST = 5005,
	SERVE_HELLO = 5006,
};

static int serve_bind(const char *ip, int type, int port) {
	int fd = socket(AF_INET, type, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 || bind(fd, (void *)&a, sizeof a) < 0)
		return -1;
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		return -1;
	return fd;
}

static void serve_echo(int l) {
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int s = accept(l, NULL, NULL);
		if (s < 0)
			continue;
		if (fork() == 0) {
			char b[4096];
			ssize_t n;
			while ((n = recv(s, b, sizeof b, 0)) > 0)
				if (send(s, b, n, MSG_NOSIGNAL) != n)
					break;
			_exit(0);
		}
		close(s);
	}
}

static void serve_rst(int l) {
	for (;;) {
		int s = accept(l, NULL, NULL);
		if (s < 0)
			continue;
		char b;
		struct pollfd p = {.fd = s, .events = POLLIN};
		poll(&p, 1, 10000);
		recv(s, &b, 1, MSG_DONTWAIT);
		struct linger lg = {1, 0};
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(s);
	}
}

static void serve_hello(int l) {
	for (;;) {
		int s = accept(l, NULL, NULL);
		if (s < 0)
			continue;
		send(s, "hello", 5, MSG_NOSIGNAL);
		close(s);
	}
}

static void serve_udp_echo(int u) {
	for (;;) {
		char b[65536];
		struct sockaddr_in from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(u, b, sizeof b, 0, (void *)&from, &fl);
		if (n >= 0)
			sendto(u, b, n, 0, (void *)&from, fl);
	}
}

static int serve(const char *ip) {
	int echo = serve_bind(ip, SOCK_STREAM, SERVE_ECHO);
	int rst = serve_bind(ip, SOCK_STREAM, SERVE_RST);
	int hello = serve_bind(ip, SOCK_STREAM, SERVE_HELLO);
	int uecho = serve_bind(ip, SOCK_DGRAM, SERVE_UDP_ECHO);
	if (echo < 0 || rst < 0 || hello < 0 || uecho < 0) {
		fprintf(stderr, "serve: bind on %s: %s\n", ip, strerror(errno));
		return 1;
	}
	void (*loops[])(int) = {serve_echo, serve_rst, serve_hello, serve_udp_echo};
	int fds[] = {echo, rst, hello, uecho};
	for (int i = 0; i < 4; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			loops[i](fds[i]);
			_exit(0);
		}
	}
	printf("ready\n");
	fflush(stdout);
	// The Go test kills the process group; wait for that.
	for (;;)
		pause();
}
