// Scenarios against the kernel peer in the peer namespace (-peer/-self, see
// serve.h): a real link (veth, MTU 1500) instead of loopback.

static int peer_connect(int port, int *err) {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in a = peer_sin(port);
	int rc = connect(fd, (void *)&a, sizeof a);
	*err = rc < 0 ? errno : 0;
	return fd;
}

SCEN(r_connect_names, "C.17 brief:names") {
	int err, fd = peer_connect(SERVE_ECHO, &err);
	kv("connect", "%s", ename(err));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	kv("in_range", "%d", in_eph(local_port(fd)));
	kv("tcp_state", "%s", tcp_state(fd));
}

SCEN(r_echo_roundtrip, "M.92 M.95") {
	int err, fd = peer_connect(SERVE_ECHO, &err);
	kv("connect", "%s", ename(err));
	xsend(fd, "ping-over-veth");
	kv("echo", "%s", recv_str(fd, 0));
	shutdown(fd, SHUT_WR);
	waitfor(fd, POLLRDHUP, WAIT_MS);
	kv("after_shut_wr", "%s", recv_str(fd, 0));
}

SCEN(r_maxseg_over_veth, "F.35 M.93") {
	int err, fd = peer_connect(SERVE_ECHO, &err);
	kv("connect", "%s", ename(err));
	kv("maxseg", "%s", gi(fd, IPPROTO_TCP, TCP_MAXSEG));
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
	kv("snd_mss", "%u", ti.tcpi_snd_mss);
	kv("advmss", "%u", ti.tcpi_advmss);
	kv("pmtu", "%u", ti.tcpi_pmtu);
}

SCEN(r_refused_blocking, "G.46 C.20") {
	int err, fd = peer_connect(SERVE_CLOSED_TCP, &err);
	kv("connect", "%s", ename(err));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("peername", "%s", peername(fd));
}

SCEN(r_refused_nonblocking, "G.46 C.20 brief:poll") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	struct sockaddr_in a = peer_sin(SERVE_CLOSED_TCP);
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("wait", "%s", pmask(waitfor(fd, POLLOUT, WAIT_MS)));
	kv("poll", "%s", pmask(pollnow(fd)));
	kv("so_error", "%s", so_error(fd));
}

SCEN(r_nonblocking_connect_to_server, "C.18 brief:poll") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	struct sockaddr_in a = peer_sin(SERVE_ECHO);
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("wait", "%s", pmask(waitfor(fd, POLLOUT, WAIT_MS)));
	kv("so_error", "%s", so_error(fd));
	kv("connect_again", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("connect_third", "%s", R(connect(fd, (void *)&a, sizeof a)));
}

SCEN(r_peer_rst, "brief:rst") {
	int err, fd = peer_connect(SERVE_RST, &err);
	kv("connect", "%s", ename(err));
	xsend(fd, "x");
	waitfor(fd, POLLRDHUP, WAIT_MS);
	kv("poll", "%s", pmask(pollnow(fd)));
	kv("read", "%s", recv_str(fd, 0));
	sigpipe_count = 0;
	kv("write", "%s", N(write(fd, "y", 1)));
	kv("sigpipe", "%d", (int)sigpipe_count);
	kv("send_nosignal", "%s", N(send(fd, "y", 1, MSG_NOSIGNAL)));
	kv("sigpipe_after", "%d", (int)sigpipe_count);
}

SCEN(r_peer_fin, "L.88 brief:half-close") {
	int err, fd = peer_connect(SERVE_HELLO, &err);
	kv("connect", "%s", ename(err));
	waitfor(fd, POLLRDHUP, WAIT_MS);
	kv("poll", "%s", pmask(pollnow(fd)));
	kv("read", "%s", recv_str(fd, 0));
	kv("read_eof", "%s", recv_str(fd, 0));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("send_after_fin", "%s", N(send(fd, "z", 1, MSG_NOSIGNAL)));
}

SCEN(r_udp_echo_source, "brief:udp") {
	int u = xsocket(AF_INET, SOCK_DGRAM);
	struct sockaddr_in a = peer_sin(SERVE_UDP_ECHO);
	kv("sendto", "%s", N(sendto(u, "udp-veth", 8, 0, (void *)&a, sizeof a)));
	kv("sockname", "%s", sockname(u));
	recvfrom_kv(u, "reply");
}

SCEN(r_udp_connected_echo, "brief:udp") {
	int u = xsocket(AF_INET, SOCK_DGRAM);
	struct sockaddr_in a = peer_sin(SERVE_UDP_ECHO);
	kv("connect", "%s", R(connect(u, (void *)&a, sizeof a)));
	kv("sockname", "%s", sockname(u));
	kv("send", "%s", N(send(u, "conn", 4, 0)));
	recvfrom_kv(u, "reply");
}

SCEN(r_udp_connected_refused, "brief:udp C.20") {
	int u = xsocket(AF_INET, SOCK_DGRAM);
	struct sockaddr_in a = peer_sin(SERVE_CLOSED_UDP);
	connect(u, (void *)&a, sizeof a);
	kv("send", "%s", N(send(u, "x", 1, 0)));
	kv("wait", "%s", pmask(waitfor(u, POLLIN, WAIT_MS)));
	kv("recv", "%s", N(recv(u, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("recv_again", "%s", N(recv(u, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(r_udp_unconnected_no_error, "brief:udp") {
	int u = xsocket(AF_INET, SOCK_DGRAM);
	struct sockaddr_in a = peer_sin(SERVE_CLOSED_UDP);
	kv("sendto", "%s", N(sendto(u, "x", 1, 0, (void *)&a, sizeof a)));
	kv("wait", "%s", pmask(waitfor(u, POLLIN, 300)));
	kv("so_error", "%s", so_error(u));
}

SCEN(r_bind_addresses, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in s = peer_sin(P(0));
	s.sin_addr = self4;
	kv("bind_self", "%s", R(bind(a, (void *)&s, sizeof s)));
	kv("sockname", "%s", sockname(a));
	int b = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in p = peer_sin(P(0));
	kv("bind_peer", "%s", R(bind(b, (void *)&p, sizeof p)));
	int c = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_lo_same_port", "%s", R(bind4(c, "127.0.0.1", P(0))));
}

SCEN(r_bound_to_loopback_cannot_reach_peer, "C.17") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.1", 0);
	struct sockaddr_in a = peer_sin(SERVE_ECHO);
	struct timeval tv = {0, 300000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
}

SCEN(r_subnet_broadcast_eacces, "brief:udp") {
	int u = xsocket(AF_INET, SOCK_DGRAM);
	struct sockaddr_in a = peer_sin(9);
	a.sin_addr.s_addr = (peer4.s_addr & htonl(0xffffff00)) | htonl(0xff);
	kv("sendto", "%s", N(sendto(u, "b", 1, 0, (void *)&a, sizeof a)));
	setint(u, SOL_SOCKET, SO_BROADCAST, 1);
	kv("sendto_so_broadcast", "%s", N(sendto(u, "b", 1, 0, (void *)&a, sizeof a)));
	int t = xsocket(AF_INET, SOCK_STREAM);
	kv("tcp_connect_broadcast", "%s", R(connect(t, (void *)&a, sizeof a)));
	struct sockaddr_in lb = peer_sin(9);
	lb.sin_addr.s_addr = htonl(INADDR_BROADCAST);
	kv("limited_broadcast_so_broadcast", "%s", N(sendto(u, "b", 1, 0, (void *)&lb, sizeof lb)));
}

SCEN(r_no_route_other_subnet, "C.16") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in a = peer_sin(80);
	a.sin_addr.s_addr = htonl(0x0ad56301); // 10.213.99.1
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
}

SCEN(r_unresolvable_neighbour, "C.20 N.103") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	struct sockaddr_in a = peer_sin(80);
	a.sin_addr.s_addr = (peer4.s_addr & htonl(0xffffff00)) | htonl(77);
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("wait", "%s", pmask(waitfor(fd, POLLOUT, 6000))); // ARP gives up after about 3 s
	kv("so_error", "%s", so_error(fd));
}

SCEN(r_large_echo_intact, "M.92 M.95") {
	int err, fd = peer_connect(SERVE_ECHO, &err);
	kv("connect", "%s", ename(err));
	static unsigned char out[256 * 1024], in[256 * 1024];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)(i * 13 + (i >> 9));
	pid_t pid = fork();
	if (pid == 0) {
		size_t off = 0;
		while (off < sizeof out) {
			ssize_t n = send(fd, out + off, sizeof out - off, MSG_NOSIGNAL);
			if (n <= 0)
				_exit(1);
			off += n;
		}
		_exit(0);
	}
	size_t got = 0;
	while (got < sizeof in) {
		if (!(waitfor(fd, POLLIN, 10000) & POLLIN))
			break;
		ssize_t n = recv(fd, in + got, sizeof in - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	int st;
	waitpid(pid, &st, 0);
	kv("bytes", "%zu", got);
	kv("intact", "%d", got == sizeof out && !memcmp(in, out, got));
}
