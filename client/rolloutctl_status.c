/* rolloutctl status: what rolloutd is doing, read from its /metrics endpoint.
 *   rolloutctl status [--metrics HOST:PORT | --config FILE]
 * The address: --metrics, else rolloutd.metrics of --config FILE, else 127.0.0.1:9310 (what
 * configs/local.yaml sets). Free sandboxes leave out noop profiles (none behind them). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rolloutctl.h"

static char *fetch(const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	if (!colon)
		return NULL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) < 0) {
		close(fd);
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
		}
	}
	close(fd);
	if (buf)
		buf[len] = 0;
	return buf;
}

/* Sum of every sample of a metric whose labels contain `match` (NULL: all). */
static double sum(const char *text, const char *name, const char *match)
{
	double total = 0;
	size_t nl = strlen(name);
	for (const char *line = text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, name, nl) || (line[nl] != ' ' && line[nl] != '{'))
			continue;
		const char *end = strchr(line, '\n');
		const char *sp = line;
		for (const char *q = line; q < (end ? end : line + strlen(line)); q++)
			if (*q == ' ')
				sp = q;
		if (match) {
			const char *m = strstr(line, match);
			if (!m || (end && m > end))
				continue;
		}
		total += atof(sp + 1);
	}
	return total;
}

int rolloutctl_status(int argc, char **argv)
{
	const char *addr = "127.0.0.1:9310";
	char sock[108] = "", from_config[64] = "";
	static const struct option lo[] = { { "metrics", required_argument, NULL, 'm' },
					    { "config", required_argument, NULL, 'c' },
					    { 0 } };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "m:c:", lo, NULL)) != -1) {
		if (ch == 'm') {
			addr = optarg;
		} else if (ch == 'c') {
			int rc =
			    rolloutctl_config(optarg, sock, sizeof(sock), from_config, sizeof(from_config));
			if (rc) {
				fprintf(stderr, "rolloutctl status: cannot read %s: %s\n", optarg,
					strerror(-rc));
				return 2;
			}
			if (!from_config[0]) {
				fprintf(
				    stderr,
				    "rolloutctl status: %s sets no rolloutd.metrics: rolloutd serves none\n",
				    optarg);
				return 1;
			}
			addr = from_config;
		} else {
			fprintf(stderr, "usage: rolloutctl status [--metrics HOST:PORT | --config FILE]\n");
			return 2;
		}
	}
	char *text = fetch(addr);
	if (!text || !strstr(text, "rolloutd_")) {
		fprintf(stderr,
			"rolloutctl status: no rolloutd metrics at http://%s/metrics (is rolloutd running "
			"with rolloutd.metrics set? choose the address with --metrics HOST:PORT or --config "
			"FILE)\n",
			addr);
		free(text);
		return 1;
	}
	/* A second scrape a second later gives the rates. */
	sleep(1);
	char *later = fetch(addr);
	double dt_req =
	    later ? sum(later, "rolloutd_requests_total", NULL) - sum(text, "rolloutd_requests_total", NULL)
		  : 0;
	double dt_done = later ? sum(later, "rolloutd_completions_total", NULL) -
				     sum(text, "rolloutd_completions_total", NULL)
			       : 0;
	if (later) {
		free(text);
		text = later;
	}
	printf("rolloutd at %s\n", addr);
	printf("  trainers attached   %.0f\n", sum(text, "rolloutd_trainers", NULL));
	printf("  sandboxes open      %.0f\n", sum(text, "rolloutd_sessions", NULL));
	printf("  requests in flight  %.0f (opens waiting for capacity: %.0f)\n",
	       sum(text, "rolloutd_inflight", NULL), sum(text, "rolloutd_open_queue", NULL));
	printf("  pool links up       %.0f\n", sum(text, "rolloutd_pool_up", NULL));
	printf("  pool capacity       %.0f free sandboxes (noop profiles left out), %.0f credits\n",
	       sum(text, "rolloutd_pool_free_sandboxes", NULL), sum(text, "rolloutd_pool_credits", NULL));
	printf("  rates               %.0f requests/s, %.0f completions/s (last second)\n", dt_req, dt_done);
	printf("  requests            %.0f\n", sum(text, "rolloutd_requests_total", NULL));
	printf("  completions         %.0f OK, %.0f TIMEOUT, %.0f SANDBOX_LOST, %.0f other\n",
	       sum(text, "rolloutd_completions_total", "status=\"OK\""),
	       sum(text, "rolloutd_completions_total", "status=\"TIMEOUT\""),
	       sum(text, "rolloutd_completions_total", "status=\"SANDBOX_LOST\""),
	       sum(text, "rolloutd_completions_total", NULL) -
		   sum(text, "rolloutd_completions_total", "status=\"OK\"") -
		   sum(text, "rolloutd_completions_total", "status=\"TIMEOUT\"") -
		   sum(text, "rolloutd_completions_total", "status=\"SANDBOX_LOST\""));
	printf("  refused records     %.0f\n", sum(text, "rolloutd_refused_records_total", NULL));
	free(text);
	return 0;
}
