// Section A: socket() creation.

// a_try creates a socket and reports the result and, on success, what kind
// of socket it is.
static void a_try(int family, int type, int proto) {
	int fd = socket(family, type, proto);
	kv("socket", "%s", R(fd));
	if (fd >= 0) {
		kv("so_type", "%s", gi(fd, SOL_SOCKET, SO_TYPE));
		kv("so_protocol", "%s", gi(fd, SOL_SOCKET, SO_PROTOCOL));
		kv("so_domain", "%s", gi(fd, SOL_SOCKET, SO_DOMAIN));
		close(fd);
	}
}

SCEN(a_inet_stream_0, "A.1") { a_try(AF_INET, SOCK_STREAM, 0); }
SCEN(a_inet_stream_tcp, "A.1") { a_try(AF_INET, SOCK_STREAM, IPPROTO_TCP); }
SCEN(a_inet_stream_udp, "A.1") { a_try(AF_INET, SOCK_STREAM, IPPROTO_UDP); }
SCEN(a_inet_stream_icmp, "A.1") { a_try(AF_INET, SOCK_STREAM, IPPROTO_ICMP); }
SCEN(a_inet_dgram_0, "A.1") { a_try(AF_INET, SOCK_DGRAM, 0); }
SCEN(a_inet_dgram_udp, "A.1") { a_try(AF_INET, SOCK_DGRAM, IPPROTO_UDP); }
SCEN(a_inet_dgram_tcp, "A.1") { a_try(AF_INET, SOCK_DGRAM, IPPROTO_TCP); }
SCEN(a_inet_dgram_icmp_ping_group, "A.1") { a_try(AF_INET, SOCK_DGRAM, IPPROTO_ICMP); }
SCEN(a_inet_raw_0, "A.1") { a_try(AF_INET, SOCK_RAW, 0); }
SCEN(a_inet_type_zero, "A.1") { a_try(AF_INET, 0, 0); }
SCEN(a_inet_type_out_of_range, "A.1") { a_try(AF_INET, 99, 0); }
SCEN(a_inet_type_unknown_flag, "A.3") { a_try(AF_INET, SOCK_STREAM | 0x100, 0); }
SCEN(a_inet_proto_negative, "A.1") { a_try(AF_INET, SOCK_STREAM, -1); }
SCEN(a_inet_proto_too_big, "A.1") { a_try(AF_INET, SOCK_STREAM, 1000); }
SCEN(a_family_unknown, "A.1") { a_try(250, SOCK_STREAM, 0); }
SCEN(a_family_negative, "A.1") { a_try(-1, SOCK_STREAM, 0); }
SCEN(a_inet6_stream_0, "A.1") { a_try(AF_INET6, SOCK_STREAM, 0); }
SCEN(a_inet6_dgram_0, "A.1") { a_try(AF_INET6, SOCK_DGRAM, 0); }
SCEN(a_inet6_stream_udp, "A.1") { a_try(AF_INET6, SOCK_STREAM, IPPROTO_UDP); }
SCEN(a_inet6_dgram_tcp, "A.1") { a_try(AF_INET6, SOCK_DGRAM, IPPROTO_TCP); }
SCEN(a_inet6_raw_0, "A.1") { a_try(AF_INET6, SOCK_RAW, 0); }

SCEN(a_flags_nonblock, "A.3") {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fail("socket");
	kv("o_nonblock", "%d", !!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	kv("fd_cloexec", "%d", !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	int fd2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd2 < 0)
		fail("socket");
	kv("dgram_o_nonblock", "%d", !!(fcntl(fd2, F_GETFL) & O_NONBLOCK));
	kv("dgram_fd_cloexec", "%d", !!(fcntl(fd2, F_GETFD) & FD_CLOEXEC));
	kv("so_type", "%s", gi(fd, SOL_SOCKET, SO_TYPE));
}

SCEN(a_flags_plain, "A.3") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("o_nonblock", "%d", !!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	kv("fd_cloexec", "%d", !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	kv("accmode_rdwr", "%d", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
}

SCEN(a_fstat_is_socket, "A.4") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	struct stat st;
	kv("fstat", "%s", R(fstat(fd, &st)));
	kv("s_issock", "%d", S_ISSOCK(st.st_mode));
	kv("perm", "%o", st.st_mode & 0777);
	kv("uid_is_euid", "%d", st.st_uid == geteuid());
}

SCEN(a_proc_fd_link, "A.4") {
	int a = xsocket(AF_INET, SOCK_STREAM), b = xsocket(AF_INET, SOCK_DGRAM);
	char pa[64], pb[64], la[128] = {0}, lb[128] = {0};
	snprintf(pa, sizeof pa, "/proc/self/fd/%d", a);
	snprintf(pb, sizeof pb, "/proc/self/fd/%d", b);
	kv("readlink", "%s", R(readlink(pa, la, sizeof la - 1)));
	readlink(pb, lb, sizeof lb - 1);
	kv("prefix", "%d", !strncmp(la, "socket:[", 8) && !strncmp(lb, "socket:[", 8));
	kv("distinct", "%d", strcmp(la, lb) != 0);
	struct stat sa, sb;
	fstat(a, &sa);
	fstat(b, &sb);
	kv("distinct_ino", "%d", sa.st_ino != sb.st_ino);
}

SCEN(a_initial_state_close, "A.2") {
	int fd = xsocket(AF_INET, SOCK_STREAM);
	kv("tcp_state", "%s", tcp_state(fd));
	kv("so_error", "%s", so_error(fd));
	kv("acceptconn", "%s", gi(fd, SOL_SOCKET, SO_ACCEPTCONN));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
}

SCEN(a_inet6_initial_names, "A.2") {
	int fd = xsocket(AF_INET6, SOCK_STREAM);
	kv("tcp_state", "%s", tcp_state(fd));
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	kv("v6only", "%s", gi(fd, IPPROTO_IPV6, IPV6_V6ONLY));
}

SCEN(a_udp_initial_names, "A.2") {
	int fd = xsocket(AF_INET, SOCK_DGRAM);
	kv("sockname", "%s", sockname(fd));
	kv("peername", "%s", peername(fd));
	kv("so_error", "%s", so_error(fd));
	kv("tcp_info", "%s", tcp_state(fd));
}
