// Blocking calls interrupted by a signal (brief: "EINTR or restart as on
// Linux, with no connection lost"; C.19, K.82). SIGALRM fires 100 ms into
// the blocking call. Where a restart has to be observed, the handler
// itself provides what the restarted call waits for (a connection, data,
// queue space), so nothing depends on timing beyond the 100 ms head start.

static int sig_listen_port;   // the handler connects here
static int sig_data_fd = -1;  // the handler writes here
static int sig_listener = -1; // the handler accepts from here

static void on_alarm_count(int sig) {
	(void)sig;
	sigalrm_count++;
}

static void on_alarm_connect(int sig) {
	(void)sig;
	sigalrm_count++;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(sig_listen_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	connect(fd, (void *)&a, sizeof a);
}

static void on_alarm_send(int sig) {
	(void)sig;
	sigalrm_count++;
	send(sig_data_fd, "late", 4, MSG_NOSIGNAL);
}

static void on_alarm_accept(int sig) {
	(void)sig;
	sigalrm_count++;
	int fd = accept(sig_listener, NULL, NULL);
	(void)fd; // keep it open: the queue slot is what matters
}

SCEN(s_accept_eintr_no_restart, "K.82 brief:signals") {
	int l = listener4(P(0), 4);
	set_handler(SIGALRM, on_alarm_count, 0);
	arm_alarm(100);
	kv("accept", "%s", R(accept(l, NULL, NULL)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
	// A connection arriving after the interruption is not lost.
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int s = accept(l, (void *)&a, &len);
	kv("accept_after", "%s", R(s));
	kv("is_client", "%d", s >= 0 && ntohs(a.sin_port) == local_port(c));
}

SCEN(s_accept_restart, "K.82 brief:signals") {
	int l = listener4(P(0), 4);
	sig_listen_port = P(0);
	set_handler(SIGALRM, on_alarm_connect, SA_RESTART);
	arm_alarm(100);
	int s = accept(l, NULL, NULL);
	disarm_alarm();
	kv("accept", "%s", R(s));
	kv("signalled", "%d", sigalrm_count > 0);
	kv("peername", "%s", s >= 0 ? peername(s) : "none");
}

SCEN(s_accept_rcvtimeo_eintr_despite_restart, "K.82 C.19 brief:signals") {
	int l = listener4(P(0), 4);
	struct timeval tv = {5, 0};
	setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	set_handler(SIGALRM, on_alarm_count, SA_RESTART);
	arm_alarm(100);
	kv("accept", "%s", R(accept(l, NULL, NULL)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
}

SCEN(s_recv_eintr_no_restart, "M.95 brief:signals") {
	int c, s;
	tcp_pair(0, &c, &s);
	set_handler(SIGALRM, on_alarm_count, 0);
	arm_alarm(100);
	char b[16];
	kv("recv", "%s", N(recv(s, b, sizeof b, 0)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
	xsend(c, "after");
	kv("recv_after", "%s", recv_str(s, 0));
}

SCEN(s_recv_restart, "M.95 brief:signals") {
	int c, s;
	tcp_pair(0, &c, &s);
	sig_data_fd = c;
	set_handler(SIGALRM, on_alarm_send, SA_RESTART);
	arm_alarm(100);
	char b[16] = {0};
	ssize_t n = recv(s, b, sizeof b - 1, 0);
	disarm_alarm();
	kv("recv", "%s", N(n));
	kv("data", "%s", n > 0 ? b : "none");
	kv("signalled", "%d", sigalrm_count > 0);
}

SCEN(s_recv_rcvtimeo_eintr_despite_restart, "M.95 brief:signals") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct timeval tv = {5, 0};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	set_handler(SIGALRM, on_alarm_count, SA_RESTART);
	arm_alarm(100);
	kv("recv", "%s", N(recv(s, (char[8]){0}, 8, 0)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
}

SCEN(s_waitall_restart_completes, "M.95 brief:signals") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "half");
	waitfor(s, POLLIN, WAIT_MS);
	sig_data_fd = c;
	set_handler(SIGALRM, on_alarm_send, SA_RESTART);
	arm_alarm(100);
	char b[16] = {0};
	ssize_t n = recv(s, b, 8, MSG_WAITALL);
	disarm_alarm();
	kv("recv_waitall", "%s", N(n));
	kv("data", "%s", n > 0 ? b : "none");
}

SCEN(s_waitall_eintr_returns_partial, "M.95 brief:signals") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "half");
	waitfor(s, POLLIN, WAIT_MS);
	set_handler(SIGALRM, on_alarm_count, 0);
	arm_alarm(100);
	char b[16] = {0};
	kv("recv_waitall", "%s", N(recv(s, b, 8, MSG_WAITALL)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
}

SCEN(s_connect_eintr_then_ealready, "C.19 brief:signals") {
	int held, l = full_listener(0, &held);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	set_handler(SIGALRM, on_alarm_count, 0);
	arm_alarm(100);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
	kv("tcp_state", "%s", tcp_state(fd));
	// A blocking retry would wait again; look at it without blocking.
	fcntl(fd, F_SETFL, O_NONBLOCK);
	kv("connect_again", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	(void)l;
}

SCEN(s_connect_restart_completes, "C.19 brief:signals") {
	int held, l = full_listener(0, &held);
	sig_listener = l;
	fcntl(l, F_SETFL, O_NONBLOCK); // later signals find the queue empty
	int fd = xsocket(AF_INET, SOCK_STREAM);
	set_handler(SIGALRM, on_alarm_accept, SA_RESTART);
	arm_alarm(100);
	// The handler frees the queue slot; the SYN retransmission (1 s)
	// then completes the handshake and the restarted connect returns.
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
	kv("tcp_state", "%s", tcp_state(fd));
	kv("peername", "%s", peername(fd));
	(void)held;
}

SCEN(s_udp_recv_eintr_datagram_kept, "brief:signals brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	set_handler(SIGALRM, on_alarm_count, 0);
	arm_alarm(100);
	kv("recv", "%s", N(recv(b, (char[8]){0}, 8, 0)));
	disarm_alarm();
	sendto4(a, "kept", 4, "127.0.0.1", P(1));
	recvfrom_kv(b, "recv_after");
}

SCEN(s_udp_recv_restart, "brief:signals brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	connect4_to(a, "127.0.0.1", P(1));
	sig_data_fd = a;
	set_handler(SIGALRM, on_alarm_send, SA_RESTART);
	arm_alarm(100);
	char buf[8] = {0};
	ssize_t n = recv(b, buf, sizeof buf - 1, 0);
	disarm_alarm();
	kv("recv", "%s", N(n));
	kv("data", "%s", n > 0 ? buf : "none");
}

SCEN(s_poll_eintr_never_restarts, "brief:signals brief:poll") {
	int l = listener4(P(0), 4);
	set_handler(SIGALRM, on_alarm_count, SA_RESTART);
	arm_alarm(100);
	struct pollfd p = {.fd = l, .events = POLLIN};
	kv("poll", "%s", N(poll(&p, 1, 5000)));
	disarm_alarm();
	arm_alarm(100);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, out;
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	kv("epoll_wait", "%s", N(epoll_wait(ep, &out, 1, 5000)));
	disarm_alarm();
	kv("signalled", "%d", sigalrm_count > 0);
}
