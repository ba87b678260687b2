// Section D: ephemeral port selection and 4-tuple uniqueness.

SCEN(d_consecutive_connects_distinct, "D.25") {
	int l = listener4(P(0), 16);
	int ports[6], ok = 1, distinct = 1;
	for (int i = 0; i < 6; i++) {
		int fd = connect4(P(0));
		ports[i] = local_port(fd);
		ok &= in_eph(ports[i]);
		for (int j = 0; j < i; j++)
			distinct &= ports[i] != ports[j];
	}
	kv("in_range", "%d", ok);
	kv("distinct", "%d", distinct);
	(void)l;
}

SCEN(d_udp_autobind_in_range, "D.25") {
	int r = udp4(P(0));
	int fd = udp4(-1);
	struct sockaddr_in a = sin4("127.0.0.1", P(0));
	kv("sendto", "%s", N(sendto(fd, "x", 1, 0, (void *)&a, sizeof a)));
	kv("sockname", "%s", sockname(fd));
	kv("in_range", "%d", in_eph(local_port(fd)));
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	char b[8];
	waitfor(r, POLLIN, WAIT_MS);
	recvfrom(r, b, sizeof b, MSG_DONTWAIT, (void *)&from, &fl);
	kv("from_matches", "%d", ntohs(from.sin_port) == local_port(fd));
}

SCEN(d_bind_port0_then_connect_keeps_port, "D.29") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	xbind4(fd, "127.0.0.1", 0);
	int before = local_port(fd);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("same_port", "%d", before == local_port(fd));
	(void)l;
}

SCEN(d_reuseaddr_same_4tuple, "D.29") {
	int l = listener4(P(0), 4);
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_STREAM);
	setint(a, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
	kv("bind_a", "%s", R(bind4(a, "127.0.0.1", P(1))));
	kv("bind_b", "%s", R(bind4(b, "127.0.0.1", P(1))));
	kv("connect_a", "%s", R(connect4_to(a, "127.0.0.1", P(0))));
	kv("connect_b", "%s", R(connect4_to(b, "127.0.0.1", P(0))));
	kv("peername_b", "%s", peername(b));
	kv("state_b", "%s", tcp_state(b));
	int l2 = listener4(P(2), 4);
	kv("connect_b_other_dest", "%s", R(connect4_to(b, "127.0.0.1", P(2))));
	kv("sockname_b", "%s", sockname(b));
	(void)l;
	(void)l2;
}

SCEN(d_listener_and_established_share_port, "B.12") {
	int c, s;
	int l = listener4(P(0), 4);
	c = connect4(P(0));
	s = xaccept(l);
	kv("accepted_sockname", "%s", sockname(s));
	xsend(c, "to-established");
	kv("established_reads", "%s", recv_str(s, 0));
	kv("listener_poll", "%s", pmask(pollnow(l)));
}

NARROW(d_narrow_first_connect_uses_port, "D.25 D.27") {
	int l = listener4(P(0), 4);
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(fd, "127.0.0.1", P(0))));
	kv("sockname", "%s", sockname(fd));
	(void)l;
}

NARROW(d_narrow_range_exhausted, "D.27") {
	int l = listener4(P(0), 4);
	int a = connect4(P(0));
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("connect2", "%s", R(connect4_to(b, "127.0.0.1", P(0))));
	kv("peername2", "%s", peername(b));
	kv("state2", "%s", tcp_state(b));
	int nb = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	kv("connect_nonblock", "%s", R(connect4_to(nb, "127.0.0.1", P(0))));
	(void)a;
	(void)l;
}

NARROW(d_narrow_other_destination_shares_port, "D.26") {
	int l0 = listener4(P(0), 4), l1 = listener4(P(1), 4);
	int a = connect4(P(0));
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("connect_other_dest", "%s", R(connect4_to(b, "127.0.0.1", P(1))));
	kv("same_port", "%d", local_port(a) == local_port(b));
	kv("sockname", "%s", sockname(b));
	(void)l0;
	(void)l1;
}

NARROW(d_narrow_bind_port0_exhausted, "D.26") {
	int l = listener4(P(0), 4);
	int a = connect4(P(0));
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_port0", "%s", R(bind4(b, "127.0.0.1", 0)));
	kv("sockname", "%s", sockname(b));
	(void)a;
	(void)l;
}

NARROW(d_narrow_bound_port_blocks_connect, "D.26") {
	int l = listener4(P(0), 4);
	int b = xsocket(AF_INET, SOCK_STREAM);
	kv("bind_port0", "%s", R(bind4(b, "127.0.0.1", 0)));
	int a = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(a, "127.0.0.1", P(0))));
	(void)l;
}

NARROW(d_narrow_udp_autobind, "D.27") {
	int a = udp4(-1);
	struct sockaddr_in dst = sin4("127.0.0.1", P(0));
	kv("sendto1", "%s", N(sendto(a, "x", 1, 0, (void *)&dst, sizeof dst)));
	kv("sockname1", "%s", sockname(a));
	int b = udp4(-1);
	kv("sendto2", "%s", N(sendto(b, "x", 1, 0, (void *)&dst, sizeof dst)));
	kv("sockname2", "%s", sockname(b));
}
