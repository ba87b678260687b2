// Section K: accept() semantics (and J.80: the handshake completes without
// accept).

SCEN(k_nonblocking_empty_eagain, "K.82") {
	int l = listener4(P(0), 4);
	fcntl(l, F_SETFL, O_NONBLOCK);
	kv("accept", "%s", R(accept(l, NULL, NULL)));
	kv("accept4", "%s", R(accept4(l, NULL, NULL, SOCK_CLOEXEC)));
	int l2 = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	bind4(l2, "127.0.0.1", P(1));
	listen(l2, 1);
	kv("accept_sock_nonblock", "%s", R(accept(l2, NULL, NULL)));
}

SCEN(k_not_listening_einval, "K.82") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("accept_fresh", "%s", R(accept(fd, NULL, NULL)));
	bind4(fd, "127.0.0.1", P(0));
	kv("accept_bound", "%s", R(accept(fd, NULL, NULL)));
	int c, s;
	tcp_pair(1, &c, &s);
	kv("accept_connected", "%s", R(accept(c, NULL, NULL)));
}

SCEN(k_udp_eopnotsupp, "K.82") {
	int u = udp4(P(0));
	kv("accept", "%s", R(accept(u, NULL, NULL)));
}

SCEN(k_accept4_flags, "K.84 A.3") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	int s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	kv("accept4", "%s", R(s));
	kv("o_nonblock", "%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
	kv("fd_cloexec", "%d", !!(fcntl(s, F_GETFD) & FD_CLOEXEC));
	kv("recv_empty", "%s", N(recv(s, (char[4]){0}, 4, 0)));
	(void)c;
}

SCEN(k_accept4_bad_flags, "K.82") {
	int l = listener4(P(0), 4);
	kv("accept4", "%s", R(accept4(l, NULL, NULL, 0x4)));
	kv("accept4_o_append", "%s", R(accept4(l, NULL, NULL, O_APPEND)));
}

SCEN(k_nonblock_not_inherited, "K.84") {
	int l = listener4(P(0), 4);
	fcntl(l, F_SETFL, O_NONBLOCK);
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	int s = accept(l, NULL, NULL);
	kv("accept", "%s", R(s));
	kv("o_nonblock", "%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
	(void)c;
}

SCEN(k_peername_matches_client, "K.84") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int s = accept(l, (void *)&a, &len);
	kv("accept", "%s", R(s));
	kv("addr", "%s", sa_str((void *)&a, len));
	kv("addrlen", "%d", (int)len);
	kv("addr_is_client", "%d", ntohs(a.sin_port) == local_port(c));
	kv("peername", "%s", peername(s));
	kv("sockname", "%s", sockname(s));
	kv("tcp_state", "%s", tcp_state(s));
	kv("acceptconn", "%s", gi(s, SOL_SOCKET, SO_ACCEPTCONN));
}

SCEN(k_addrlen_truncated, "K.84") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	unsigned char buf[16];
	memset(buf, 0xee, sizeof buf);
	socklen_t len = 4;
	int s = accept(l, (void *)buf, &len);
	kv("accept", "%s", R(s));
	kv("addrlen", "%d", (int)len);
	kv("family_written", "%d", buf[0] | buf[1] << 8);
	kv("byte4_untouched", "%d", buf[4] == 0xee);
	int c2 = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	len = (socklen_t)-1;
	kv("accept_negative_len", "%s", R(accept(l, (void *)buf, &len)));
	(void)c;
	(void)c2;
}

SCEN(k_rcvtimeo_eagain, "K.82") {
	int l = listener4(P(0), 4);
	struct timeval tv = {0, 100000};
	setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	kv("accept", "%s", R(accept(l, NULL, NULL)));
}

SCEN(k_data_before_accept, "J.80") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	xsend(c, "early-data");
	waitfor(l, POLLIN, WAIT_MS);
	int s = accept(l, NULL, NULL);
	waitfor(s, POLLIN, WAIT_MS);
	int n = -1;
	ioctl(s, FIONREAD, &n);
	kv("fionread", "%d", n);
	kv("read", "%s", recv_str(s, 0));
}

SCEN(k_fifo_order, "K.83") {
	int l = listener4(P(0), 8);
	int c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = connect4(P(0));
		if (!(waitfor(l, POLLIN, WAIT_MS) & POLLIN))
			fail("wait");
		// Wait until the i+1-th child is queued (accept queue is FIFO).
		struct tcp_info ti;
		socklen_t tl = sizeof ti;
		for (int k = 0; k < 1000; k++) {
			getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl);
			if ((int)ti.tcpi_unacked >= i + 1)
				break;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	int order_ok = 1;
	for (int i = 0; i < 3; i++) {
		struct sockaddr_in a;
		socklen_t len = sizeof a;
		int s = accept(l, (void *)&a, &len);
		if (s < 0)
			fail("accept");
		order_ok &= ntohs(a.sin_port) == local_port(c[i]);
	}
	kv("fifo", "%d", order_ok);
}

SCEN(k_listener_tcp_info_queue, "K.84 J.80") {
	int l = listener4(P(0), 7);
	int c1 = connect4(P(0)), c2 = connect4(P(0));
	struct tcp_info ti;
	socklen_t tl = sizeof ti;
	for (int k = 0; k < 1000; k++) {
		getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl);
		if (ti.tcpi_unacked >= 2)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	kv("state", "%s", tcp_state_name(ti.tcpi_state));
	kv("queued", "%u", ti.tcpi_unacked);
	kv("backlog", "%u", ti.tcpi_sacked);
	(void)c1;
	(void)c2;
}

SCEN(k_client_closed_before_accept, "K.84 J.80") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	xsend(c, "bye");
	close(c);
	waitfor(l, POLLIN, WAIT_MS);
	int s = accept(l, NULL, NULL);
	kv("accept", "%s", R(s));
	waitfor(s, POLLRDHUP, WAIT_MS);
	kv("tcp_state", "%s", tcp_state(s));
	kv("read1", "%s", recv_str(s, 0));
	kv("read2", "%s", recv_str(s, 0));
	kv("peername", "%s", peername(s));
}

SCEN(k_client_reset_before_accept, "K.84") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	waitfor(l, POLLIN, WAIT_MS);
	struct linger lg = {1, 0};
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(c);
	int s = accept(l, NULL, NULL);
	kv("accept", "%s", R(s));
	if (s >= 0) {
		// Whether the RST is processed before or after accept, the
		// accepted socket ends up reset; wait for that, bounded.
		waitfor(s, POLLRDHUP, WAIT_MS);
		kv("tcp_state", "%s", tcp_state(s));
		kv("poll", "%s", pmask(pollnow(s)));
		kv("read", "%s", recv_str(s, 0));
		kv("peername", "%s", peername(s));
	}
}

SCEN(k_backlog_holds_n_plus_one, "G.50 J.77") {
	int l = listener4(P(0), 1);
	int c[3], st[3];
	for (int i = 0; i < 3; i++) {
		c[i] = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
		connect4_to(c[i], "127.0.0.1", P(0));
		st[i] = waitfor(c[i], POLLOUT, i < 2 ? WAIT_MS : 300);
	}
	kv("c1", "%s", pmask(st[0]));
	kv("c2", "%s", pmask(st[1]));
	kv("c3", "%s", pmask(st[2]));
	kv("c3_state", "%s", tcp_state(c[2]));
	int a1 = accept(l, NULL, NULL), a2 = accept(l, NULL, NULL);
	kv("accept1", "%s", R(a1));
	kv("accept2", "%s", R(a2));
	kv("c3_after_accepts", "%s", pmask(waitfor(c[2], POLLOUT, 5000)));
}

SCEN(k_options_inherited, "K.84") {
	int l = xsocket(AF_INET, SOCK_STREAM);
	setint(l, IPPROTO_TCP, TCP_NODELAY, 1);
	setint(l, SOL_SOCKET, SO_KEEPALIVE, 1);
	setint(l, SOL_SOCKET, SO_RCVBUF, 50000);
	setint(l, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	xbind4(l, "127.0.0.1", P(0));
	listen(l, 4);
	int c = connect4(P(0));
	int s = xaccept(l);
	kv("nodelay", "%s", gi(s, IPPROTO_TCP, TCP_NODELAY));
	kv("keepalive", "%s", gi(s, SOL_SOCKET, SO_KEEPALIVE));
	kv("rcvbuf", "%s", gi(s, SOL_SOCKET, SO_RCVBUF));
	kv("keepidle", "%s", gi(s, IPPROTO_TCP, TCP_KEEPIDLE));
	kv("client_nodelay", "%s", gi(c, IPPROTO_TCP, TCP_NODELAY));
}

SCEN(k_listener_stays_listen, "K.84") {
	int l = listener4(P(0), 4);
	int c = connect4(P(0));
	int s = xaccept(l);
	kv("listener_state", "%s", tcp_state(l));
	kv("accepted_state", "%s", tcp_state(s));
	kv("distinct_fd", "%d", s != l);
	kv("listener_acceptconn", "%s", gi(l, SOL_SOCKET, SO_ACCEPTCONN));
	(void)c;
}

SCEN(k_shutdown_listener, "K.82") {
	int l = listener4(P(0), 4);
	kv("shutdown", "%s", R(shutdown(l, SHUT_RD)));
	kv("tcp_state", "%s", tcp_state(l));
	kv("accept", "%s", R(accept(l, NULL, NULL)));
	kv("poll", "%s", pmask(pollnow(l)));
	int c = xsocket(AF_INET, SOCK_STREAM);
	kv("connect", "%s", R(connect4_to(c, "127.0.0.1", P(0))));
	kv("relisten", "%s", R(listen(l, 4)));
}

SCEN(k_accept_v6_listener_v6_client, "K.84") {
	int l = listener6("::", P(0), -1, 4);
	int c = xsocket(AF_INET6, SOCK_STREAM);
	connect6_to(c, "::1", P(0));
	waitfor(l, POLLIN, WAIT_MS);
	struct sockaddr_in6 a;
	socklen_t len = sizeof a;
	int s = accept(l, (void *)&a, &len);
	kv("accept", "%s", R(s));
	kv("addr", "%s", sa_str((void *)&a, len));
	kv("sockname", "%s", sockname(s));
}
