/* rolloutctl run: one command in a fresh sandbox through rolloutd, for people and scripts.
 *   rolloutctl run [--socket PATH] [--env PROFILE] [--timeout S] -- CMD ARGS...
 * Opens a sandbox of the profile, runs the command, writes its stdout and stderr to ours,
 * closes the sandbox and exits with the command's exit code (128 + signal if killed; 124 on
 * timeout, like timeout(1); 125 when rolloutd or the pool failed). */
#include <getopt.h>
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

int rolloutctl_run(int argc, char **argv)
{
	struct rollout_connect_opts o = { .gpu = -1, .name = "rolloutctl" };
	const char *profile = "default";
	double timeout_s = 0;
	static const struct option lo[] = { { "socket", required_argument, NULL, 's' },
					    { "env", required_argument, NULL, 'e' },
					    { "timeout", required_argument, NULL, 't' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+s:e:t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'e':
			profile = optarg;
			break;
		case 't':
			timeout_s = atof(optarg);
			break;
		default:
			fprintf(ch == 'h' ? stdout : stderr, "usage: rolloutctl run [--socket PATH] [--env "
							     "PROFILE] [--timeout S] -- CMD ARGS...\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "rolloutctl run: no command given\n");
		return 2;
	}
	rollout_client *c;
	int rc = rollout_connect(&o, &c);
	if (rc) {
		fprintf(stderr, "rolloutctl run: cannot reach rolloutd: %s\n", rollout_strerror(rc));
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
	rc = rollout_exec_sync(c, sandbox, &e, &done, -1);
	int code;
	if (rc) {
		fprintf(stderr, "rolloutctl run: %s\n", rollout_strerror(rc));
		code = 125;
	} else {
		write_all(1, done.stdout_data, done.stdout_len);
		write_all(2, done.stderr_data, done.stderr_len);
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
