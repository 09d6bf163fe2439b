/* rollout_demo: a multi-step agentic rollout workload through rolloutd, the shape of one
 * rollout phase of an RL trainer. B trajectories run at once, each in its own sandbox: the
 * "task" is written into the sandbox, then T turns each run a tool call (a shell step that
 * reads and changes the sandbox's files), and the last turn fetches the result file. All
 * trajectories are in flight together through one librollout connection; each turn is
 * submitted as soon as the previous observation of that trajectory arrives.
 *
 *   rollout_demo [--socket PATH] [--trajectories B] [--turns T] [--profile NAME] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rollout/rollout.h"

enum phase { OPENING, PUTTING, RUNNING, GETTING, CLOSING, DONE };

struct traj {
	enum phase phase;
	uint64_t sandbox;
	int turn;
	uint64_t sent_ns;
	int failures;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The tool calls a trajectory makes, turn by turn: file edits, searches, a small program. */
static const char *const steps[] = {
	"echo \"turn $TURN\" >> log.txt && wc -l < log.txt",
	"python3 -c 'import json,sys; d=json.load(open(\"task.json\")); print(sum(d[\"numbers\"]) * "
	"int(sys.argv[1]))' $TURN",
	"sort -n numbers.txt | tail -3 | tr '\\n' ' '",
	"grep -c turn log.txt; ls -1 | wc -l",
	"seq 1 200 | awk '{s+=$1*$1} END {print s}' > sq.txt && cat sq.txt",
	"sed -i \"s/^/# /\" numbers.txt && head -2 numbers.txt",
};

int main(int argc, char **argv)
{
	struct rollout_connect_opts o = { .gpu = -1, .name = "rollout-demo" };
	int B = 32, T = 8;
	const char *profile = "default";
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' }, { "trajectories", required_argument, NULL, 'b' },
		{ "turns", required_argument, NULL, 't' },  { "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },         { 0 }
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'b':
			B = atoi(optarg);
			break;
		case 't':
			T = atoi(optarg);
			break;
		case 'p':
			profile = optarg;
			break;
		default:
			printf("usage: rollout_demo [--socket PATH] [--trajectories B] [--turns T] "
			       "[--profile NAME]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (B < 1 || T < 1 || B > 100000) {
		fprintf(stderr, "rollout_demo: --trajectories 1..100000, --turns >= 1\n");
		return 2;
	}
	rollout_client *cl;
	int rc = rollout_connect(&o, &cl);
	if (rc) {
		fprintf(stderr, "rollout_demo: cannot connect to rolloutd: %s\n", rollout_strerror(rc));
		return 1;
	}
	struct traj *tr = calloc((size_t)B, sizeof(*tr));
	uint64_t *lat_step = calloc((size_t)B * (size_t)(T + 4), sizeof(uint64_t)),
		 *lat_open = calloc((size_t)B, 8);
	size_t nstep = 0, nopen = 0;
	uint64_t statuses[16] = { 0 }, infra = 0, steps_done = 0, bytes_out = 0;
	uint64_t t0 = now_ns();
	/* request id = trajectory * 1000 + sequence, so a completion finds its trajectory. */
	for (int i = 0; i < B; i++) {
		tr[i].sent_ns = now_ns();
		while ((rc = rollout_open(cl, (uint64_t)i * 1000, profile, 0)) == -EAGAIN)
			rollout_wait_space(cl, 4096, 1000);
		if (rc) {
			fprintf(stderr, "rollout_demo: submit: %s\n", rollout_strerror(rc));
			return 1;
		}
	}
	rollout_flush(cl);
	int done = 0;
	char task[256], turn_env[16];
	while (done < B) {
		struct rollout_completion cp;
		int n = rollout_next(cl, &cp);
		if (n < 0) {
			fprintf(stderr, "rollout_demo: reading completions: %s\n", rollout_strerror(n));
			return 1;
		}
		if (n == 0) {
			rollout_flush(cl);
			rc = rollout_wait(cl, 60000);
			if (rc && rc != -ETIMEDOUT) {
				fprintf(stderr, "rollout_demo: rolloutd: %s\n", rollout_strerror(rc));
				return 1;
			}
			continue;
		}
		int i = (int)(cp.request_id / 1000);
		uint64_t seq = cp.request_id % 1000 + 1;
		if (i < 0 || i >= B) {
			fprintf(stderr, "rollout_demo: completion for unknown request %llu\n",
				(unsigned long long)cp.request_id);
			return 1;
		}
		struct traj *t = &tr[i];
		uint64_t lat = now_ns() - t->sent_ns;
		statuses[cp.status & 15]++;
		infra += cp.infra_failed;
		if (cp.status != 0) {
			t->failures++;
			if (t->phase != CLOSING && t->phase != OPENING)
				fprintf(stderr, "rollout_demo: trajectory %d turn %d: %s%s%s\n", i, t->turn,
					rollout_status_name(cp.status), cp.message ? ": " : "",
					cp.message ? cp.message : "");
		}
		if (t->phase == OPENING)
			lat_open[nopen++] = lat;
		else
			lat_step[nstep++] = lat;
		uint64_t rid = (uint64_t)i * 1000 + seq;
		t->sent_ns = now_ns();
		switch (t->phase) {
		case OPENING:
			if (cp.status != 0) {
				t->phase = DONE;
				done++;
				continue;
			}
			t->sandbox = cp.sandbox;
			snprintf(task, sizeof(task), "{\"trajectory\": %d, \"numbers\": [%d, %d, %d]}\n", i,
				 i, i * 2, i * 3);
			rc = rollout_put_file(cl, rid, t->sandbox, "task.json", task, strlen(task), 0644);
			t->phase = PUTTING;
			break;
		case PUTTING: {
			char nums[64];
			snprintf(nums, sizeof(nums), "%d\n%d\n%d\n%d\n", i * 7 % 13, i, 42, i * 3 % 11);
			/* one more file for the tools, written by the first step */
			struct rollout_env env = { "TURN", "0" };
			char cmd[160];
			snprintf(cmd, sizeof(cmd), "printf '%s' > numbers.txt && echo ready",
				 "3\\n1\\n4\\n1\\n5\\n9\\n2\\n6\\n");
			struct rollout_exec e = {
				.shell = cmd, .env = &env, .env_len = 1, .timeout_ms = 10000
			};
			(void)nums; /* kept for variety in later turns */
			rc = rollout_exec(cl, rid, t->sandbox, &e, 0);
			t->phase = RUNNING;
			break;
		}
		case RUNNING:
			steps_done++;
			bytes_out += cp.stdout_len;
			if (t->turn < T) {
				snprintf(turn_env, sizeof(turn_env), "%d", t->turn + 1);
				struct rollout_env env = { "TURN", turn_env };
				struct rollout_exec e = {
					.shell = steps[t->turn % (sizeof(steps) / sizeof(steps[0]))],
					.env = &env,
					.env_len = 1,
					.timeout_ms = 10000
				};
				rc = rollout_exec(cl, rid, t->sandbox, &e, 0);
				t->turn++;
			} else {
				rc = rollout_get_file(cl, rid, t->sandbox, "log.txt", 0);
				t->phase = GETTING;
			}
			break;
		case GETTING:
			bytes_out += cp.file_len;
			rc = rollout_close(cl, rid, t->sandbox);
			t->phase = CLOSING;
			break;
		case CLOSING:
			t->phase = DONE;
			done++;
			continue;
		case DONE:
			continue;
		}
		while (rc == -EAGAIN) {
			rollout_flush(cl);
			rc = rollout_wait_space(cl, 65536, 1000);
		}
		if (rc) {
			fprintf(stderr, "rollout_demo: submit: %s\n", rollout_strerror(rc));
			return 1;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(lat_step, nstep, 8, cmp_u64);
	qsort(lat_open, nopen, 8, cmp_u64);
	int failed = 0;
	for (int i = 0; i < B; i++)
		failed += tr[i].failures > 0;
	printf("\nrollout demo summary\n");
	printf("  trajectories       %d x %d turns, %d completed cleanly, %d with failures\n", B, T,
	       B - failed, failed);
	printf("  sandbox steps      %llu exec steps, %zu requests in all\n", (unsigned long long)steps_done,
	       nstep + nopen);
	printf("  wall time          %.2f s\n", secs);
	printf("  throughput         %.0f exec steps/s\n", (double)steps_done / secs);
	if (nopen)
		printf("  open latency       p50 %.2f ms  p99 %.2f ms\n", (double)lat_open[nopen / 2] / 1e6,
		       (double)lat_open[nopen * 99 / 100] / 1e6);
	if (nstep)
		printf("  step latency       p50 %.2f ms  p99 %.2f ms\n", (double)lat_step[nstep / 2] / 1e6,
		       (double)lat_step[nstep * 99 / 100] / 1e6);
	printf("  observation bytes  %llu\n", (unsigned long long)bytes_out);
	printf("  statuses          ");
	for (int s = 0; s < 16; s++)
		if (statuses[s])
			printf(" %s=%llu", rollout_status_name(s), (unsigned long long)statuses[s]);
	printf("%s\n", infra ? " (some infra_failed)" : "");
	rollout_disconnect(cl);
	free(tr);
	free(lat_step);
	free(lat_open);
	return failed ? 1 : 0;
}
