/* ZAP handler (see zap.h). One request is up to 7 frames (version, request id, domain,
 * address, identity, mechanism, client key); anything beyond is drained and the request
 * refused. */
#include "zap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_MAX_PARTS 8

static bool allowed(const struct zap *z, const zmq_msg_t *part, int n)
{
	if (n < 7 || zmq_msg_size((zmq_msg_t *)&part[5]) != 5 ||
	    memcmp(zmq_msg_data((zmq_msg_t *)&part[5]), "CURVE", 5) != 0 ||
	    zmq_msg_size((zmq_msg_t *)&part[6]) != 32)
		return false;
	for (size_t i = 0; i < z->nallowed; i++)
		if (memcmp(zmq_msg_data((zmq_msg_t *)&part[6]), z->allowed[i], 32) == 0)
			return true;
	return false;
}

/* 0, or -1 when the context is gone (the thread ends). */
static int reply(void *s, const void *reqid, size_t reqid_len, bool ok)
{
	if (zmq_send(s, "1.0", 3, ZMQ_SNDMORE) < 0 || zmq_send(s, reqid, reqid_len, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s, ok ? "200" : "400", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(s, "", 0, 0) < 0)
		return -1;
	return 0;
}

static void *zap_main(void *arg)
{
	struct zap *z = arg;
	for (;;) {
		zmq_msg_t part[ZAP_MAX_PARTS];
		int n = 0, more = 1;
		bool gone = false;
		while (more && n < ZAP_MAX_PARTS) {
			zmq_msg_init(&part[n]);
			if (zmq_msg_recv(&part[n], z->sock, 0) < 0) {
				zmq_msg_close(&part[n]);
				gone = true; /* context terminated */
				break;
			}
			more = zmq_msg_more(&part[n]);
			n++;
		}
		bool extra = false;
		while (!gone && more) {
			zmq_msg_t x;
			zmq_msg_init(&x);
			if (zmq_msg_recv(&x, z->sock, 0) < 0)
				gone = true;
			more = !gone && zmq_msg_more(&x);
			zmq_msg_close(&x);
			extra = true;
		}
		bool ok = !gone && !extra && allowed(z, part, n);
		if (!gone && !ok && z->refused)
			z->refused(z->arg);
		if (!gone && reply(z->sock, n > 1 ? zmq_msg_data(&part[1]) : "",
				   n > 1 ? zmq_msg_size(&part[1]) : 0, ok))
			gone = true;
		for (int i = 0; i < n; i++)
			zmq_msg_close(&part[i]);
		if (gone)
			break;
	}
	zmq_close(z->sock);
	z->sock = NULL;
	return NULL;
}

int zap_start(struct zap *z, void *zctx, char *const *keys_z85, size_t nkeys, void (*refused)(void *arg),
	      void *arg, char *err, size_t errsz)
{
	memset(z, 0, sizeof(*z));
	z->refused = refused;
	z->arg = arg;
	z->allowed = calloc(nkeys ? nkeys : 1, 32);
	if (!z->allowed)
		return -ENOMEM;
	for (size_t i = 0; i < nkeys; i++)
		if (strlen(keys_z85[i]) != 40 || !zmq_z85_decode(z->allowed[i], keys_z85[i])) {
			snprintf(err, errsz, "curve_allowed[%zu] is not valid Z85", i);
			return -EINVAL;
		}
	z->nallowed = nkeys;
	z->sock = zmq_socket(zctx, ZMQ_REP);
	if (!z->sock) {
		snprintf(err, errsz, "ZAP socket: %s", zmq_strerror(errno));
		return -errno;
	}
	int zero = 0;
	if (zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_bind(z->sock, "inproc://zeromq.zap.01") < 0) {
		int rc = -errno;
		snprintf(err, errsz, "ZAP handler: %s", zmq_strerror(errno));
		zmq_close(z->sock);
		z->sock = NULL;
		return rc;
	}
	int rc = pthread_create(&z->thread, NULL, zap_main, z);
	if (rc) {
		snprintf(err, errsz, "ZAP thread: %s", strerror(rc));
		zmq_close(z->sock);
		z->sock = NULL;
		return -rc;
	}
	z->running = true;
	return 0;
}

void zap_join(struct zap *z)
{
	if (z->running)
		pthread_join(z->thread, NULL);
	else if (z->sock)
		zmq_close(z->sock);
	z->running = false;
	z->sock = NULL;
	free(z->allowed);
	z->allowed = NULL;
}
