// probe: the differential socket-semantics suite (issue 3 item 1).
//
// One C program, run unchanged on the Linux kernel (inside a fresh network
// namespace) and under `netprov run` with each provider; the outputs must be
// identical. Each scenario prints deterministic "name: key=value ..." lines
// (see probe_core.h for the normalisation rules). The second argument of
// SCEN is the scenario's reference in shared/spec/linux-tcp-behaviors.md
// (A.1, C.18, ...) or "brief" for the architecture brief's list ("Linux
// semantics that are easy to get wrong").
//
// Usage:
//   probe [-peer IP -self IP] [-only NAME]   run the main group
//   probe -narrow PORT                       run the narrow group (the
//                                            namespace's ip_local_port_range
//                                            is the single port PORT)
//   probe -serve IP                          kernel peer services (see serve.h)
//   probe -list                              name, group and reference
#include "probe_core.h"

#include <sys/prctl.h>

#include "scen_a_socket.h"
#include "scen_b_bind_listen.h"
#include "scen_c_connect.h"
#include "scen_d_ephemeral.h"
#include "scen_k_accept.h"
#include "scen_m_data.h"
#include "scen_u_udp.h"
#include "scen_p_poll.h"
#include "scen_s_signals.h"
#include "scen_f_fork.h"
#include "serve.h"
#include "scen_r_peer.h"

static void run_one(int idx) {
	struct scenario *s = &scenarios[idx];
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("%s: PROBE-ERROR fork errno=%d\n", s->name, errno);
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL); // no orphans if the probe is killed
		cur_name = s->name;
		cur_port = PORT_BASE + idx * PORTS_PER_SCENARIO;
		set_handler(SIGPIPE, on_sigpipe, SA_RESTART);
		s->fn();
		if (linelen > 0)
			emit();
		fflush(stdout);
		_exit(0);
	}
	// Bounded wait: a scenario that hangs is reported, not waited for. The
	// child is not reaped here (WNOWAIT): while it is a zombie its pid, the
	// id of its process group, cannot be given to another process.
	int timed_out = 0;
	for (int waited = 0;; waited++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			printf("%s: PROBE-ERROR waitid errno=%d\n", s->name, errno);
			break;
		}
		if (si.si_pid == pid)
			break;
		if (waited >= SCENARIO_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			timed_out = 1;
			break;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	// Kill the grandchildren a scenario may have left behind, then reap.
	// (Killing the group after reaping could hit an unrelated process
	// group that got the same id: pid_max is 32768 on these machines.)
	kill(-pid, SIGKILL);
	int st;
	if (waitpid(pid, &st, 0) == pid && !timed_out && WIFSIGNALED(st))
		printf("%s: PROBE-ERROR killed by signal %d\n", s->name, WTERMSIG(st));
	if (timed_out)
		printf("%s: PROBE-ERROR timeout after %d ms\n", s->name, SCENARIO_TIMEOUT_MS);
	fflush(stdout);
}

int main(int argc, char **argv) {
	const char *only = NULL, *serve_ip = NULL;
	int list = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-list")) {
			list = 1;
		} else if (!strcmp(a, "-peer") && v) {
			if (inet_pton(AF_INET, v, &peer4) != 1)
				return 2;
			have_peer = 1;
			i++;
		} else if (!strcmp(a, "-self") && v) {
			if (inet_pton(AF_INET, v, &self4) != 1)
				return 2;
			i++;
		} else if (!strcmp(a, "-narrow") && v) {
			narrow_port = atoi(v);
			i++;
		} else if (!strcmp(a, "-only") && v) {
			only = v;
			i++;
		} else if (!strcmp(a, "-serve") && v) {
			serve_ip = v;
			i++;
		} else {
			fprintf(stderr, "usage: probe [-peer IP -self IP] [-narrow PORT] [-only NAME] | -serve IP | -list\n");
			return 2;
		}
	}
	if (serve_ip)
		return serve(serve_ip);
	if (list) {
		for (int i = 0; i < nscenarios; i++)
			printf("%s %s %s\n", scenarios[i].name, scenarios[i].group, scenarios[i].ref);
		return 0;
	}
	const char *group = narrow_port ? "narrow" : "main";
	int ran = 0;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (int i = 0; i < nscenarios; i++) {
		if (strcmp(scenarios[i].group, group))
			continue;
		if (only && strcmp(scenarios[i].name, only))
			continue;
		if (!have_peer && !strncmp(scenarios[i].name, "r-", 2))
			continue; // peer scenarios need -peer/-self
		run_one(i);
		ran++;
	}
	printf("# ran %d scenarios (group %s)\n", ran, group);
	return 0;
}
