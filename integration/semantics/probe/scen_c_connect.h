// Section C: connect() syscall-level semantics.

static int connect4_to(int fd, const char *ip, int port) {
	struct sockaddr_in a = sin4(ip, port);
	return connect(fd, (void *)&a, sizeof a);
}

static int connect6_to(int fd, const char *ip, int port) {
	struct sockaddr_in6 a = sin6(ip, port);
	return connect(fd, (void *)&a, sizeof a);
}

// full_listener returns a listener on P(slot) whose accept queue is full
// (backlog 0 holds one connection, *held): further SYNs are dropped, so a
// connect to it stays in SYN_SENT for the first retransmission interval.
static int full_listener(int slot, int *held) {
	int l = listener4(P(slot), 0);
	*held = connect4(P(slot));
	if (!(waitfor(l, POLLIN, WAIT_MS) & POLLIN))
		fail("accept queue not filled");
	return l;
}

SCEN(c_addrlen_short, "C.13") {
	int l = listener4(P(0), 1);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in a = sin4("127.0.0.1", P(0));
	kv("len15", "%s", R(connect(fd, (void *)&a, 15)));
	kv("len1", "%s", R(connect(fd, (void *)&a, 1)));
	kv("len0", "%s", R(connect(fd, (void *)&a, 0)));
	kv("len129", "%s", R(connect(fd, (void *)&a, 129)));
	kv("len_negative", "%s", R(connect(fd, (void *)&a, (socklen_t)-1)));
	kv("len16", "%s", R(connect(fd, (void *)&a, 16)));
	(void)l;
}

SCEN(c_addrlen_long_ok, "C.13") {
	int l = listener4(P(0), 1);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in a = sin4("127.0.0.1", P(0));
	memcpy(&ss, &a, sizeof a);
	kv("len128", "%s", R(connect(fd, (void *)&ss, 128)));
	kv("peername", "%s", peername(fd));
	(void)l;
}

SCEN(c_family_mismatch, "C.13") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in6 a6 = sin6("::1", P(0));
	kv("inet6_on_inet", "%s", R(connect(fd, (void *)&a6, sizeof a6)));
	struct sockaddr_in a = sin4("127.0.0.1", P(0));
	a.sin_family = AF_UNIX;
	kv("unix_family", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("tcp_state", "%s", tcp_state(fd));
	int fd6 = xsocket(AF_INET6, SOCK_STREAM);
	struct sockaddr_in a4 = sin4("127.0.0.1", P(0));
	kv("inet_on_inet6", "%s", R(connect(fd6, (void *)&a4, sizeof a4)));
}

SCEN(c_bad_pointer, "C.13") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("null_addr", "%s", R(connect(fd, NULL, 16)));
	kv("bad_addr", "%s", R(connect(fd, (void *)8, 16)));
}

SCEN(c_sin_zero_ignored, "C.14") {
	int l = listener4(P(0), 1);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in a;
	memset(&a, '0', sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(P(0));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	kv("connect", "%s", R(connect(fd, (void *)&a, sizeof a)));
	kv("peername", "%s", peername(fd));
	(void)l;
}

SCEN(c_refused_blocking, "C.20") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("so_error", "%s", so_error(fd));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("peername", "%s", peername(fd));
	kv("poll", "%s", pmask(pollnow(fd)));
}

SCEN(c_refused_nonblocking, "C.20") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	int ev = waitfor(fd, POLLOUT, WAIT_MS);
	kv("wait", "%s", pmask(ev));
	kv("poll", "%s", pmask(pollnow(fd)));
	kv("epoll", "%s", emask(epollnow(fd)));
	kv("so_error", "%s", so_error(fd));
	kv("so_error_again", "%s", so_error(fd));
	kv("poll_after_so_error", "%s", pmask(pollnow(fd)));
	kv("tcp_state", "%s", tcp_state(fd));
}

SCEN(c_refused_nonblocking_connect_again, "C.20") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	waitfor(fd, POLLOUT, WAIT_MS);
	kv("connect_again_error_pending", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect_third", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	waitfor(fd, POLLOUT, WAIT_MS);
	kv("so_error", "%s", so_error(fd));
}

SCEN(c_refused_so_error_read_then_connect, "C.20") {
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	connect4_to(fd, "127.0.0.1", P(0));
	waitfor(fd, POLLOUT, WAIT_MS);
	kv("so_error", "%s", so_error(fd));
	kv("connect_after_so_error", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	waitfor(fd, POLLOUT, WAIT_MS);
	kv("so_error2", "%s", so_error(fd));
}

SCEN(c_retry_after_refused, "C.20 C.22") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect1", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("peername_after_fail", "%s", peername(fd));
	int l = listener4(P(0), 1);
	kv("connect2", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("peername", "%s", peername(fd));
	kv("tcp_state", "%s", tcp_state(fd));
	(void)l;
}

SCEN(c_inprogress_then_ealready, "C.18") {
	int held, l = full_listener(0, &held);
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect1", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect2", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect_other_dest", "%s", R(connect4_to(fd, "127.0.0.1", P(1))));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("poll", "%s", pmask(pollnow(fd)));
	kv("so_error", "%s", so_error(fd));
	kv("peername", "%s", peername(fd));
	(void)l;
}

SCEN(c_inprogress_then_0_then_eisconn, "C.18") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect1", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("wait", "%s", pmask(waitfor(fd, POLLOUT, WAIT_MS)));
	kv("connect2", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect3", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect_other", "%s", R(connect4_to(fd, "127.0.0.1", P(1))));
	(void)l;
}

SCEN(c_blocking_connected_then_eisconn, "C.18") {
	int l = listener4(P(0), 4);
	int fd = connect4(P(0));
	kv("connect2", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("tcp_state", "%s", tcp_state(fd));
	(void)l;
}

SCEN(c_connect_on_listener, "C.18") {
	int l = listener4(P(0), 4);
	int l2 = listener4(P(1), 4);
	kv("connect", "%s", R(connect4_to(l, "127.0.0.1", P(1))));
	kv("tcp_state", "%s", tcp_state(l));
	(void)l2;
}

SCEN(c_sndtimeo_returns_einprogress, "C.19") {
	int held, l = full_listener(0, &held);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	kv("connect1", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("connect2", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("tcp_state", "%s", tcp_state(fd));
	(void)l;
}

SCEN(c_udp_af_unspec_disconnect, "C.13") {
	int r = udp4(P(0));
	int fd = udp4(-1);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("peername", "%s", peername(fd));
	struct sockaddr_in un;
	memset(&un, 0, sizeof un);
	un.sin_family = AF_UNSPEC;
	kv("disconnect", "%s", R(connect(fd, (void *)&un, sizeof un)));
	kv("peername_after", "%s", peername(fd));
	kv("sockname_after", "%s", sockname(fd));
	kv("send_after", "%s", N(send(fd, "x", 1, 0)));
	kv("disconnect_again", "%s", R(connect(fd, (void *)&un, sizeof un)));
	kv("disconnect_short", "%s", R(connect(fd, (void *)&un, 2)));
	(void)r;
}

SCEN(c_tcp_af_unspec_disconnect, "C.13") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct sockaddr_in un;
	memset(&un, 0, sizeof un);
	un.sin_family = AF_UNSPEC;
	kv("disconnect", "%s", R(connect(c, (void *)&un, sizeof un)));
	kv("tcp_state", "%s", tcp_state(c));
	kv("peername", "%s", peername(c));
	kv("peer_read", "%s", recv_str(s, 0));
	kv("reconnect_listener_gone", "%s", R(connect4_to(c, "127.0.0.1", P(0))));
}

SCEN(c_unspec_on_unconnected_tcp, "C.13") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in un;
	memset(&un, 0, sizeof un);
	un.sin_family = AF_UNSPEC;
	kv("disconnect", "%s", R(connect(fd, (void *)&un, sizeof un)));
	kv("tcp_state", "%s", tcp_state(fd));
}

SCEN(c_multicast_enetunreach, "C.16") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "224.0.0.1", 80)));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("sockname", "%s", sockname(fd));
}

SCEN(c_broadcast_enetunreach, "C.16") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "255.255.255.255", 80)));
	kv("tcp_state", "%s", tcp_state(fd));
}

SCEN(c_no_route_enetunreach, "C.16") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "10.213.99.1", 80)));
	int nb = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect_nonblock", "%s", R(connect4_to(nb, "10.213.99.1", 80)));
	kv("sockname", "%s", sockname(nb));
	int u = xsocket(AF_INET, SOCK_DGRAM);
	kv("udp_connect", "%s", R(connect4_to(u, "10.213.99.1", 80)));
}

SCEN(c_no_route_v6, "C.16") {
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("connect", "%s", R(connect6_to(fd, "fd00:213:99::1", 80)));
}

SCEN(c_zero_address_is_local, "C.17") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "0.0.0.0", P(0))));
	kv("peername", "%s", peername(fd));
	kv("sockname", "%s", sockname(fd));
	int s = xaccept(l);
	kv("accepted_sockname", "%s", sockname(s));
}

SCEN(c_source_address_chosen, "C.17") {
	int l = xsocket(AF_INET, SOCK_STREAM);
	xbind4(l, "0.0.0.0", P(0));
	listen(l, 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect_127_0_0_5", "%s", R(connect4_to(fd, "127.0.0.5", P(0))));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	kv("in_range", "%d", in_eph(local_port(fd)));
}

SCEN(c_bound_then_connect, "C.17") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.1", P(1));
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(fd));
	int s = xaccept(l);
	kv("accepted_peername", "%s", peername(s));
}

SCEN(c_bound_other_loopback_then_connect, "C.17") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.3", 0);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(fd));
	int s = xaccept(l);
	kv("accepted_peername", "%s", peername(s));
}

SCEN(c_self_connect, "I.66") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.1", P(0));
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("tcp_state", "%s", tcp_state(fd));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	xsend(fd, "self");
	kv("read", "%s", recv_str(fd, 0));
}

SCEN(c_v4mapped_connect, "brief:v6only") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("connect", "%s", R(connect6_to(fd, "::ffff:127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	int s = xaccept(l);
	kv("accepted_peername", "%s", peername(s));
}

SCEN(c_v4mapped_v6only_refused, "brief:v6only") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	kv("connect", "%s", R(connect6_to(fd, "::ffff:127.0.0.1", P(0))));
	(void)l;
}

SCEN(c_v6_loopback, "C.17") {
	int l = listener6("::1", P(0), -1, 4);
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("connect", "%s", R(connect6_to(fd, "::1", P(0))));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	int s = xaccept(l);
	kv("accepted_peername", "%s", peername(s));
	kv("accepted_sockname", "%s", sockname(s));
}

SCEN(c_v6_refused, "C.20") {
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("connect", "%s", R(connect6_to(fd, "::1", P(0))));
	int nb = xsocket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect_nonblock", "%s", R(connect6_to(nb, "::1", P(0))));
	waitfor(nb, POLLOUT, WAIT_MS);
	kv("so_error", "%s", so_error(nb));
}

SCEN(c_v6_to_v4_only_listener, "brief:v6only") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("connect_v6_loopback", "%s", R(connect6_to(fd, "::1", P(0))));
	(void)l;
}

SCEN(c_dual_stack_listener_v4_client, "brief:v6only") {
	int l = listener6("::", P(0), -1, 4);
	int fd = connect4(P(0));
	int s = xaccept(l);
	kv("client_sockname", "%s", sockname(fd));
	kv("accepted_peername", "%s", peername(s));
	kv("accepted_sockname", "%s", sockname(s));
	kv("listener_sockname", "%s", sockname(l));
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int c2 = connect4(P(0));
	int s2 = accept(l, (void *)&ss, &len);
	kv("accept_addr", "%s", s2 < 0 ? ename(errno) : sa_str((void *)&ss, len));
	kv("accept_addrlen", "%d", (int)len);
	(void)c2;
}

SCEN(c_v6only_listener_v4_client, "brief:v6only") {
	int l = listener6("::", P(0), 1, 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	(void)l;
}

SCEN(c_connect_after_shutdown, "C.18") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("shutdown_unconnected", "%s", R(shutdown(fd, SHUT_WR)));
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	(void)l;
}

SCEN(c_connect_after_close_of_peer, "C.18") {
	int c, s;
	tcp_pair(0, &c, &s);
	close(s);
	waitfor(c, POLLIN, WAIT_MS);
	kv("connect_again", "%s", R(connect4_to(c, "127.0.0.1", P(0))));
	kv("tcp_state", "%s", tcp_state(c));
}
