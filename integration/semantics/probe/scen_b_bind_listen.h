// Section B: bind() and listen().

static int bind4(int fd, const char *ip, int port) {
	struct sockaddr_in a = sin4(ip, port);
	return bind(fd, (void *)&a, sizeof a);
}

static int bind6(int fd, const char *ip, int port) {
	struct sockaddr_in6 a = sin6(ip, port);
	return bind(fd, (void *)&a, sizeof a);
}

SCEN(b_addrinuse_without_reuse, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
	kv("sockname_failed", "%s", sockname(b));
	kv("sockname_ok", "%s", sockname(a));
}

SCEN(b_addrinuse_listener_without_reuse, "B.6") {
	int a = listener4(P(0), 4), b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
	kv("sockname_failed", "%s", sockname(b));
	kv("rebind_other_port", "%s", R(bind4(b, "127.0.0.1", P(1))));
	kv("sockname", "%s", sockname(b));
	(void)a;
}

SCEN(b_reuseaddr_both_not_listening, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(a, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
	kv("listen1", "%s", R(listen(a, 4)));
	kv("listen2", "%s", R(listen(b, 4)));
}

SCEN(b_reuseaddr_against_listener, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(a, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("listen1", "%s", R(listen(a, 4)));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
}

SCEN(b_reuseaddr_one_side, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
}

SCEN(b_reuseport_both_listen, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(a, SOL_SOCKET, SO_REUSEPORT, 1);
	setint(b, SOL_SOCKET, SO_REUSEPORT, 1);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("listen1", "%s", R(listen(a, 4)));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
	kv("listen2", "%s", R(listen(b, 4)));
	kv("get_reuseport", "%s", gi(b, SOL_SOCKET, SO_REUSEPORT));
}

SCEN(b_reuseport_one_side, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(b, SOL_SOCKET, SO_REUSEPORT, 1);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("listen1", "%s", R(listen(a, 4)));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
}

SCEN(b_wildcard_vs_specific, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_any", "%s", R(bind4(a, "0.0.0.0", P(0))));
	kv("bind_lo", "%s", R(bind4(b, "127.0.0.1", P(0))));
	int c = xsocket(AF_INET, SOCK_STREAM), d = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_lo_first", "%s", R(bind4(c, "127.0.0.1", P(1))));
	kv("bind_any_second", "%s", R(bind4(d, "0.0.0.0", P(1))));
}

SCEN(b_two_loopback_addresses, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_127_0_0_1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind_127_0_0_2", "%s", R(bind4(b, "127.0.0.2", P(0))));
	kv("sockname", "%s", sockname(b));
}

SCEN(b_double_bind_einval, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2_same", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2_other", "%s", R(bind4(a, "127.0.0.1", P(1))));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_foreign_address, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	kv("bind", "%s", R(bind4(a, "192.0.2.1", P(0))));
	kv("sockname", "%s", sockname(a));
	int b = xsocket(AF_INET, SOCK_STREAM);
	setint(b, SOL_IP, IP_FREEBIND, 1);
	kv("bind_freebind", "%s", R(bind4(b, "192.0.2.1", P(0))));
	kv("sockname_freebind", "%s", sockname(b));
}

SCEN(b_port0_ephemeral, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	kv("bind", "%s", R(bind4(a, "127.0.0.1", 0)));
	kv("sockname", "%s", sockname(a));
	kv("in_range", "%d", in_eph(local_port(a)));
	kv("tcp_state", "%s", tcp_state(a));
}

SCEN(b_port0_twice_distinct, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	bind4(a, "0.0.0.0", 0);
	bind4(b, "0.0.0.0", 0);
	kv("distinct", "%d", local_port(a) != local_port(b));
	kv("in_range", "%d", in_eph(local_port(a)) && in_eph(local_port(b)));
}

SCEN(b_family_inet6_on_inet, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in6 s = sin6("::1", P(0));
	kv("bind_len28", "%s", R(bind(a, (void *)&s, sizeof s)));
	kv("bind_len16", "%s", R(bind(a, (void *)&s, 16)));
}

SCEN(b_family_unspec_any, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in s = sin4("0.0.0.0", P(0));
	s.sin_family = AF_UNSPEC;
	kv("bind", "%s", R(bind(a, (void *)&s, sizeof s)));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_family_unspec_specific, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in s = sin4("127.0.0.1", P(0));
	s.sin_family = AF_UNSPEC;
	kv("bind", "%s", R(bind(a, (void *)&s, sizeof s)));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_short_addrlen, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in s = sin4("127.0.0.1", P(0));
	kv("bind_len15", "%s", R(bind(a, (void *)&s, 15)));
	kv("bind_len8", "%s", R(bind(a, (void *)&s, 8)));
	kv("bind_len0", "%s", R(bind(a, (void *)&s, 0)));
	kv("bind_len200", "%s", R(bind(a, (void *)&s, 200)));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_inet6_short_addrlen, "B.6") {
	int a = xsocket(AF_INET6, SOCK_STREAM);
	struct sockaddr_in6 s = sin6("::1", P(0));
	kv("bind_len16", "%s", R(bind(a, (void *)&s, 16)));
	kv("bind_len24", "%s", R(bind(a, (void *)&s, 24)));
	struct sockaddr_in s4 = sin4("127.0.0.1", P(0));
	kv("bind_sockaddr_in", "%s", R(bind(a, (void *)&s4, sizeof s4)));
	kv("bind_full", "%s", R(bind(a, (void *)&s, sizeof s)));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_v4mapped_dual_stack, "brief:v6only") {
	int a = xsocket(AF_INET6, SOCK_STREAM);
	kv("bind", "%s", R(bind6(a, "::ffff:127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(a));
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_v4_same_port", "%s", R(bind4(b, "127.0.0.1", P(0))));
}

SCEN(b_v4mapped_v6only, "brief:v6only") {
	int a = xsocket(AF_INET6, SOCK_STREAM);
	setint(a, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	kv("bind", "%s", R(bind6(a, "::ffff:127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_dual_stack_conflicts_with_v4, "brief:v6only") {
	int a = xsocket(AF_INET6, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind6_any", "%s", R(bind6(a, "::", P(0))));
	kv("bind4_any", "%s", R(bind4(b, "0.0.0.0", P(0))));
	int c = xsocket(AF_INET, SOCK_STREAM), d = xsocket(AF_INET6, SOCK_STREAM);
	kv("bind4_first", "%s", R(bind4(c, "0.0.0.0", P(1))));
	kv("bind6_second", "%s", R(bind6(d, "::", P(1))));
}

SCEN(b_v6only_no_conflict, "brief:v6only") {
	int a = xsocket(AF_INET6, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(a, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	kv("bind6_any", "%s", R(bind6(a, "::", P(0))));
	kv("bind4_any", "%s", R(bind4(b, "0.0.0.0", P(0))));
	kv("listen6", "%s", R(listen(a, 1)));
	kv("listen4", "%s", R(listen(b, 1)));
}

SCEN(b_v6only_after_bind, "brief:v6only") {
	int a = xsocket(AF_INET6, SOCK_STREAM);
	bind6(a, "::", P(0));
	int v = 1;
	kv("set_v6only", "%s", R(setsockopt(a, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v)));
	kv("v6only", "%s", gi(a, IPPROTO_IPV6, IPV6_V6ONLY));
}

SCEN(b_udp_tcp_same_port, "B.6") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_DGRAM);
	kv("bind_tcp", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind_udp", "%s", R(bind4(b, "127.0.0.1", P(0))));
}

SCEN(b_udp_addrinuse, "B.6") {
	int a = xsocket(AF_INET, SOCK_DGRAM), b = xsocket(AF_INET, SOCK_DGRAM);
	kv("bind1", "%s", R(bind4(a, "127.0.0.1", P(0))));
	kv("bind2", "%s", R(bind4(b, "127.0.0.1", P(0))));
	int c = xsocket(AF_INET, SOCK_DGRAM), d = xsocket(AF_INET, SOCK_DGRAM);
	setint(c, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(d, SOL_SOCKET, SO_REUSEADDR, 1);
	kv("reuse_bind1", "%s", R(bind4(c, "127.0.0.1", P(1))));
	kv("reuse_bind2", "%s", R(bind4(d, "127.0.0.1", P(1))));
}

SCEN(b_bind_after_listen, "B.6") {
	int a = listener4(P(0), 1);
	kv("bind", "%s", R(bind4(a, "127.0.0.1", P(1))));
	kv("sockname", "%s", sockname(a));
}

SCEN(b_bind_after_connect, "B.6") {
	int l = listener4(P(0), 1);
	int c = connect4(P(0));
	kv("bind", "%s", R(bind4(c, "127.0.0.1", P(1))));
	kv("sockname", "%s", sockname(c));
	(void)l;
}

SCEN(b_bind_keeps_close_state, "B.7") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	bind4(a, "127.0.0.1", P(0));
	kv("tcp_state", "%s", tcp_state(a));
	kv("peername", "%s", peername(a));
	kv("poll", "%s", pmask(pollnow(a)));
}

SCEN(b_bind_multicast_udp, "B.6") {
	int a = xsocket(AF_INET, SOCK_DGRAM);
	kv("bind_udp", "%s", R(bind4(a, "224.0.0.1", P(0))));
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_tcp", "%s", R(bind4(b, "224.0.0.1", P(1))));
}

SCEN(b_bind_limited_broadcast, "B.6") {
	int a = xsocket(AF_INET, SOCK_DGRAM);
	kv("bind_udp", "%s", R(bind4(a, "255.255.255.255", P(0))));
}

SCEN(b_listen_udp, "B.9") {
	int a = udp4(P(0));
	kv("listen", "%s", R(listen(a, 1)));
}

SCEN(b_listen_connected, "B.9") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("listen_client", "%s", R(listen(c, 1)));
	kv("listen_accepted", "%s", R(listen(s, 1)));
	kv("state", "%s", tcp_state(c));
}

SCEN(b_listen_autobind, "B.11") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	kv("listen", "%s", R(listen(a, 1)));
	kv("sockname", "%s", sockname(a));
	kv("in_range", "%d", in_eph(local_port(a)));
	kv("tcp_state", "%s", tcp_state(a));
}

SCEN(b_listen_autobind_v6, "B.11") {
	int a = xsocket(AF_INET6, SOCK_STREAM);
	kv("listen", "%s", R(listen(a, 1)));
	kv("sockname", "%s", sockname(a));
	kv("in_range", "%d", in_eph(local_port(a)));
}

SCEN(b_listen_twice, "B.10") {
	int a = listener4(P(0), 1);
	kv("listen_again", "%s", R(listen(a, 10)));
	kv("sockname", "%s", sockname(a));
	kv("tcp_state", "%s", tcp_state(a));
	kv("acceptconn", "%s", gi(a, SOL_SOCKET, SO_ACCEPTCONN));
}

SCEN(b_listen_negative_backlog, "B.10") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	bind4(a, "127.0.0.1", P(0));
	kv("listen", "%s", R(listen(a, -1)));
	kv("tcp_state", "%s", tcp_state(a));
}

SCEN(b_listen_after_shutdown_unconnected, "B.9") {
	int a = xsocket(AF_INET, SOCK_STREAM);
	bind4(a, "127.0.0.1", P(0));
	kv("shutdown", "%s", R(shutdown(a, SHUT_RDWR)));
	kv("listen", "%s", R(listen(a, 1)));
}

// The backlog can be raised on a live listener: a connection whose SYN was
// dropped while the queue was full completes on its next retransmission.
SCEN(b_relisten_raises_backlog, "B.10") {
	int l = listener4(P(0), 0);
	int held = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	int c = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	struct sockaddr_in a = sin4("127.0.0.1", P(0));
	kv("connect2", "%s", R(connect(c, (void *)&a, sizeof a)));
	kv("poll_queue_full", "%s", pmask(pollnow(c)));
	kv("relisten", "%s", R(listen(l, 8)));
	int ev = waitfor(c, POLLOUT, 5000); // the SYN is retransmitted after 1 s
	kv("connected_after_relisten", "%s", pmask(ev));
	kv("so_error", "%s", so_error(c));
	(void)held;
}
