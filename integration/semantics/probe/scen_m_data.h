// Section M: the send/receive paths, shutdown, resets, and socket options
// (brief: "Linux semantics that are easy to get wrong").

SCEN(m_peek_then_read, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "peekaboo");
	kv("peek", "%s", recv_str(s, MSG_PEEK));
	kv("peek_again", "%s", recv_str(s, MSG_PEEK));
	kv("read", "%s", recv_str(s, 0));
	kv("after", "%s", N(recv(s, (char[8]){0}, 8, MSG_DONTWAIT)));
}

SCEN(m_waitall_available, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "0123456789");
	xsend(c, "abcdefghij");
	waitfor(s, POLLIN, WAIT_MS);
	wait_outq_empty(c);
	char b[32];
	kv("recv_waitall", "%s", N(recv(s, b, 20, MSG_WAITALL)));
}

SCEN(m_waitall_eof_short, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "short");
	shutdown(c, SHUT_WR);
	waitfor(s, POLLRDHUP, WAIT_MS);
	char b[32];
	kv("recv_waitall", "%s", N(recv(s, b, 20, MSG_WAITALL)));
	kv("recv_again", "%s", N(recv(s, b, 20, MSG_WAITALL)));
}

SCEN(m_dontwait_eagain, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	char b[8];
	kv("recv_dontwait", "%s", N(recv(s, b, sizeof b, MSG_DONTWAIT)));
	kv("read_nonblock_flag_off", "%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
	fcntl(s, F_SETFL, O_NONBLOCK);
	kv("read_nonblock", "%s", N(read(s, b, sizeof b)));
	kv("recv_len0", "%s", N(recv(s, b, 0, 0)));
}

SCEN(m_fionread, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	int n = -1;
	kv("ioctl_empty", "%s", R(ioctl(s, FIONREAD, &n)));
	kv("fionread_empty", "%d", n);
	xsend(c, "twelve-bytes");
	waitfor(s, POLLIN, WAIT_MS);
	ioctl(s, FIONREAD, &n);
	kv("fionread", "%d", n);
	ioctl(s, SIOCINQ, &n);
	kv("siocinq", "%d", n);
	recv(s, (char[4]){0}, 4, MSG_DONTWAIT);
	ioctl(s, FIONREAD, &n);
	kv("fionread_after_4", "%d", n);
	int l = listener4(P(1), 1);
	kv("fionread_listener", "%s", R(ioctl(l, FIONREAD, &n)));
}

SCEN(m_siocoutq, "M.92") {
	int c, s;
	tcp_pair(0, &c, &s);
	int n = -1;
	kv("ioctl", "%s", R(ioctl(c, SIOCOUTQ, &n)));
	kv("outq_idle", "%d", n);
	xsend(c, "data");
	kv("drained", "%d", wait_outq_empty(c));
	int l = listener4(P(1), 1);
	kv("outq_listener", "%s", R(ioctl(l, SIOCOUTQ, &n)));
	kv("outqnsd", "%s", R(ioctl(c, SIOCOUTQNSD, &n)));
	kv("outqnsd_value", "%d", n);
}

SCEN(m_shut_wr_half_close, "brief:half-close L.89") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("shutdown", "%s", R(shutdown(c, SHUT_WR)));
	kv("peer_read", "%s", recv_str(s, 0));
	kv("peer_state", "%s", tcp_state(s));
	kv("peer_send", "%s", N(send(s, "back", 4, MSG_NOSIGNAL)));
	kv("read_after_own_shut_wr", "%s", recv_str(c, 0));
	kv("state", "%s", tcp_state(c));
	close(s);
	waitfor(c, POLLRDHUP, WAIT_MS);
	kv("read_eof", "%s", recv_str(c, 0));
	kv("state_after_peer_close", "%s", tcp_state(c));
}

SCEN(m_shut_rd, "L.89") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("shutdown", "%s", R(shutdown(c, SHUT_RD)));
	char b[8];
	kv("recv", "%s", N(recv(c, b, sizeof b, MSG_DONTWAIT)));
	kv("send", "%s", N(send(c, "x", 1, MSG_NOSIGNAL)));
	kv("peer_read", "%s", recv_str(s, 0));
	kv("poll", "%s", pmask(pollnow(c)));
	kv("state", "%s", tcp_state(c));
}

SCEN(m_shut_rdwr, "brief:half-close") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("shutdown", "%s", R(shutdown(c, SHUT_RDWR)));
	kv("peer_read", "%s", recv_str(s, 0));
	kv("send", "%s", N(send(c, "x", 1, MSG_NOSIGNAL)));
	kv("recv", "%s", N(recv(c, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("shutdown_again", "%s", R(shutdown(c, SHUT_RDWR)));
}

SCEN(m_shutdown_errors, "brief:half-close") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("unconnected", "%s", R(shutdown(fd, SHUT_WR)));
	int c, s;
	tcp_pair(0, &c, &s);
	kv("bad_how", "%s", R(shutdown(c, 7)));
	kv("negative_how", "%s", R(shutdown(c, -1)));
	kv("not_socket", "%s", R(shutdown(0 == c ? 1 : STDIN_FILENO, SHUT_WR)));
	kv("bad_fd", "%s", R(shutdown(999, SHUT_WR)));
}

SCEN(m_linger0_sends_rst, "brief:rst") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct linger lg = {1, 0};
	kv("setsockopt", "%s", R(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg)));
	struct linger got;
	socklen_t gl = sizeof got;
	getsockopt(c, SOL_SOCKET, SO_LINGER, &got, &gl);
	kv("linger_get", "%d/%d", got.l_onoff, got.l_linger);
	close(c);
	waitfor(s, POLLRDHUP, WAIT_MS);
	kv("peer_poll", "%s", pmask(pollnow(s)));
	kv("peer_read1", "%s", recv_str(s, 0));
	kv("peer_read2", "%s", recv_str(s, 0));
	kv("peer_state", "%s", tcp_state(s));
	kv("peer_so_error", "%s", so_error(s));
}

SCEN(m_rst_then_write_epipe_sigpipe, "brief:rst") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct linger lg = {1, 0};
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(c);
	waitfor(s, POLLRDHUP, WAIT_MS);
	kv("read", "%s", recv_str(s, 0));
	sigpipe_count = 0;
	kv("write", "%s", N(write(s, "x", 1)));
	kv("sigpipe", "%d", (int)sigpipe_count);
	kv("send_nosignal", "%s", N(send(s, "x", 1, MSG_NOSIGNAL)));
	kv("sigpipe_after_nosignal", "%d", (int)sigpipe_count);
}

SCEN(m_rst_write_before_read, "brief:rst") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct linger lg = {1, 0};
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(c);
	waitfor(s, POLLRDHUP, WAIT_MS);
	sigpipe_count = 0;
	kv("send_nosignal", "%s", N(send(s, "x", 1, MSG_NOSIGNAL)));
	kv("send_again", "%s", N(send(s, "x", 1, MSG_NOSIGNAL)));
	kv("read", "%s", recv_str(s, 0));
	kv("sigpipe", "%d", (int)sigpipe_count);
}

SCEN(m_close_with_unread_data_rsts, "L.89") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "unread");
	waitfor(s, POLLIN, WAIT_MS);
	close(s);
	waitfor(c, POLLRDHUP, WAIT_MS);
	kv("read", "%s", recv_str(c, 0));
	kv("state", "%s", tcp_state(c));
}

SCEN(m_write_after_shut_wr, "brief:half-close") {
	int c, s;
	tcp_pair(0, &c, &s);
	shutdown(c, SHUT_WR);
	sigpipe_count = 0;
	kv("write", "%s", N(write(c, "x", 1)));
	kv("sigpipe", "%d", (int)sigpipe_count);
	kv("send_nosignal", "%s", N(send(c, "x", 1, MSG_NOSIGNAL)));
	kv("sigpipe_after", "%d", (int)sigpipe_count);
}

SCEN(m_send_unconnected, "brief:rst") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	sigpipe_count = 0;
	kv("send", "%s", N(send(fd, "x", 1, 0)));
	kv("sigpipe", "%d", (int)sigpipe_count);
	kv("recv", "%s", N(recv(fd, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("write", "%s", N(write(fd, "x", 1)));
	kv("sigpipe_after_write", "%d", (int)sigpipe_count);
	int l = listener4(P(0), 1);
	kv("send_listener", "%s", N(send(l, "x", 1, MSG_NOSIGNAL)));
	kv("recv_listener", "%s", N(recv(l, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(m_sendto_with_addr_on_connected, "M.92") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct sockaddr_in other = sin4("127.0.0.9", 9);
	kv("sendto", "%s", N(sendto(c, "addr", 4, 0, (void *)&other, sizeof other)));
	kv("peer_read", "%s", recv_str(s, 0));
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct sockaddr_in dst = sin4("127.0.0.1", P(1));
	kv("sendto_unconnected", "%s", N(sendto(fd, "x", 1, MSG_NOSIGNAL, (void *)&dst, sizeof dst)));
}

SCEN(m_zero_length_send, "M.92") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("send0", "%s", N(send(c, "", 0, 0)));
	kv("write0", "%s", N(write(c, "", 0)));
	kv("peer_poll", "%s", pmask(pollnow(s)));
}

SCEN(m_readv_writev, "M.92 M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
	kv("writev", "%s", N(writev(c, w, 3)));
	waitfor(s, POLLIN, WAIT_MS);
	wait_outq_empty(c);
	char b1[3], b2[8];
	struct iovec r[2] = {{b1, 3}, {b2, 8}};
	kv("readv", "%s", N(readv(s, r, 2)));
	kv("split_ok", "%d", !memcmp(b1, "abc", 3) && !memcmp(b2, "def", 3));
}

SCEN(m_sendmsg_recvmsg_flags, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	xsend(c, "0123456789");
	waitfor(s, POLLIN, WAIT_MS);
	char b[4];
	struct iovec iov = {b, sizeof b};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	kv("recvmsg", "%s", N(recvmsg(s, &m, 0)));
	kv("msg_flags", "0x%x", m.msg_flags);
	kv("namelen", "%d", (int)m.msg_namelen);
	struct sockaddr_in from;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_name = &from;
	m.msg_namelen = sizeof from;
	kv("recvmsg_with_name", "%s", N(recvmsg(s, &m, MSG_TRUNC)));
	kv("namelen_tcp", "%d", (int)m.msg_namelen);
}

SCEN(m_oob_without_urgent, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("recv_oob", "%s", N(recv(s, (char[4]){0}, 4, MSG_OOB)));
	kv("send_oob", "%s", N(send(c, "u", 1, MSG_OOB)));
	waitfor(s, POLLPRI, WAIT_MS);
	kv("poll", "%s", pmask(pollnow(s)));
	char b;
	kv("recv_oob_after", "%s", N(recv(s, &b, 1, MSG_OOB)));
	kv("oob_byte", "%c", b);
}

SCEN(m_nodelay, "brief:options") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("default", "%s", gi(fd, IPPROTO_TCP, TCP_NODELAY));
	setint(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	kv("set1", "%s", gi(fd, IPPROTO_TCP, TCP_NODELAY));
	setint(fd, IPPROTO_TCP, TCP_NODELAY, 5);
	kv("set5", "%s", gi(fd, IPPROTO_TCP, TCP_NODELAY));
	setint(fd, IPPROTO_TCP, TCP_NODELAY, 0);
	kv("set0", "%s", gi(fd, IPPROTO_TCP, TCP_NODELAY));
	kv("cork_default", "%s", gi(fd, IPPROTO_TCP, TCP_CORK));
	int u = udp4(-1);
	kv("udp_nodelay", "%s", gi(u, IPPROTO_TCP, TCP_NODELAY));
}

SCEN(m_rcvbuf_sndbuf, "brief:options F.37") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("rcvbuf_default", "%s", gi(fd, SOL_SOCKET, SO_RCVBUF));
	kv("sndbuf_default", "%s", gi(fd, SOL_SOCKET, SO_SNDBUF));
	setint(fd, SOL_SOCKET, SO_RCVBUF, 10000);
	setint(fd, SOL_SOCKET, SO_SNDBUF, 10000);
	kv("rcvbuf_10000", "%s", gi(fd, SOL_SOCKET, SO_RCVBUF));
	kv("sndbuf_10000", "%s", gi(fd, SOL_SOCKET, SO_SNDBUF));
	setint(fd, SOL_SOCKET, SO_RCVBUF, 1);
	setint(fd, SOL_SOCKET, SO_SNDBUF, 1);
	kv("rcvbuf_min", "%s", gi(fd, SOL_SOCKET, SO_RCVBUF));
	kv("sndbuf_min", "%s", gi(fd, SOL_SOCKET, SO_SNDBUF));
	setint(fd, SOL_SOCKET, SO_RCVBUF, 1 << 30);
	kv("rcvbuf_huge", "%s", gi(fd, SOL_SOCKET, SO_RCVBUF));
	setint(fd, SOL_SOCKET, SO_RCVBUF, -5);
	kv("rcvbuf_negative", "%s", gi(fd, SOL_SOCKET, SO_RCVBUF));
}

SCEN(m_udp_buffers, "brief:options") {
	int u = udp4(-1);
	kv("rcvbuf_default", "%s", gi(u, SOL_SOCKET, SO_RCVBUF));
	kv("sndbuf_default", "%s", gi(u, SOL_SOCKET, SO_SNDBUF));
	setint(u, SOL_SOCKET, SO_RCVBUF, 4096);
	kv("rcvbuf_4096", "%s", gi(u, SOL_SOCKET, SO_RCVBUF));
}

SCEN(m_keepalive, "brief:options") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("default", "%s", gi(fd, SOL_SOCKET, SO_KEEPALIVE));
	setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	kv("set", "%s", gi(fd, SOL_SOCKET, SO_KEEPALIVE));
	kv("keepidle", "%s", gi(fd, IPPROTO_TCP, TCP_KEEPIDLE));
	kv("keepintvl", "%s", gi(fd, IPPROTO_TCP, TCP_KEEPINTVL));
	kv("keepcnt", "%s", gi(fd, IPPROTO_TCP, TCP_KEEPCNT));
	int z = 0;
	kv("keepidle_0", "%s", R(setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &z, sizeof z)));
	int big = 40000;
	kv("keepidle_40000", "%s", R(setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &big, sizeof big)));
	int c, s;
	tcp_pair(0, &c, &s);
	setint(c, SOL_SOCKET, SO_KEEPALIVE, 1);
	kv("connected_set", "%s", gi(c, SOL_SOCKET, SO_KEEPALIVE));
}

SCEN(m_socket_identity_options, "brief:options A.5") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	int l = listener4(P(0), 1);
	int u = udp4(-1);
	int v6 = xsocket(AF_INET6, SOCK_DGRAM);
	kv("tcp", "%s/%s/%s/%s", gi(fd, SOL_SOCKET, SO_TYPE), gi(fd, SOL_SOCKET, SO_DOMAIN),
	   gi(fd, SOL_SOCKET, SO_PROTOCOL), gi(fd, SOL_SOCKET, SO_ACCEPTCONN));
	kv("listener", "%s/%s/%s/%s", gi(l, SOL_SOCKET, SO_TYPE), gi(l, SOL_SOCKET, SO_DOMAIN),
	   gi(l, SOL_SOCKET, SO_PROTOCOL), gi(l, SOL_SOCKET, SO_ACCEPTCONN));
	kv("udp", "%s/%s/%s/%s", gi(u, SOL_SOCKET, SO_TYPE), gi(u, SOL_SOCKET, SO_DOMAIN),
	   gi(u, SOL_SOCKET, SO_PROTOCOL), gi(u, SOL_SOCKET, SO_ACCEPTCONN));
	kv("udp6", "%s/%s/%s", gi(v6, SOL_SOCKET, SO_TYPE), gi(v6, SOL_SOCKET, SO_DOMAIN),
	   gi(v6, SOL_SOCKET, SO_PROTOCOL));
	int one = 1;
	kv("set_so_type", "%s", R(setsockopt(fd, SOL_SOCKET, SO_TYPE, &one, sizeof one)));
}

SCEN(m_misc_option_defaults, "brief:options") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("reuseaddr", "%s", gi(fd, SOL_SOCKET, SO_REUSEADDR));
	kv("reuseport", "%s", gi(fd, SOL_SOCKET, SO_REUSEPORT));
	kv("rcvlowat", "%s", gi(fd, SOL_SOCKET, SO_RCVLOWAT));
	kv("sndlowat", "%s", gi(fd, SOL_SOCKET, SO_SNDLOWAT));
	kv("broadcast", "%s", gi(fd, SOL_SOCKET, SO_BROADCAST));
	kv("oobinline", "%s", gi(fd, SOL_SOCKET, SO_OOBINLINE));
	kv("ip_ttl", "%s", gi(fd, IPPROTO_IP, IP_TTL));
	kv("ip_tos", "%s", gi(fd, IPPROTO_IP, IP_TOS));
	kv("maxseg_unconnected", "%s", gi(fd, IPPROTO_TCP, TCP_MAXSEG));
	kv("quickack", "%s", gi(fd, IPPROTO_TCP, TCP_QUICKACK));
	struct linger lg;
	socklen_t ll = sizeof lg;
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &ll);
	kv("linger", "%d/%d", lg.l_onoff, lg.l_linger);
	struct timeval tv;
	socklen_t tl = sizeof tv;
	getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl);
	kv("rcvtimeo", "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
}

SCEN(m_option_errors, "brief:options") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	int v = 0;
	socklen_t len = sizeof v;
	kv("unknown_sol_socket", "%s", R(getsockopt(fd, SOL_SOCKET, 9999, &v, &len)));
	kv("unknown_tcp", "%s", R(getsockopt(fd, IPPROTO_TCP, 9999, &v, &len)));
	kv("unknown_level", "%s", R(getsockopt(fd, 9999, 1, &v, &len)));
	kv("set_short_len", "%s", R(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, 2)));
	kv("set_null", "%s", R(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, NULL, 4)));
	len = 0;
	kv("get_len0", "%s", R(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len)));
	kv("get_len0_out", "%d", (int)len);
	len = (socklen_t)-1;
	kv("get_len_negative", "%s", R(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len)));
	kv("v6_opt_on_v4", "%s", gi(fd, IPPROTO_IPV6, IPV6_V6ONLY));
	kv("maxseg_tiny", "%s", R(setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &(int){10}, sizeof(int))));
	kv("not_a_socket", "%s", R(getsockopt(STDERR_FILENO, SOL_SOCKET, SO_TYPE, &v, &len)));
}

SCEN(m_tcp_info_states, "A.2 B.7 K.84 L.87") {
	int l = xsocket(AF_INET, SOCK_STREAM);
	kv("fresh", "%s", tcp_state(l));
	xbind4(l, "127.0.0.1", P(0));
	kv("bound", "%s", tcp_state(l));
	listen(l, 4);
	kv("listening", "%s", tcp_state(l));
	int c = connect4(P(0));
	int s = xaccept(l);
	kv("client", "%s", tcp_state(c));
	kv("server", "%s", tcp_state(s));
	shutdown(c, SHUT_WR);
	waitfor(s, POLLRDHUP, WAIT_MS);
	wait_outq_empty(c);
	kv("client_after_shut_wr", "%s", tcp_state(c));
	kv("server_after_fin", "%s", tcp_state(s));
	close(s);
	waitfor(c, POLLRDHUP, WAIT_MS);
	kv("client_after_both", "%s", tcp_state(c));
}

SCEN(m_tcp_info_fields, "F.35 M.93") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	kv("getsockopt", "%s", R(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len)));
	kv("state", "%s", tcp_state_name(ti.tcpi_state));
	kv("options_ts", "%d", !!(ti.tcpi_options & TCPI_OPT_TIMESTAMPS));
	kv("options_sack", "%d", !!(ti.tcpi_options & TCPI_OPT_SACK));
	kv("options_wscale", "%d", !!(ti.tcpi_options & TCPI_OPT_WSCALE));
	kv("snd_mss", "%u", ti.tcpi_snd_mss);
	kv("advmss", "%u", ti.tcpi_advmss);
	kv("maxseg", "%s", gi(c, IPPROTO_TCP, TCP_MAXSEG));
	kv("short_len", "%s", R(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &(socklen_t){8})));
}

SCEN(m_getsockname_getpeername_enotconn, "brief:names C.22") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("peername_fresh", "%s", peername(fd));
	kv("sockname_fresh", "%s", sockname(fd));
	int l = listener4(P(0), 1);
	kv("peername_listener", "%s", peername(l));
	struct sockaddr_in a;
	socklen_t len = 2;
	kv("sockname_short_buf", "%s", R(getsockname(l, (void *)&a, &len)));
	kv("sockname_short_len", "%d", (int)len);
	len = (socklen_t)-1;
	kv("sockname_negative_len", "%s", R(getsockname(l, (void *)&a, &len)));
	kv("sockname_null", "%s", R(getsockname(l, NULL, &(socklen_t){16})));
}

SCEN(m_names_after_peer_close, "brief:names") {
	int c, s;
	tcp_pair(0, &c, &s);
	close(s);
	waitfor(c, POLLRDHUP, WAIT_MS);
	kv("peername_close_wait", "%s", peername(c));
	struct linger lg = {1, 0};
	int c2, s2;
	tcp_pair(1, &c2, &s2);
	setsockopt(s2, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(s2);
	waitfor(c2, POLLRDHUP, WAIT_MS);
	kv("peername_after_rst", "%s", peername(c2));
	kv("sockname_after_rst", "%s", sockname(c2));
}

SCEN(m_rcvtimeo_recv, "M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	struct timeval tv = {0, 100000};
	kv("set", "%s", R(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)));
	struct timeval got;
	socklen_t gl = sizeof got;
	getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &gl);
	kv("get", "%ld.%06ld", (long)got.tv_sec, (long)got.tv_usec);
	kv("recv", "%s", N(recv(s, (char[4]){0}, 4, 0)));
	struct timeval bad = {0, 2000000};
	kv("set_bad_usec", "%s", R(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad)));
}

SCEN(m_sndtimeo_full_buffer, "M.97") {
	int c, s;
	tcp_pair(0, &c, &s);
	setint(c, SOL_SOCKET, SO_SNDBUF, 4096);
	setint(s, SOL_SOCKET, SO_RCVBUF, 4096);
	struct timeval tv = {0, 100000};
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	static char big[1 << 16];
	long total = 0;
	int last = 0;
	for (int i = 0; i < 200; i++) {
		ssize_t n = send(c, big, sizeof big, MSG_NOSIGNAL);
		if (n < 0) {
			last = errno;
			break;
		}
		total += n;
	}
	kv("stopped_with", "%s", ename(last));
	kv("poll_full", "%s", pmask(pollnow(c)));
	kv("nonblock_send", "%s", N(send(c, big, 1, MSG_DONTWAIT | MSG_NOSIGNAL)));
	kv("sent_something", "%d", total > 0);
}

SCEN(m_large_transfer_intact, "M.92 M.95") {
	int c, s;
	tcp_pair(0, &c, &s);
	static unsigned char out[1 << 20], in[1 << 20];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 11));
	pid_t pid = fork();
	if (pid == 0) {
		size_t off = 0;
		while (off < sizeof out) {
			ssize_t n = send(c, out + off, sizeof out - off, MSG_NOSIGNAL);
			if (n <= 0)
				_exit(1);
			off += n;
		}
		shutdown(c, SHUT_WR);
		_exit(0);
	}
	close(c);
	size_t got = 0;
	for (;;) {
		if (!(waitfor(s, POLLIN, 10000) & (POLLIN | POLLHUP | POLLERR)))
			break;
		ssize_t n = recv(s, in + got, sizeof in - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	int st = -1;
	waitpid(pid, &st, 0);
	kv("bytes", "%zu", got);
	kv("intact", "%d", got == sizeof out && !memcmp(in, out, got));
	kv("sender_ok", "%d", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

SCEN(m_maxseg_loopback, "F.35 M.93") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("client", "%s", gi(c, IPPROTO_TCP, TCP_MAXSEG));
	kv("server", "%s", gi(s, IPPROTO_TCP, TCP_MAXSEG));
	int l = xsocket(AF_INET, SOCK_STREAM);
	setint(l, IPPROTO_TCP, TCP_MAXSEG, 1000);
	kv("set_unconnected", "%s", gi(l, IPPROTO_TCP, TCP_MAXSEG));
	xbind4(l, "127.0.0.1", P(1));
	listen(l, 1);
	int c2 = connect4(P(1));
	int s2 = xaccept(l);
	kv("client_to_clamped", "%s", gi(c2, IPPROTO_TCP, TCP_MAXSEG));
	kv("clamped_server", "%s", gi(s2, IPPROTO_TCP, TCP_MAXSEG));
}

SCEN(m_dup_keeps_connection, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	int d = dup(c);
	close(c);
	kv("peer_poll_after_close_of_one", "%s", pmask(pollnow(s)));
	xsend(d, "via-dup");
	kv("peer_read", "%s", recv_str(s, 0));
	kv("sockname_dup", "%s", sockname(d));
	close(d);
	waitfor(s, POLLRDHUP, WAIT_MS);
	kv("peer_read_after_last_close", "%s", recv_str(s, 0));
}
