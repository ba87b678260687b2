// fork, dup and SCM_RIGHTS (architecture: "A socket is identified by the
// file behind the fd, never by (pid, fd): fork, dup and SCM_RIGHTS must
// keep working").

static void send_fd(int unix_sock, int fd) {
	char dummy = 'F';
	struct iovec iov = {&dummy, 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(unix_sock, &m, 0) != 1)
		fail("sendmsg SCM_RIGHTS");
}

static int recv_fd(int unix_sock) {
	char dummy;
	struct iovec iov = {&dummy, 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	if (recvmsg(unix_sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

// child_report runs f in a child whose stdout lines are part of this
// scenario's output, and reports the child's exit status.
static void child_status(pid_t pid) {
	int st = -1;
	waitpid(pid, &st, 0);
	kv("child_exit", "%d", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
}

SCEN(f_fork_child_uses_socket, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	pid_t pid = fork();
	if (pid == 0) {
		_exit(send(c, "from-child", 10, MSG_NOSIGNAL) == 10 ? 0 : 1);
	}
	child_status(pid);
	kv("peer_read", "%s", recv_str(s, 0));
	xsend(c, "from-parent");
	kv("peer_read2", "%s", recv_str(s, 0));
}

SCEN(f_fork_close_in_child_keeps_parent, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	pid_t pid = fork();
	if (pid == 0) {
		close(c);
		_exit(0);
	}
	child_status(pid);
	kv("peer_poll", "%s", pmask(pollnow(s)));
	xsend(c, "still-open");
	kv("peer_read", "%s", recv_str(s, 0));
}

SCEN(f_fork_child_accepts, "brief:fork K.83") {
	int l = listener4(P(0), 4);
	pid_t pid = fork();
	if (pid == 0) {
		int s = accept(l, NULL, NULL);
		if (s < 0)
			_exit(1);
		_exit(send(s, "accepted-by-child", 17, MSG_NOSIGNAL) == 17 ? 0 : 2);
	}
	int c = connect4(P(0));
	kv("read", "%s", recv_str(c, 0));
	child_status(pid);
}

SCEN(f_scm_rights_connected_socket, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		fail("socketpair");
	pid_t pid = fork();
	if (pid == 0) {
		close(sp[0]);
		close(c);
		int got = recv_fd(sp[1]);
		if (got < 0)
			_exit(1);
		if (send(got, "via-scm", 7, MSG_NOSIGNAL) != 7)
			_exit(2);
		char b[16] = {0};
		if (!(waitfor(got, POLLIN, WAIT_MS) & POLLIN) || recv(got, b, sizeof b, 0) != 5 ||
		    memcmp(b, "reply", 5))
			_exit(3);
		_exit(0);
	}
	close(sp[1]);
	send_fd(sp[0], c);
	close(c); // only the child's copy remains
	kv("peer_read", "%s", recv_str(s, 0));
	xsend(s, "reply");
	child_status(pid);
	waitfor(s, POLLRDHUP, WAIT_MS);
	kv("peer_after_child_exit", "%s", recv_str(s, 0));
}

SCEN(f_scm_rights_listener, "brief:fork") {
	int l = listener4(P(0), 4);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		fail("socketpair");
	pid_t pid = fork();
	if (pid == 0) {
		close(sp[0]);
		int got = recv_fd(sp[1]);
		if (got < 0)
			_exit(1);
		int s = accept(got, NULL, NULL);
		if (s < 0)
			_exit(2);
		_exit(send(s, "child-listener", 14, MSG_NOSIGNAL) == 14 ? 0 : 3);
	}
	close(sp[1]);
	send_fd(sp[0], l);
	close(l);
	int c = connect4(P(0));
	kv("read", "%s", recv_str(c, 0));
	child_status(pid);
}

SCEN(f_scm_rights_names_and_options, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	setint(c, IPPROTO_TCP, TCP_NODELAY, 1);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		fail("socketpair");
	send_fd(sp[0], c);
	int got = recv_fd(sp[1]);
	kv("received", "%d", got >= 0);
	kv("same_sockname", "%d", !strcmp(sockname(got), sockname(c)));
	kv("peername", "%s", peername(got));
	kv("nodelay", "%s", gi(got, IPPROTO_TCP, TCP_NODELAY));
	kv("tcp_state", "%s", tcp_state(got));
}

SCEN(f_dup2_and_fcntl_dupfd, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	int d = fcntl(c, F_DUPFD_CLOEXEC, 100);
	kv("dupfd", "%d", d >= 100);
	kv("dupfd_cloexec", "%d", !!(fcntl(d, F_GETFD) & FD_CLOEXEC));
	kv("dup2", "%s", R(dup2(c, 90)));
	close(c);
	send(90, "a", 1, MSG_NOSIGNAL);
	send(d, "b", 1, MSG_NOSIGNAL);
	waitfor(s, POLLIN, WAIT_MS);
	wait_outq_empty(d);
	kv("peer_read", "%s", recv_str(s, 0));
	fcntl(d, F_SETFL, O_NONBLOCK);
	kv("nonblock_shared_with_dup2", "%d", !!(fcntl(90, F_GETFL) & O_NONBLOCK));
}

SCEN(f_fcntl_nonblock_after_create, "A.3") {
	int c, s;
	tcp_pair(0, &c, &s);
	kv("recv_blocking_dontwait", "%s", N(recv(s, (char[4]){0}, 4, MSG_DONTWAIT)));
	kv("setfl", "%s", R(fcntl(s, F_SETFL, O_NONBLOCK)));
	kv("recv", "%s", N(recv(s, (char[4]){0}, 4, 0)));
	kv("ioctl_fionbio_off", "%s", R(ioctl(s, FIONBIO, &(int){0})));
	kv("flag_after_fionbio", "%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
}

SCEN(f_exec_inherits_socket, "brief:fork") {
	int c, s;
	tcp_pair(0, &c, &s);
	pid_t pid = fork();
	if (pid == 0) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "printf exec-ok >&%d", c);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	child_status(pid);
	kv("peer_read", "%s", recv_str(s, 0));
}

SCEN(f_cloexec_closed_on_exec, "A.3 brief:fork") {
	int l = listener4(P(0), 4);
	int c = xsocket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
	connect4_to(c, "127.0.0.1", P(0));
	int s = xaccept(l);
	pid_t pid = fork();
	if (pid == 0) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "exec 2>/dev/null; printf x >&%d", c);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	child_status(pid);
	kv("peer_read", "%s", N(recv(s, (char[4]){0}, 4, MSG_DONTWAIT)));
}
