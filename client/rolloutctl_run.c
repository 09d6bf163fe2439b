/* rolloutctl run: one command in a fresh sandbox through rolloutd, for people and scripts.
 *   rolloutctl run [--socket PATH | --config FILE] [--profile PROFILE] [--timeout S] -- CMD ARGS...
 * The socket: --socket, else rolloutd.socket of --config FILE, else $ROLLOUTD_SOCKET, else
 * ROLLOUT_DEFAULT_SOCKET (what configs/local.yaml sets). --env is the old name of --profile.
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
