/* The trainer of the cluster tests: keeps many trajectories in flight (open, steps, close,
 * open again) against one rolloutd for a fixed time, then drains, and accounts for every
 * request id: completed once, never completed (lost) or completed twice (duplicated).
 *
 * Each step runs `uname -n` by default; pools give their sandboxes their own hostname, so
 * the output says which pool ran the step, and the sandbox's later requests are logged
 * with that pool. One line per completion goes to --log (for the harness, which knows when
 * the faults happened); the last line on stdout is a JSON summary. Times are
 * CLOCK_MONOTONIC milliseconds, the clock Python's time.monotonic() reads. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rollout/rollout.h"

enum { NEED_NONE, NEED_OPEN, NEED_EXEC, NEED_CLOSE };
enum { K_OPEN, K_EXEC, K_CLOSE, K_COUNT };
static const char *const kind_name[K_COUNT] = { "open", "exec", "close" };
enum { ST_MAX = 32 };

struct slot {
	int need;
	uint64_t sandbox;
	int pool; /* learnt from a step's output; -1 until then */
	int steps;
	double not_before; /* retry time after a failed open */
};

struct req {
	double t_sub;
	uint32_t slot;
	uint8_t kind;
	uint8_t done; /* completions seen */
};

static struct req *reqs;
static size_t nreq, capreq;
static FILE *events_log;
static volatile sig_atomic_t stop_requested; /* SIGUSR1: the harness is done with its faults */

static void on_usr1(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Reserves the next request id (ids are 1..nreq, index id-1). */
static uint64_t new_req(int kind, uint32_t slot)
{
	if (nreq == capreq) {
		size_t nc = capreq ? capreq * 2 : 65536;
		struct req *n = realloc(reqs, nc * sizeof(*n));
		if (!n) {
			fprintf(stderr, "cluster_driver: out of memory\n");
			exit(2);
		}
		reqs = n;
		capreq = nc;
	}
	reqs[nreq] = (struct req){ .t_sub = now_ms(), .slot = slot, .kind = (uint8_t)kind };
	return ++nreq;
}

static int pool_of_output(const uint8_t *p, size_t n)
{
	/* "pool<N>\n" */
	if (n < 5 || memcmp(p, "pool", 4))
		return -1;
	int v = 0;
	size_t i = 4;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	return i > 4 ? v : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: cluster_driver --socket PATH --log FILE [--name N] [--seconds S]\n"
			"  [--traj N] [--steps N] [--profile P] [--cmd SHELL] [--drain-s S]\n"
			"  Runs --seconds, or until SIGUSR1 when that comes first.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *logpath = NULL, *name = "driver", *profile = "default", *cmd = NULL;
	double seconds = 10, drain_s = 30;
	int traj = 32, steps = 10;
	static const struct option opts[] = {
		{ "socket", 1, 0, 's' },  { "log", 1, 0, 'l' },  { "name", 1, 0, 'n' },
		{ "seconds", 1, 0, 't' }, { "traj", 1, 0, 'j' }, { "steps", 1, 0, 'k' },
		{ "profile", 1, 0, 'p' }, { "cmd", 1, 0, 'c' },  { "drain-s", 1, 0, 'd' },
		{ 0, 0, 0, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'l':
			logpath = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'j':
			traj = atoi(optarg);
			break;
		case 'k':
			steps = atoi(optarg);
			break;
		case 'p':
			profile = optarg;
			break;
		case 'c':
			cmd = optarg;
			break;
		case 'd':
			drain_s = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (!sock || !logpath || traj < 1 || steps < 1)
		usage();
	signal(SIGUSR1, on_usr1);
	events_log = fopen(logpath, "w");
	if (!events_log) {
		perror(logpath);
		return 2;
	}
	rollout_client *c = NULL;
	struct rollout_connect_opts co = { .socket_path = sock, .gpu = -1, .name = name };
	for (int i = 0; i < 200 && rollout_connect(&co, &c); i++)
		usleep(50000);
	if (!c) {
		fprintf(stderr, "cluster_driver: cannot attach to %s\n", sock);
		return 2;
	}
	static const char *const uname_argv[] = { "uname", "-n", NULL };
	struct rollout_exec ex = { .timeout_ms = 30000 };
	if (cmd)
		ex.shell = cmd;
	else
		ex.argv = uname_argv;

	struct slot *sl = calloc((size_t)traj, sizeof(*sl));
	if (!sl)
		return 2;
	for (int i = 0; i < traj; i++)
		sl[i] = (struct slot){ .need = NEED_OPEN, .pool = -1 };

	unsigned long long by_status[K_COUNT][ST_MAX] = { { 0 } }, infra = 0, dup = 0, unknown = 0;
	unsigned long long steps_ok = 0, inflight = 0;
	double t0 = now_ms(), t_end = t0 + seconds * 1e3, t_stop = 0, t_last_step = t0;
	int stopping = 0;
	for (;;) {
		double t = now_ms();
		if (!stopping && (t >= t_end || stop_requested)) {
			stopping = 1;
			t_stop = t;
		}
		/* Submit what each trajectory needs next, until the ring is full. */
		int full = 0;
		for (int i = 0; i < traj && !full; i++) {
			struct slot *s = &sl[i];
			if (s->need == NEED_NONE)
				continue;
			if (stopping && s->need != NEED_CLOSE) {
				if (s->need == NEED_EXEC)
					s->need = NEED_CLOSE; /* finish cleanly: close what we hold */
				else {
					s->need = NEED_NONE;
					continue;
				}
			}
			if (s->need == NEED_OPEN && t < s->not_before)
				continue;
			int kind = s->need == NEED_OPEN ? K_OPEN : s->need == NEED_EXEC ? K_EXEC : K_CLOSE;
			uint64_t id = new_req(kind, (uint32_t)i);
			int rc = kind == K_OPEN   ? rollout_open(c, id, profile, 0)
				 : kind == K_EXEC ? rollout_exec(c, id, s->sandbox, &ex, 0)
						  : rollout_close(c, id, s->sandbox);
			if (rc == -EAGAIN) {
				nreq--; /* not submitted: the id is reused */
				full = 1;
				break;
			}
			if (rc) {
				fprintf(stderr, "cluster_driver: submit: %s\n", rollout_strerror(rc));
				return 2;
			}
			s->need = NEED_NONE;
			inflight++;
		}
		rollout_flush(c);
		struct rollout_completion d;
		int n, got = 0;
		while ((n = rollout_next(c, &d)) == 1) {
			got++;
			double tc = now_ms();
			if (d.request_id == 0 || d.request_id > nreq) {
				unknown++;
				fprintf(events_log, "U %llu\n", (unsigned long long)d.request_id);
				continue;
			}
			struct req *r = &reqs[d.request_id - 1];
			struct slot *s = &sl[r->slot];
			if (r->done++) {
				dup++;
				fprintf(events_log, "D %llu %s %s\n", (unsigned long long)d.request_id,
					kind_name[r->kind], rollout_status_name(d.status));
				continue;
			}
			inflight--;
			int st = d.status >= 0 && d.status < ST_MAX ? d.status : ST_MAX - 1;
			by_status[r->kind][st]++;
			infra += d.infra_failed;
			if (r->kind == K_EXEC && d.status == 0) {
				int p = pool_of_output(d.stdout_data, d.stdout_len);
				if (p >= 0)
					s->pool = p;
			}
			/* C id kind status infra t_sub t_done sandbox pool */
			fprintf(events_log, "C %llu %s %s %d %.3f %.3f %llx %d\n",
				(unsigned long long)d.request_id, kind_name[r->kind],
				rollout_status_name(d.status), d.infra_failed ? 1 : 0, r->t_sub, tc,
				(unsigned long long)(r->kind == K_OPEN ? d.sandbox : s->sandbox),
				r->kind == K_OPEN ? -1 : s->pool);
			switch (r->kind) {
			case K_OPEN:
				if (d.status == 0) {
					s->sandbox = d.sandbox;
					s->pool = -1;
					s->steps = 0;
					s->need = NEED_EXEC;
				} else {
					s->need = NEED_OPEN;
					s->not_before = tc + 50;
				}
				break;
			case K_EXEC:
				if (d.status == 0) {
					steps_ok++;
					t_last_step = tc;
					s->need = ++s->steps >= steps ? NEED_CLOSE : NEED_EXEC;
				} else if (d.status == 2 /* SANDBOX_LOST */ ||
					   d.status == 5 /* NOT_FOUND */) {
					s->need = NEED_OPEN; /* the sandbox is gone: a new trajectory */
				} else {
					s->need = NEED_CLOSE;
				}
				break;
			case K_CLOSE:
				s->need = NEED_OPEN;
				break;
			}
		}
		if (n < 0) {
			fprintf(stderr, "cluster_driver: rolloutd went away: %s\n", rollout_strerror(n));
			break;
		}
		if (stopping && inflight == 0)
			break;
		if (stopping && now_ms() - t_stop > drain_s * 1e3)
			break;
		if (!got)
			rollout_wait(c, full ? 5 : 20);
	}
	/* Requests without a completion are lost. */
	unsigned long long lost = 0;
	for (size_t i = 0; i < nreq; i++)
		if (!reqs[i].done) {
			lost++;
			fprintf(events_log, "L %zu %s %.3f\n", i + 1, kind_name[reqs[i].kind], reqs[i].t_sub);
		}
	/* Linger briefly: a duplicate that comes late is still counted. */
	double linger = now_ms() + 500;
	while (now_ms() < linger) {
		struct rollout_completion d;
		if (rollout_next(c, &d) == 1) {
			if (d.request_id && d.request_id <= nreq && reqs[d.request_id - 1].done++) {
				dup++;
				fprintf(events_log, "D %llu late\n", (unsigned long long)d.request_id);
			} else {
				unknown++;
			}
		} else {
			rollout_wait(c, 50);
		}
	}
	fclose(events_log);
	rollout_disconnect(c);
	double run_s = ((t_stop ? t_stop : now_ms()) - t0) / 1e3;
	printf("{\"name\":\"%s\",\"submitted\":%zu,\"completed\":%llu,\"lost\":%llu,\"duplicated\":%llu,"
	       "\"unknown\":%llu,\"infra_failed\":%llu,\"steps_ok\":%llu,\"run_s\":%.3f,\"steps_per_s\":%.1f,"
	       "\"last_step_ms\":%.3f,\"status\":{",
	       name, nreq, (unsigned long long)nreq - lost, lost, dup, unknown, infra, steps_ok, run_s,
	       run_s > 0 ? (double)steps_ok / run_s : 0.0, t_last_step);
	int first = 1;
	for (int k = 0; k < K_COUNT; k++)
		for (int s = 0; s < ST_MAX; s++)
			if (by_status[k][s]) {
				printf("%s\"%s/%s\":%llu", first ? "" : ",", kind_name[k],
				       rollout_status_name(s), by_status[k][s]);
				first = 0;
			}
	printf("}}\n");
	free(sl);
	free(reqs);
	return lost || dup || unknown ? 1 : 0;
}
