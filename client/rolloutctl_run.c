/* rolloutctl run: one command in a fresh sandbox through rolloutd, for people and scripts.
 *   rolloutctl run [--socket PATH | --config FILE] [--profile PROFILE] [--timeout S] -- CMD ARGS...
 * The socket: --socket, else rolloutd.socket of --config FILE, else $ROLLOUTD_SOCKET, else
 * ROLLOUT_DEFAULT_SOCKET (what configs/local.yaml sets). --env is the old name of --profile.
 * Opens a sandbox of the profile, runs the command, writes its stdout and stderr to ours as
 * they arrive (streamed), closes the sandbox and exits with the command's exit code (128 +
 * signal if killed; 124 on timeout, like timeout(1); 125 when rolloutd or the pool failed).
 * Ctrl-C and SIGTERM are passed on to the command. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rollout/rollout.h"
#include "rolloutctl.h"

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static volatile sig_atomic_t pending_signal;

static void on_signal(int sig)
{
	pending_signal = sig;
}

/* Output of one stream: what was written so far, so every byte goes out once, in order. */
struct out_stream {
	int fd;
	uint64_t written;
};

/* Writes the part of data (starting at offset off of its stream) not written yet; a chunk
 * after a gap (a streamed record was dropped) waits for the completion, which has it all. */
static void emit(struct out_stream *s, uint64_t off, const uint8_t *data, size_t len, bool final)
{
	if (!final && off != s->written)
		return;
	if (final)
		off = 0;
	if (off + len <= s->written)
		return;
	write_all(s->fd, data + (s->written - off), len - (size_t)(s->written - off));
	s->written = off + len;
}

#define RUN_EXEC_ID   1
#define RUN_SIGNAL_ID 2

/* Runs the exec with its output streamed; 0 and *done filled, or a librollout error. */
static int run_streamed(rollout_client *c, uint64_t sandbox, struct rollout_exec *e,
			struct rollout_completion *done)
{
	struct out_stream so = { 1, 0 }, se = { 2, 0 };
	e->flags = ROLLOUT_EXEC_STREAM;
	int rc;
	while ((rc = rollout_exec(c, RUN_EXEC_ID, sandbox, e, 0)) == -EAGAIN)
		if ((rc = rollout_wait_space(c, 0, -1)))
			return rc;
	if (rc)
		return rc;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		if (pending_signal) {
			int sig = pending_signal;
			pending_signal = 0;
			(void)rollout_signal(c, RUN_SIGNAL_ID, sandbox, RUN_EXEC_ID, sig);
		}
		rc = rollout_wait(c, 100);
		if (rc && rc != -ETIMEDOUT)
			return rc;
		struct rollout_completion k;
		int n;
		while ((n = rollout_next(c, &k)) == 1) {
			if (k.request_id != RUN_EXEC_ID)
				continue; /* the signal's own answer */
			emit(&so, k.stdout_offset, k.stdout_data, k.stdout_len, !k.partial);
			emit(&se, k.stderr_offset, k.stderr_data, k.stderr_len, !k.partial);
			if (!k.partial) {
				*done = k;
				return 0;
			}
		}
		if (n < 0)
			return n;
	}
}

int rolloutctl_run(int argc, char **argv)
{
	struct rollout_connect_opts o = { .gpu = -1, .name = "rolloutctl" };
	const char *profile = "default";
	double timeout_s = 0;
	char from_config[108] = "", unused[64] = "";
	static const struct option lo[] = { { "socket", required_argument, NULL, 's' },
					    { "config", required_argument, NULL, 'c' },
					    { "profile", required_argument, NULL, 'e' },
					    { "env", required_argument, NULL, 'e' },
					    { "timeout", required_argument, NULL, 't' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+s:c:e:t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'c': {
			int rc = rolloutctl_config(optarg, from_config, sizeof(from_config), unused,
						   sizeof(unused));
			if (rc) {
				fprintf(stderr, "rolloutctl run: cannot read %s: %s\n", optarg,
					strerror(-rc));
				return 2;
			}
			if (!from_config[0])
				snprintf(from_config, sizeof(from_config), "%s", ROLLOUT_DEFAULT_SOCKET);
			break;
		}
		case 'e':
			profile = optarg;
			break;
		case 't':
			timeout_s = atof(optarg);
			break;
		default:
			fprintf(ch == 'h' ? stdout : stderr,
				"usage: rolloutctl run [--socket PATH | --config FILE] [--profile PROFILE] "
				"[--timeout S] -- CMD ARGS...\n"
				"  socket: --socket, rolloutd.socket of --config, $ROLLOUTD_SOCKET, or %s\n",
				ROLLOUT_DEFAULT_SOCKET);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "rolloutctl run: no command given\n");
		return 2;
	}
	if (!o.socket_path && from_config[0])
		o.socket_path = from_config;
	/* The path librollout will try, to name it if it fails. */
	const char *path = o.socket_path ? o.socket_path : getenv("ROLLOUTD_SOCKET");
	if (!path)
		path = ROLLOUT_DEFAULT_SOCKET;
	rollout_client *c;
	int rc = rollout_connect(&o, &c);
	if (rc) {
		fprintf(stderr,
			"rolloutctl run: cannot reach rolloutd at %s: %s\n"
			"  (is rolloutd running? choose its socket with --socket PATH, --config FILE or "
			"ROLLOUTD_SOCKET)\n",
			path, rollout_strerror(rc));
		return 125;
	}
	struct rollout_completion done;
	rc = rollout_open_sync(c, profile, &done, 60000);
	if (rc || done.status) {
		fprintf(stderr, "rolloutctl run: open '%s': %s\n", profile,
			rc             ? rollout_strerror(rc)
			: done.message ? done.message
				       : rollout_status_name(done.status));
		rollout_disconnect(c);
		return 125;
	}
	uint64_t sandbox = done.sandbox;
	struct rollout_exec e = { .argv = (const char *const *)&argv[optind],
				  .timeout_ms = timeout_s > 0 ? (uint32_t)(timeout_s * 1000) : 0 };
	rc = run_streamed(c, sandbox, &e, &done);
	int code;
	if (rc) {
		fprintf(stderr, "rolloutctl run: %s\n", rollout_strerror(rc));
		code = 125;
	} else {
		if (done.stdout_truncated || done.stderr_truncated)
			fprintf(stderr, "rolloutctl run: output truncated at the profile's cap\n");
		if (done.status == 1)
			code = 124;
		else if (done.status)
			code = 125;
		else
			code = done.signal ? 128 + done.signal : done.exit_code;
		if (done.status)
			fprintf(stderr, "rolloutctl run: %s%s%s\n", rollout_status_name(done.status),
				done.message ? ": " : "", done.message ? done.message : "");
	}
	rollout_close_sync(c, sandbox, &done, 10000);
	rollout_disconnect(c);
	return code;
}
