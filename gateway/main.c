/* rollout-gateway: serves the parts of E2B's control-plane API and of its in-sandbox API
 * (envd) that the E2B SDKs use, on one HTTP port, backed by rolloutd as one trainer.
 *   rollout-gateway --config FILE [--log-level LEVEL]
 *   rollout-gateway --check-config FILE
 * One event thread: libmicrohttpd in external-polling mode and the librollout completion
 * fd are polled together; SIGTERM/SIGINT kill the gateway's sandboxes and exit. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "http.h"
#include "log.h"
#include "rollout/error.h"

static atomic_int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rollout-gateway --config FILE [--log-level debug|info|warn|error]\n"
		   "       rollout-gateway --check-config FILE\n"
		   "Serves E2B's sandbox API (control plane and envd) on the gateway.listen port, backed by\n"
		   "rolloutd. The SDKs reach it with E2B_API_URL=http://HOST:PORT and "
		   "E2B_SANDBOX_URL=http://HOST:PORT.\n");
}

static int attach(struct gw *g)
{
	struct rollout_connect_opts o = { .socket_path = g->cfg.socket,
					  .gpu = g->cfg.gpu,
					  .name = "rollout-gateway" };
	int rc = 0;
	/* rolloutd may still be starting (systemd ordering, tests): retry for a while. */
	for (int i = 0; i < 100 && !atomic_load(&stop_flag); i++) {
		if ((rc = rollout_connect(&o, &g->rc)) == 0)
			return 0;
		usleep(100000);
	}
	RLOG(RLOG_ERROR, "cannot attach to rolloutd", "socket=\"%s\" err=\"%s\"", g->cfg.socket,
	     rollout_strerror(rc));
	return rc ? rc : -EINTR;
}

static int loop(struct gw *g)
{
	struct pollfd pf[2] = { { .fd = gw_http_fd(g), .events = POLLIN },
				{ .fd = rollout_fd(g->rc), .events = POLLIN } };
	int64_t next_expiry = 0;
	while (!atomic_load(&stop_flag)) {
		MHD_run(g->mhd);
		int rc = gw_backend_poll(&g->be);
		if (rc < 0) {
			RLOG(RLOG_ERROR, "rolloutd is gone", "err=\"%s\"", rollout_strerror(rc));
			return rc;
		}
		int64_t now = gw_wall_ms();
		int wait_ms = 1000;
		bool resumed = rc > 0;
		if (now >= next_expiry) {
			wait_ms = gw_expire(g);
			next_expiry = now + wait_ms;
			gw_backend_flush(&g->be);
			resumed = true; /* expiries and keep-alives may have ended or fed streams */
		} else {
			wait_ms = (int)(next_expiry - now);
		}
		MHD_UNSIGNED_LONG_LONG to;
		if (MHD_get_timeout(g->mhd, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)wait_ms)
			wait_ms = (int)to;
		/* Completions (or expiries) just handled resumed suspended connections with
		 * replies or stream events: the next MHD_run sends them, so no sleep before it. */
		if (resumed)
			wait_ms = 0;
		if (rollout_arm(g->rc) == -EAGAIN)
			wait_ms = 0; /* completions already waiting */
		if (poll(pf, 2, wait_ms) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Kills every sandbox the gateway holds and lets the closes and pending answers go out. */
static void drain(struct gw *g)
{
	while (g->reg.head)
		gw_sandbox_kill(g, g->reg.head, "gateway stopping");
	gw_backend_flush(&g->be);
	uint64_t until = gw_now_ns() + 3000000000ull;
	while (g->be.inflight && gw_now_ns() < until) {
		MHD_run(g->mhd);
		if (gw_backend_poll(&g->be) < 0)
			break;
		rollout_wait(g->rc, 50);
	}
	gw_backend_destroy(&g->be);
	for (int i = 0; i < 10; i++)
		MHD_run(g->mhd);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "config", required_argument, NULL, 'c' },
					    { "check-config", required_argument, NULL, 'k' },
					    { "log-level", required_argument, NULL, 'l' },
					    { "help", no_argument, NULL, 'h' },
					    { NULL, 0, NULL, 0 } };
	const char *cfg_path = NULL, *check = NULL;
	int opt;
	rlog_set_prog("rollout-gateway");
	while ((opt = getopt_long(argc, argv, "c:k:l:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'k':
			check = optarg;
			break;
		case 'l':
			if (rlog_set_level(optarg)) {
				fprintf(stderr, "rollout-gateway: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!cfg_path && !check) {
		usage(stderr);
		return 2;
	}
	static struct gw g;
	char err[512];
	if (gw_config_load(check ? check : cfg_path, &g.cfg, err, sizeof(err))) {
		fprintf(stderr, "rollout-gateway: %s\n", err);
		gw_config_free(&g.cfg);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", check);
		gw_config_free(&g.cfg);
		return 0;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = 1;
	if (!(g.m = gw_metrics_new()) || gw_registry_init(&g.reg, 8192))
		goto out;
	if (attach(&g))
		goto out;
	if (gw_backend_init(&g.be, g.rc))
		goto out_rc;
	if (gw_http_start(&g)) {
		RLOG(RLOG_ERROR, "cannot listen", "listen=%s", g.cfg.listen);
		goto out_be;
	}
	RLOG(RLOG_INFO, "serving", "listen=%s socket=\"%s\" templates=%zu", g.cfg.listen, g.cfg.socket,
	     g.cfg.ntemplates);
	rc = loop(&g) ? 1 : 0;
	RLOG(RLOG_INFO, "stopping", "sandboxes=%zu", g.reg.count);
	drain(&g);
	MHD_stop_daemon(g.mhd);
	gw_registry_destroy(&g.reg);
	rollout_disconnect(g.rc);
	gw_metrics_free(g.m);
	gw_config_free(&g.cfg);
	return rc;
out_be:
	gw_backend_destroy(&g.be);
out_rc:
	rollout_disconnect(g.rc);
out:
	gw_registry_destroy(&g.reg);
	gw_metrics_free(g.m);
	gw_config_free(&g.cfg);
	return rc;
}
