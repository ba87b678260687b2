// UDP (brief: "UDP: connected and unconnected, sendto/recvfrom with
// addresses, sendmmsg/recvmmsg, MSG_PEEK, MSG_TRUNC").

static int sendto4(int fd, const void *buf, size_t n, const char *ip, int port) {
	struct sockaddr_in a = sin4(ip, port);
	return sendto(fd, buf, n, 0, (void *)&a, sizeof a);
}

// recvfrom_str receives one datagram (waiting for it) and reports length,
// content and source address.
static void recvfrom_kv(int fd, const char *key) {
	char b[256];
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	memset(&from, 0, sizeof from);
	waitfor(fd, POLLIN, WAIT_MS);
	ssize_t n = recvfrom(fd, b, sizeof b - 1, MSG_DONTWAIT, (void *)&from, &fl);
	if (n < 0) {
		kv(key, "%s", ename(errno));
		return;
	}
	b[n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (b[i] <= ' ' || b[i] > '~' || b[i] == '=')
			b[i] = '.';
	kv(key, "%zd:%s:from=%s", n, b, sa_str((void *)&from, fl));
}

SCEN(u_unconnected_sendto_recvfrom, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	kv("sendto", "%s", N(sendto4(a, "hello", 5, "127.0.0.1", P(1))));
	recvfrom_kv(b, "recv");
	kv("reply", "%s", N(sendto4(b, "world", 5, "127.0.0.1", P(0))));
	recvfrom_kv(a, "recv_reply");
	kv("peername", "%s", peername(a));
}

SCEN(u_recvfrom_addrlen, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	sendto4(a, "x", 1, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	unsigned char buf[16];
	memset(buf, 0xee, sizeof buf);
	socklen_t len = 4;
	char d[4];
	kv("recvfrom", "%s", N(recvfrom(b, d, sizeof d, 0, (void *)buf, &len)));
	kv("addrlen", "%d", (int)len);
	kv("byte4_untouched", "%d", buf[4] == 0xee);
	sendto4(a, "y", 1, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	kv("recvfrom_null_addr", "%s", N(recvfrom(b, d, sizeof d, 0, NULL, NULL)));
}

SCEN(u_connected_send_and_filter, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1)), other = udp4(P(2));
	kv("connect", "%s", R(connect4_to(a, "127.0.0.1", P(1))));
	kv("sockname", "%s", sockname(a));
	kv("peername", "%s", peername(a));
	kv("send", "%s", N(send(a, "conn", 4, 0)));
	recvfrom_kv(b, "peer_recv");
	sendto4(other, "stranger", 8, "127.0.0.1", P(0));
	sendto4(b, "friend", 6, "127.0.0.1", P(0));
	recvfrom_kv(a, "recv1");
	kv("recv2", "%s", N(recv(a, (char[16]){0}, 16, MSG_DONTWAIT)));
}

SCEN(u_connected_sendto_other, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1)), c = udp4(P(2));
	connect4_to(a, "127.0.0.1", P(1));
	kv("sendto_other", "%s", N(sendto4(a, "other", 5, "127.0.0.1", P(2))));
	recvfrom_kv(c, "other_recv");
	kv("sendto_null", "%s", N(sendto(a, "n", 1, 0, NULL, 0)));
	recvfrom_kv(b, "peer_recv");
}

SCEN(u_connect_changes_peer, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1)), c = udp4(P(2));
	connect4_to(a, "127.0.0.1", P(1));
	kv("reconnect", "%s", R(connect4_to(a, "127.0.0.1", P(2))));
	kv("peername", "%s", peername(a));
	send(a, "x", 1, 0);
	recvfrom_kv(c, "new_peer_recv");
	kv("old_peer", "%s", N(recv(b, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(u_msg_trunc, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	sendto4(a, "0123456789", 10, "127.0.0.1", P(1));
	sendto4(a, "abcdefghij", 10, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	char buf[4];
	kv("recv_small", "%s", N(recv(b, buf, 4, 0)));
	kv("recv_trunc_flag", "%s", N(recv(b, buf, 4, MSG_TRUNC)));
	kv("next_empty", "%s", N(recv(b, buf, 4, MSG_DONTWAIT)));
	sendto4(a, "klmnopqrst", 10, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	struct iovec iov = {buf, 4};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	kv("recvmsg", "%s", N(recvmsg(b, &m, 0)));
	kv("msg_flags_trunc", "%d", !!(m.msg_flags & MSG_TRUNC));
}

SCEN(u_msg_peek, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	sendto4(a, "first", 5, "127.0.0.1", P(1));
	sendto4(a, "second", 6, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	char buf[16] = {0};
	kv("peek", "%s", N(recv(b, buf, sizeof buf, MSG_PEEK)));
	kv("peek_data", "%.5s", buf);
	kv("peek_trunc", "%s", N(recv(b, buf, 2, MSG_PEEK | MSG_TRUNC)));
	kv("recv1", "%s", N(recv(b, buf, sizeof buf, 0)));
	kv("recv2", "%s", N(recv(b, buf, sizeof buf, MSG_DONTWAIT)));
	kv("recv2_data", "%.6s", buf);
}

SCEN(u_fionread_first_datagram, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	int n = -1;
	ioctl(b, FIONREAD, &n);
	kv("empty", "%d", n);
	sendto4(a, "abc", 3, "127.0.0.1", P(1));
	sendto4(a, "defghij", 7, "127.0.0.1", P(1));
	waitfor(b, POLLIN, WAIT_MS);
	for (int i = 0; i < 1000 && n != 3; i++)
		ioctl(b, FIONREAD, &n);
	ioctl(b, FIONREAD, &n);
	kv("fionread", "%d", n);
	ioctl(b, SIOCOUTQ, &n);
	kv("outq", "%d", n);
}

SCEN(u_zero_length_datagram, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	kv("sendto0", "%s", N(sendto4(a, "", 0, "127.0.0.1", P(1))));
	int ev = waitfor(b, POLLIN, WAIT_MS);
	kv("poll", "%s", pmask(ev));
	int n = -1;
	ioctl(b, FIONREAD, &n);
	kv("fionread", "%d", n);
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	kv("recvfrom", "%s", N(recvfrom(b, (char[4]){0}, 4, MSG_DONTWAIT, (void *)&from, &fl)));
	kv("from", "%s", sa_str((void *)&from, fl));
	kv("again", "%s", N(recv(b, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(u_econnrefused_connected, "brief:udp C.20") {
	int a = udp4(P(0));
	connect4_to(a, "127.0.0.1", P(1));
	kv("send", "%s", N(send(a, "x", 1, 0)));
	kv("wait", "%s", pmask(waitfor(a, POLLIN, WAIT_MS)));
	kv("poll", "%s", pmask(pollnow(a)));
	kv("recv", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("recv_again", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
	send(a, "y", 1, 0);
	waitfor(a, POLLIN, WAIT_MS);
	kv("send_after_icmp", "%s", N(send(a, "z", 1, 0)));
	kv("so_error", "%s", so_error(a));
}

SCEN(u_econnrefused_so_error, "brief:udp") {
	int a = udp4(P(0));
	connect4_to(a, "127.0.0.1", P(1));
	send(a, "x", 1, 0);
	waitfor(a, POLLIN, WAIT_MS);
	kv("so_error", "%s", so_error(a));
	kv("so_error_again", "%s", so_error(a));
	kv("recv", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(u_unconnected_no_econnrefused, "brief:udp") {
	int a = udp4(P(0));
	kv("sendto", "%s", N(sendto4(a, "x", 1, "127.0.0.1", P(1))));
	kv("wait", "%s", pmask(waitfor(a, POLLIN, 200)));
	kv("recv", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("so_error", "%s", so_error(a));
}

SCEN(u_edestaddrreq, "brief:udp") {
	int a = udp4(-1);
	kv("send", "%s", N(send(a, "x", 1, 0)));
	kv("write", "%s", N(write(a, "x", 1)));
	kv("sendto_null", "%s", N(sendto(a, "x", 1, 0, NULL, 0)));
	kv("sockname_after", "%s", sockname(a));
	kv("recv_unbound", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
}

SCEN(u_emsgsize, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	setint(b, SOL_SOCKET, SO_RCVBUF, 1 << 20);
	static char big[70000];
	kv("send_65507", "%s", N(sendto4(a, big, 65507, "127.0.0.1", P(1))));
	kv("send_65508", "%s", N(sendto4(a, big, 65508, "127.0.0.1", P(1))));
	kv("send_70000", "%s", N(sendto4(a, big, 70000, "127.0.0.1", P(1))));
	waitfor(b, POLLIN, WAIT_MS);
	kv("recv", "%s", N(recv(b, big, sizeof big, MSG_DONTWAIT)));
	int c = xsocket(AF_INET6, SOCK_DGRAM);
	struct sockaddr_in6 d6 = sin6("::1", P(2));
	kv("send6_65528", "%s", N(sendto(c, big, 65528, 0, (void *)&d6, sizeof d6)));
}

SCEN(u_sendmmsg_recvmmsg, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	struct sockaddr_in dst = sin4("127.0.0.1", P(1));
	char *payload[3] = {"one", "three", "fiftyfive"};
	struct mmsghdr out[3];
	struct iovec oiov[3];
	memset(out, 0, sizeof out);
	for (int i = 0; i < 3; i++) {
		oiov[i].iov_base = payload[i];
		oiov[i].iov_len = strlen(payload[i]);
		out[i].msg_hdr.msg_iov = &oiov[i];
		out[i].msg_hdr.msg_iovlen = 1;
		out[i].msg_hdr.msg_name = &dst;
		out[i].msg_hdr.msg_namelen = sizeof dst;
	}
	kv("sendmmsg", "%s", N(sendmmsg(a, out, 3, 0)));
	kv("msg_len", "%u/%u/%u", out[0].msg_len, out[1].msg_len, out[2].msg_len);
	waitfor(b, POLLIN, WAIT_MS);
	struct mmsghdr in[4];
	struct iovec iiov[4];
	char bufs[4][16];
	struct sockaddr_in from[4];
	memset(in, 0, sizeof in);
	for (int i = 0; i < 4; i++) {
		iiov[i].iov_base = bufs[i];
		iiov[i].iov_len = sizeof bufs[i];
		in[i].msg_hdr.msg_iov = &iiov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &from[i];
		in[i].msg_hdr.msg_namelen = sizeof from[i];
	}
	// Blocking with vlen 3: returns once all three datagrams are queued.
	struct timespec limit = {3, 0};
	int n = recvmmsg(b, in, 3, 0, &limit);
	kv("recvmmsg", "%s", N(n));
	for (int i = 0; i < n && i < 4; i++) {
		char k[16];
		snprintf(k, sizeof k, "m%d", i);
		kv(k, "%u:%.*s:%s", in[i].msg_len, (int)in[i].msg_len, bufs[i],
		   sa_str((void *)&from[i], in[i].msg_hdr.msg_namelen));
	}
	kv("recvmmsg_empty", "%s", N(recvmmsg(b, in, 4, MSG_DONTWAIT, NULL)));
}

SCEN(u_sendmmsg_partial_error, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	struct sockaddr_in dst = sin4("127.0.0.1", P(1));
	static char big[70000];
	struct mmsghdr out[2];
	struct iovec oiov[2] = {{"ok", 2}, {big, sizeof big}};
	memset(out, 0, sizeof out);
	for (int i = 0; i < 2; i++) {
		out[i].msg_hdr.msg_iov = &oiov[i];
		out[i].msg_hdr.msg_iovlen = 1;
		out[i].msg_hdr.msg_name = &dst;
		out[i].msg_hdr.msg_namelen = sizeof dst;
	}
	kv("sendmmsg", "%s", N(sendmmsg(a, out, 2, 0)));
	kv("sendmmsg_first_bad", "%s", N(sendmmsg(a, out + 1, 1, 0)));
	recvfrom_kv(b, "recv");
}

SCEN(u_broadcast_eacces, "brief:udp") {
	int a = udp4(-1);
	kv("limited_broadcast", "%s", N(sendto4(a, "b", 1, "255.255.255.255", P(0))));
	setint(a, SOL_SOCKET, SO_BROADCAST, 1);
	kv("so_broadcast", "%s", gi(a, SOL_SOCKET, SO_BROADCAST));
	kv("limited_broadcast_allowed", "%s", N(sendto4(a, "b", 1, "255.255.255.255", P(0))));
	int t = xsocket(AF_INET, SOCK_STREAM);
	kv("tcp_set_broadcast", "%s", R(setsockopt(t, SOL_SOCKET, SO_BROADCAST, &(int){1}, sizeof(int))));
}

SCEN(u_dual_stack_v4_sender, "brief:v6only brief:udp") {
	int r = xsocket(AF_INET6, SOCK_DGRAM);
	struct sockaddr_in6 any = sin6("::", P(0));
	kv("bind", "%s", R(bind(r, (void *)&any, sizeof any)));
	int s = udp4(-1);
	sendto4(s, "mapped", 6, "127.0.0.1", P(0));
	recvfrom_kv(r, "recv");
	int s6 = xsocket(AF_INET6, SOCK_DGRAM);
	struct sockaddr_in6 lo = sin6("::1", P(0));
	sendto(s6, "native", 6, 0, (void *)&lo, sizeof lo);
	recvfrom_kv(r, "recv6");
}

SCEN(u_v6only_drops_v4, "brief:v6only brief:udp") {
	int r = xsocket(AF_INET6, SOCK_DGRAM);
	setint(r, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	struct sockaddr_in6 any = sin6("::", P(0));
	bind(r, (void *)&any, sizeof any);
	int s = udp4(-1);
	kv("sendto", "%s", N(sendto4(s, "v4", 2, "127.0.0.1", P(0))));
	kv("wait_sender_err", "%s", pmask(waitfor(s, POLLIN, 200)));
	kv("receiver", "%s", N(recv(r, (char[4]){0}, 4, MSG_DONTWAIT)));
	int v6to4 = xsocket(AF_INET6, SOCK_DGRAM);
	setint(v6to4, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	struct sockaddr_in6 m = sin6("::ffff:127.0.0.1", P(1));
	kv("v6only_send_mapped", "%s", N(sendto(v6to4, "x", 1, 0, (void *)&m, sizeof m)));
}

SCEN(u_shutdown, "brief:udp") {
	int a = udp4(P(0)), b = udp4(P(1));
	kv("unconnected", "%s", R(shutdown(a, SHUT_RD)));
	connect4_to(a, "127.0.0.1", P(1));
	kv("shut_rd", "%s", R(shutdown(a, SHUT_RD)));
	kv("recv_dontwait", "%s", N(recv(a, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("recv", "%s", N(recv(a, (char[4]){0}, 4, 0)));
	kv("poll", "%s", pmask(pollnow(a)));
	kv("shut_wr", "%s", R(shutdown(a, SHUT_WR)));
	kv("send", "%s", N(send(a, "x", 1, MSG_NOSIGNAL)));
	(void)b;
}

SCEN(u_connect_port0, "brief:udp") {
	int a = udp4(-1);
	kv("connect", "%s", R(connect4_to(a, "127.0.0.1", 0)));
	kv("peername", "%s", peername(a));
	kv("send", "%s", N(send(a, "x", 1, 0)));
	kv("sendto_port0", "%s", N(sendto4(a, "x", 1, "127.0.0.1", 0)));
}

SCEN(u_sendto_bad_args, "brief:udp") {
	int a = udp4(-1);
	struct sockaddr_in d = sin4("127.0.0.1", P(0));
	kv("short_len", "%s", N(sendto(a, "x", 1, 0, (void *)&d, 8)));
	struct sockaddr_in6 d6 = sin6("::1", P(0));
	kv("v6_addr_on_v4", "%s", N(sendto(a, "x", 1, 0, (void *)&d6, sizeof d6)));
	d.sin_family = AF_UNSPEC;
	kv("unspec_family", "%s", N(sendto(a, "x", 1, 0, (void *)&d, sizeof d)));
	kv("bad_buffer", "%s", N(sendto4(a, (void *)8, 4, "127.0.0.1", P(0))));
}

SCEN(u_multicast_loopback_send, "brief:udp C.16") {
	int a = udp4(-1);
	kv("sendto_multicast", "%s", N(sendto4(a, "m", 1, "224.0.0.1", P(0))));
	kv("multicast_ttl", "%s", gi(a, IPPROTO_IP, IP_MULTICAST_TTL));
	kv("multicast_loop", "%s", gi(a, IPPROTO_IP, IP_MULTICAST_LOOP));
}
