/* rollout-pool's event loop and lifecycle (see pool.h): creation in dependency order,
 * the ROUTER's messages (drained whole after every batch: ZeroMQ's fd only says that
 * something changed), the tick, drain on SIGTERM, and teardown in reverse order. */
#include "pool.h"
#include "env.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "boxes.h"
#include "log.h"
#include "peer.h"
#include "pin.h"
#include "pool_int.h"
#include "proto.h"
#include "rollout/error.h"
#include "rollout_version.h"
#include "util.h"

#define POOL_MAX_PARTS 2 /* [routing id][message]: anything longer is refused whole */

struct fb_builder *pool__builder(struct pool *p, size_t need)
{
	if (p->build_cap < need) {
		size_t cap = need < 65536 ? 65536 : (need + 7) & ~(size_t)7;
		uint8_t *nb = aligned_alloc(8, cap);
		if (!nb)
			return NULL;
		free(p->build);
		p->build = nb;
		p->build_cap = cap;
	}
	fb_builder_init(&p->b, p->build, p->build_cap);
	return &p->b;
}

void pool__fail(struct pool *p, int rc, const char *why)
{
	if (p->failed)
		return;
	p->failed = rc < 0 ? rc : -EIO;
	snprintf(p->why, sizeof(p->why), "%s (%s)", why, rollout_err_name(p->failed));
	RLOG(RLOG_ERROR, "pool failed", "why=\"%s\" err=%s", why, rollout_err_name(p->failed));
}

/* Drains the ROUTER. Returns true when it stopped with messages left (never: it reads
 * until EAGAIN), false otherwise; the idle hook's contract. */
static void on_router(struct pool *p)
{
	for (int budget = 4096; budget > 0 && !p->failed; budget--) {
		zmq_msg_t id, body;
		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, p->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&id);
			return;
		}
		bool ok = zmq_msg_more(&id);
		zmq_msg_init(&body);
		ok = ok && zmq_msg_recv(&body, p->router, ZMQ_DONTWAIT) >= 0;
		/* Exactly [identity][message]: the rest of a longer one is read and dropped. */
		bool extra = false;
		while (ok && zmq_msg_more(&body)) {
			extra = true;
			zmq_msg_close(&body);
			zmq_msg_init(&body);
			if (zmq_msg_recv(&body, p->router, ZMQ_DONTWAIT) < 0)
				break;
		}
		if (ok && !extra) {
			size_t len = zmq_msg_size(&body);
			/* An aligned private copy for the verifier. */
			uint8_t *buf = aligned_alloc(8, len ? (len + 7) & ~(size_t)7 : 8);
			if (buf) {
				memcpy(buf, zmq_msg_data(&body), len);
				proto_take_message(p, zmq_msg_data(&id), zmq_msg_size(&id), &buf, len);
				free(buf);
			}
		} else {
			pool_metrics_refused(p->m);
		}
		zmq_msg_close(&id);
		zmq_msg_close(&body);
	}
}

static void on_router_fd(void *arg, uint32_t events)
{
	(void)events;
	on_router(arg);
}

/* After every batch: messages may have arrived while we sent (ZMQ_FD is edge-like). */
static bool idle(void *arg)
{
	struct pool *p = arg;
	on_router(p);
	int zev = 0;
	size_t zl = sizeof(zev);
	return zmq_getsockopt(p->router, ZMQ_EVENTS, &zev, &zl) == 0 && (zev & ZMQ_POLLIN);
}

static void tick(void *arg, uint64_t now)
{
	struct pool *p = arg;
	box_tick(p, now);
	proto_tick(p, now);
	env_tick(p, now);
	uint32_t warm = 0, leased = 0;
	for (size_t i = 0; i < p->nprof; i++) {
		struct profile_state *ps = &p->prof[i];
		warm += ps->warm;
		leased += ps->leased;
		uint32_t taken = ps->leased + ps->waiting;
		pool_metrics_profile(p->m, i, ps->sp.name, ps->sp.type == SBX_NOOP, ps->warm, ps->leased,
				     taken < ps->sp.max ? ps->sp.max - taken : 0);
		if (ps->img_state)
			pool_metrics_image(p->m, i, ps->img_state,
					   __atomic_load_n(&ps->img_done, __ATOMIC_RELAXED),
					   __atomic_load_n(&ps->img_total, __ATOMIC_RELAXED));
	}
	pool_metrics_gauges(p->m, warm, leased, p->inflight, p->npeers);
}

/* The placement plan's pool part on this machine: an event-loop core and one sandbox cpuset
 * per NUMA node. With fewer than 4 usable cores, giving the event loop a core of its own
 * would take too much from the sandboxes: nothing is pinned then. Returns the event cpu. */
static int place(struct pool *p)
{
	struct pin_topo tp;
	if (pin_topo_load(&tp, NULL, NULL))
		return -1;
	struct pin_request rq = { 0 };
	struct pin_plan plan;
	char perr[256];
	int cpu = -1;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) >= 4 &&
	    pin_plan_make(&tp, &rq, &plan, perr, sizeof(perr)) == 0) {
		cpu = plan.pool_event_cpu;
		for (int i = 0; i < plan.nnodes && p->rt.nnode_cpus < 8; i++) {
			if (hwloc_bitmap_iszero(plan.node_cpus[i]))
				continue;
			cpu_set_t *set = &p->rt.node_cpus[p->rt.nnode_cpus++];
			CPU_ZERO(set);
			for (int c = hwloc_bitmap_first(plan.node_cpus[i]); c >= 0 && c < CPU_SETSIZE;
			     c = hwloc_bitmap_next(plan.node_cpus[i], c))
				CPU_SET(c, set);
		}
		pin_plan_free(&plan);
	} else {
		RLOG(RLOG_INFO, "not pinned", "reason=\"fewer than 4 usable cores\"");
	}
	pin_topo_free(&tp);
	return cpu;
}

static void zap_refused(void *arg)
{
	pool_metrics_refused(arg);
}

/* The ROUTER and its options; every call checked: a socket half set up is a failure. */
static int setup_router(struct pool *p, char *err, size_t errsz)
{
	const struct pool_cfg *cfg = p->cfg;
	int one = 1, zero = 0;
	int64_t maxmsg = (int64_t)cfg->max_message_mb << 20;
	int hb_ivl = 1000, hb_ttl = 3000, hb_timeout = 3000;
	if (!(p->zctx = zmq_ctx_new()) || !(p->router = zmq_socket(p->zctx, ZMQ_ROUTER))) {
		snprintf(err, errsz, "ZeroMQ: %s", zmq_strerror(errno));
		return -errno;
	}
	/* MANDATORY: an unreachable peer fails the send (and the answer waits in its outbox)
	 * instead of vanishing. HANDOVER: a coordinator that reconnects with its routing id
	 * takes over its old connection. SNDHWM 0: a ROUTER drops what exceeds a peer's limit;
	 * what is queued per coordinator is bounded by its credits (max_inflight). */
	if (zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
	    zmq_setsockopt(p->router, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)) ||
	    zmq_setsockopt(p->router, ZMQ_SNDHWM, &zero, sizeof(zero)) ||
	    zmq_setsockopt(p->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(p->router, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl)) ||
	    zmq_setsockopt(p->router, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof(hb_ttl)) ||
	    zmq_setsockopt(p->router, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(hb_timeout))) {
		snprintf(err, errsz, "ZeroMQ socket options: %s", zmq_strerror(errno));
		return -errno;
	}
	if (cfg->curve_secret_key) {
		uint8_t secret[32];
		int rc = zap_start(&p->zap, p->zctx, cfg->curve_allowed, cfg->curve_allowed_count,
				   zap_refused, p->m, err, errsz);
		if (rc)
			return rc;
		p->zap_on = true;
		if (!zmq_z85_decode(secret, cfg->curve_secret_key)) {
			snprintf(err, errsz, "curve_secret_key is not valid Z85");
			return -EINVAL;
		}
		rc = zmq_setsockopt(p->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
		     zmq_setsockopt(p->router, ZMQ_CURVE_SECRETKEY, secret, 32) ||
		     zmq_setsockopt(p->router, ZMQ_ZAP_DOMAIN, "rollout", 7);
		memset(secret, 0, sizeof(secret));
		if (rc) {
			snprintf(err, errsz, "CURVE: %s", zmq_strerror(errno));
			return -errno;
		}
	}
	if (zmq_bind(p->router, cfg->listen) < 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
		return -errno;
	}
	size_t zl = sizeof(p->router_fd);
	if (zmq_getsockopt(p->router, ZMQ_FD, &p->router_fd, &zl) < 0) {
		snprintf(err, errsz, "ZeroMQ fd: %s", zmq_strerror(errno));
		return -errno;
	}
	return 0;
}

/* network: egress profiles: the range, the resolved allowlists and the nft table, before
 * the zygote forks (it makes each sandbox's veth pair). */
static int start_network(struct pool *p, char *err, size_t errsz)
{
	const struct pool_cfg *cfg = p->cfg;
	bool any = false;
	for (size_t i = 0; i < p->nprof; i++)
		any |= cfg->profiles[i].network == NET_EGRESS && cfg->profiles[i].type == SBX_ISOLATED;
	if (!any)
		return 0;
	struct net_profile_spec *specs = calloc(p->nprof, sizeof(*specs));
	if (!specs)
		return -ENOMEM;
	for (size_t i = 0; i < p->nprof; i++) {
		const struct pool_profile_cfg *c = &cfg->profiles[i];
		specs[i] =
		    (struct net_profile_spec){ c->name, c->type == SBX_ISOLATED ? c->network : NET_NONE,
					       c->egress, c->egress_count };
	}
	char why[512];
	int rc = net_sys_create(&p->rt.net, cfg->egress_range, specs, p->nprof, p->rt.host_netns, why,
				sizeof(why));
	free(specs);
	if (rc) {
		snprintf(err, errsz, "%s%s%s", cfg->source ? cfg->source : "", cfg->source ? ": " : "", why);
		return rc;
	}
	for (size_t i = 0; i < p->nprof; i++)
		p->prof[i].sp.net = net_sys_profile(p->rt.net, i);
	RLOG(RLOG_INFO, "sandbox network", "range=%s table=%s", cfg->egress_range, net_sys_table(p->rt.net));
	return 0;
}

/* Profiles with root: system share one tree, built here before the zygote forks (it and
 * every sandbox inherit it). The directory of the config is hidden with the config. */
static int system_root(struct pool *p, char *err, size_t errsz)
{
	bool any = false;
	for (size_t i = 0; i < p->nprof; i++)
		any |= p->prof[i].sp.type == SBX_ISOLATED && sbx_profile_system(&p->prof[i].sp);
	if (!any)
		return 0;
	int rc;
	if (p->cfg->source) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", p->cfg->source);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir)
			*slash = 0;
		if ((rc = sbx_runtime_hide(&p->rt, dir))) {
			snprintf(err, errsz, "cannot hide %s from sandboxes: %s", dir, rollout_strerror(rc));
			return rc;
		}
	}
	if ((rc = sbx_runtime_system_root(&p->rt)))
		snprintf(err, errsz, "system root of the sandboxes: %s", rollout_strerror(rc));
	return rc;
}

int pool_create(struct pool **out, const struct pool_cfg *cfg, char *err, size_t errsz)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	p->zy.fd = -1;
	p->router_fd = -1;
	p->rt.host_netns = -1; /* sbx_runtime_free on an early failure must not close fd 0 */
	p->nprof = cfg->profiles_count;
	acache_init(&p->cache, (uint64_t)cfg->result_cache_s * 1000000000ull, POOL_CACHE_MAX_BYTES,
		    peer_release, p);
	int rc = -ENOMEM;
	p->prof = calloc(p->nprof, sizeof(*p->prof));
	if (!p->prof) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < p->nprof; i++)
		pool_profile_to_sbx(&cfg->profiles[i], &p->prof[i].sp);
	p->boot_id = rollout__now_ns() ^ ((uint64_t)getpid() << 32);
	/* Sandbox ids carry 24 bits of the boot id, so two pools (or two starts of one) do not
	 * hand out the same id to a coordinator that talks to several. */
	p->next_id = ((p->boot_id ^ (p->boot_id >> 24) ^ (p->boot_id >> 48)) & 0xffffffull) << 32;
	if ((rc = sbx_runtime_init(&p->rt, cfg->cgroup))) {
		snprintf(err, errsz, "sandbox runtime: %s", rollout_strerror(rc));
		goto fail;
	}
	/* The config (and the CURVE secret in it) is not the sandboxes' business. */
	if (cfg->source && (rc = sbx_runtime_mask(&p->rt, cfg->source))) {
		snprintf(err, errsz, "cannot hide %s from sandboxes: %s", cfg->source, rollout_strerror(rc));
		goto fail;
	}
	if ((rc = system_root(p, err, errsz)) || (rc = start_network(p, err, errsz)))
		goto fail;
	/* erofs/squashfs images are mounted by the pool: in its own namespace. */
	for (size_t i = 0; i < p->nprof; i++)
		if (cfg->profiles[i].image && (rc = sbx_runtime_own_mounts(&p->rt))) {
			snprintf(err, errsz, "mount namespace: %s", rollout_strerror(rc));
			goto fail;
		}
	int event_cpu = place(p);
	struct sbx_profile *profs = calloc(p->nprof, sizeof(*profs));
	if (!profs) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < p->nprof; i++)
		profs[i] = p->prof[i].sp;
	/* The zygote resolves snapshot chains: it needs the store's place before it forks. */
	if (cfg->snapshot_dir)
		snprintf(p->rt.snapshot_dir, sizeof(p->rt.snapshot_dir), "%s", cfg->snapshot_dir);
	else
		snprintf(p->rt.snapshot_dir, sizeof(p->rt.snapshot_dir), "%s/snapshots", cfg->state_dir);
	rc = zy_start(&p->zy, &p->rt, profs, p->nprof); /* before any thread exists */
	free(profs);
	if (rc) {
		snprintf(err, errsz, "zygote: %s", rollout_strerror(rc));
		goto fail;
	}
	if (event_cpu >= 0) {
		/* The event loop (and the ZeroMQ threads it starts next) on a core of its own. */
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(event_cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) == 0)
			RLOG(RLOG_INFO, "event loop pinned", "cpu=%d sandbox_cpusets=%d", event_cpu,
			     p->rt.nnode_cpus);
	}
	/* Metrics first: the ZAP handler counts refusals into them. */
	if ((rc = pool_metrics_start(&p->m, cfg->metrics, cfg->identity))) {
		snprintf(err, errsz, "metrics endpoint %s: %s", cfg->metrics, rollout_strerror(rc));
		goto fail;
	}
	if ((rc = setup_router(p, err, errsz)))
		goto fail;
	if ((rc = loop_create(&p->loop)) ||
	    (rc = loop_add(p->loop, p->router_fd, EPOLLIN, on_router_fd, p)) ||
	    (rc = loop_add(p->loop, p->zy.fd, EPOLLIN, box_on_zygote, p)) ||
	    (rc = loop_every(p->loop, ROLLOUT_MS(POOL_TICK_MS), tick, p))) {
		snprintf(err, errsz, "event loop: %s", rollout_strerror(rc));
		goto fail;
	}
	loop_set_idle(p->loop, idle, p);
	if ((rc = env_start(p, err, errsz)))
		goto fail;
	*out = p;
	return 0;
fail:
	pool_destroy(p);
	return rc ? rc : -EIO;
}

int pool_run(struct pool *p, atomic_int *stop, char *err, size_t errsz)
{
	char listen[300];
	RLOG(RLOG_INFO, "pool serving", "listen=\"%s\" profiles=%zu cgroups=v%d version=%s",
	     rlog_esc(listen, sizeof(listen), p->cfg->listen), p->nprof, p->rt.cgroups ? p->rt.cg.version : 0,
	     ROLLOUT_VERSION_STRING);
	for (size_t i = 0; i < p->nprof; i++)
		box_refill(p, (int)i);
	uint64_t drain_until = 0;
	while (!p->failed) {
		if (atomic_load(stop) && !p->draining) {
			p->draining = true;
			drain_until = rollout__now_ns() + ROLLOUT_MS(POOL_DRAIN_MS);
			RLOG(RLOG_INFO, "draining", "inflight=%u", p->inflight);
			proto_drain(p);
		}
		if (p->draining && (p->inflight == 0 || rollout__now_ns() > drain_until))
			break;
		int rc = loop_run_once(p->loop, POOL_TICK_MS);
		if (rc < 0)
			pool__fail(p, rc, "event loop");
	}
	if (p->failed) {
		snprintf(err, errsz, "%s", p->why);
		return p->failed;
	}
	RLOG(RLOG_INFO, "pool stopped", "inflight=%u", p->inflight);
	return 0;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	/* Sandboxes first (their jobs get answers), then the zygote tears down what is left. */
	box_kill_all(p, rw_Status_SHUTTING_DOWN, "pool is shutting down");
	env_stop(p);
	zy_stop(&p->zy);
	if (p->rt.cgroups)
		cg_fini(&p->rt.cg); /* the parent group goes too when nothing is left in it */
	loop_destroy(p->loop);
	if (p->router) {
		/* The last answers (SHUTTING_DOWN above) get a second to leave; failing that,
		 * rolloutd's pool timeout completes those requests. */
		int linger = 1000;
		if (zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
			RLOG(RLOG_WARN, "answers in flight may be lost", "err=%s", zmq_strerror(errno));
		zmq_close(p->router);
	}
	if (p->zctx)
		zmq_ctx_shutdown(p->zctx); /* ends the ZAP thread's wait */
	if (p->zap_on)
		zap_join(&p->zap);
	if (p->zctx)
		zmq_ctx_term(p->zctx);
	pool_metrics_stop(p->m);
	/* The waiting opens' jobs hold their peers; nothing answers them any more. */
	for (size_t i = 0; i < p->nprof && p->prof; i++)
		for (int q = 0; q < 2; q++)
			for (struct job *j = q ? p->prof[i].snapq_head : p->prof[i].waiting_head, *n; j;
			     j = n) {
				n = j->next;
				free(j->msg);
				free(j);
			}
	acache_fini(&p->cache);
	peer_free_all(p);
	net_sys_destroy(p->rt.net); /* after the zygote: no sandbox uses it any more */
	p->rt.net = NULL;
	sbx_runtime_free(&p->rt);
	free(p->build);
	free(p->prof);
	free(p);
}
