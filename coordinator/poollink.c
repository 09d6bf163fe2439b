/* Pool links (see poollink.h). */
#include "poollink.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "rollout_version.h"
#include "rollout_wire.h"

#define LINK_MAX_MESSAGE      (128ll << 20)
#define LINK_BIG_MESSAGE      (1u << 20)        /* from this size a send holds the link up */
#define LINK_SLOW_BYTES_PER_S (10ull * 1000000) /* the slowest link a big message is given */

static int add_link(struct poollink **v, int *n, int *cap, const struct rd_pool_cfg *pc, const char *ep)
{
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 16;
		struct poollink *nv = realloc(*v, (size_t)nc * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	struct poollink *p = &(*v)[(*n)++];
	memset(p, 0, sizeof(*p));
	p->cfg = pc;
	p->fd = -1;
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", ep);
	return 0;
}

int poollink_resolve(const struct rd_cfg *c, struct poollink **out, int *n, int *unresolved)
{
	if (unresolved)
		*unresolved = 0;
	struct poollink *v = NULL;
	int k = 0, cap = 0, rc = 0;
	for (unsigned i = 0; i < c->pools_count && !rc; i++) {
		const struct rd_pool_cfg *pc = &c->pools[i];
		if (pc->endpoint) {
			rc = add_link(&v, &k, &cap, pc, pc->endpoint);
			continue;
		}
		char host[256];
		const char *colon = strrchr(pc->dns, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - pc->dns), pc->dns);
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
		int g = getaddrinfo(host, colon + 1, &hints, &res);
		if (g) {
			char esc[300];
			RLOG(RLOG_ERROR, "pool name does not resolve", "dns=\"%s\" err=\"%s\"",
			     rlog_esc(esc, sizeof(esc), pc->dns), gai_strerror(g));
			if (unresolved)
				(*unresolved)++;
			continue;
		}
		for (struct addrinfo *a = res; a && !rc; a = a->ai_next) {
			char ip[64], ep[256];
			if (getnameinfo(a->ai_addr, a->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST))
				continue;
			snprintf(ep, sizeof(ep), a->ai_family == AF_INET6 ? "tcp://[%s]:%s" : "tcp://%s:%s",
				 ip, colon + 1);
			rc = add_link(&v, &k, &cap, pc, ep);
		}
		freeaddrinfo(res);
	}
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

void poollink_close(struct poollink *p)
{
	if (p->sock)
		zmq_close(p->sock);
	p->sock = NULL;
	p->fd = -1;
}

static int setopt(void *s, int opt, const void *v, size_t n)
{
	return zmq_setsockopt(s, opt, v, n) ? -errno : 0;
}

int poollink_connect(struct poollink *p, void *zctx, const struct link_self *self, uint64_t now)
{
	poollink_close(p);
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	if (!s)
		return -errno;
	/* A routing id of our own: when ZeroMQ reconnects this socket after a network blip the
	 * pool sees the same peer (its leases and its answer cache carry over). After a reset
	 * the generation changes, so the pool treats us as new and lets the old leases run out. */
	char rid[192];
	int rlen = snprintf(rid, sizeof(rid), "%s/%d/%llx/%u", self->cfg->identity, self->shard,
			    (unsigned long long)self->epoch, p->generation);
	size_t idlen = (size_t)(rlen < (int)sizeof(rid) ? rlen : (int)sizeof(rid) - 1);
	int zero = 0, one = 1, hwm = 1000000;
	int64_t maxmsg = LINK_MAX_MESSAGE;
	int rc = setopt(s, ZMQ_ROUTING_ID, rid, idlen > 255 ? 255 : idlen);
	if (!rc)
		rc = setopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (!rc)
		rc = setopt(s, ZMQ_IMMEDIATE, &one, sizeof(one));
	if (!rc)
		rc = setopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (!rc)
		rc = setopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (!rc)
		rc = setopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	const struct rd_cfg *c = self->cfg;
	if (!rc && p->cfg->server_key) {
		rc = setopt(s, ZMQ_CURVE_SERVERKEY, p->cfg->server_key, 41);
		if (!rc)
			rc = setopt(s, ZMQ_CURVE_PUBLICKEY, c->curve_public_key, 41);
		if (!rc)
			rc = setopt(s, ZMQ_CURVE_SECRETKEY, c->curve_secret_key, 41);
	}
	if (!rc && zmq_connect(s, p->endpoint) < 0)
		rc = -errno;
	int zfd = -1;
	size_t zl = sizeof(zfd);
	if (!rc && zmq_getsockopt(s, ZMQ_FD, &zfd, &zl) < 0)
		rc = -errno;
	if (rc) {
		char esc[300];
		RLOG(RLOG_ERROR, "cannot connect to a pool", "endpoint=\"%s\" err=\"%s\"",
		     rlog_esc(esc, sizeof(esc), p->endpoint), zmq_strerror(-rc));
		zmq_close(s);
		return rc;
	}
	p->sock = s;
	p->fd = zfd;
	p->last_rx = now;
	return poollink_hello(p, self, now);
}

int poollink_send(struct poollink *p, const void *buf, size_t len, uint64_t now)
{
	if (!p->sock)
		return -EAGAIN;
	if (zmq_send(p->sock, buf, len, ZMQ_DONTWAIT) < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	p->last_tx = now;
	if (len > LINK_BIG_MESSAGE) {
		uint64_t until = (now > p->busy_until ? now : p->busy_until) +
				 (uint64_t)len * 1000000000ull / LINK_SLOW_BYTES_PER_S;
		p->busy_until = until;
	}
	return 0;
}

int poollink_hello(struct poollink *p, const struct link_self *self, uint64_t now)
{
	uint8_t buf[1024] __attribute__((aligned(8)));
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	fb_ref_t id = fb_create_string(&b, self->cfg->identity);
	fb_ref_t ver = fb_create_string(&b, ROLLOUT_VERSION_STRING);
	rw_CoordinatorHello_start(&b);
	rw_CoordinatorHello_add_identity(&b, id);
	rw_CoordinatorHello_add_version(&b, ver);
	rw_CoordinatorHello_add_schema_version(&b, rw_SchemaVersion_Current);
	rw_CoordinatorHello_add_lease_ms(&b, self->cfg->lease_ms);
	fb_ref_t h = rw_CoordinatorHello_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_CoordinatorHello, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	return n > 0 ? poollink_send(p, buf, (size_t)n, now) : (int)n;
}

int poollink_heartbeat(struct poollink *p, uint64_t now)
{
	uint8_t buf[256] __attribute__((aligned(8)));
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	rw_Heartbeat_start(&b);
	p->last_hb = now;
	rw_Heartbeat_add_seq(&b, ++p->hb_seq);
	rw_Heartbeat_add_sent_ns(&b, now);
	fb_ref_t h = rw_Heartbeat_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Heartbeat, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	return n > 0 ? poollink_send(p, buf, (size_t)n, now) : (int)n;
}

int poollink_recv(struct poollink *p, uint8_t **buf, size_t *len, uint64_t now)
{
	if (!p->sock)
		return -EAGAIN;
	zmq_msg_t msg;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0) {
		int rc = errno == EAGAIN ? -EAGAIN : -errno;
		zmq_msg_close(&msg);
		return rc == -EINTR ? -EAGAIN : rc;
	}
	size_t n = zmq_msg_size(&msg);
	bool more = zmq_msg_more(&msg);
	if (more || n == 0) {
		zmq_msg_close(&msg);
		/* A multi-part message is dropped whole: its further parts too. */
		while (more) {
			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&msg);
				break;
			}
			more = zmq_msg_more(&msg);
			zmq_msg_close(&msg);
		}
		return -EBADMSG;
	}
	uint8_t *b = aligned_alloc(8, (n + 7) & ~(size_t)7);
	if (!b) {
		zmq_msg_close(&msg);
		return -ENOMEM;
	}
	memcpy(b, zmq_msg_data(&msg), n);
	zmq_msg_close(&msg);
	p->last_rx = now;
	*buf = b;
	*len = n;
	return 0;
}
