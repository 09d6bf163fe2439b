/* The pool's CURVE authenticator: a ZAP handler (RFC 27) on its own thread that accepts
 * CURVE clients whose public key is on the allowlist and refuses everything else, so a
 * peer not on the list never delivers a message. */
#ifndef ROLLOUT_POOL_ZAP_H
#define ROLLOUT_POOL_ZAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zap {
	void *sock; /* REP on inproc://zeromq.zap.01, owned by the thread once it runs */
	pthread_t thread;
	bool running;
	uint8_t (*allowed)[32];
	size_t nallowed;
	void (*refused)(void *arg); /* counts a refusal; may be NULL */
	void *arg;
};

/* Decodes the Z85 keys and binds the handler before returning, so no connection can
 * arrive before it is there. 0, or -EINVAL / -ENOMEM / -errno with err filled. */
int zap_start(struct zap *z, void *zctx, char *const *keys_z85, size_t nkeys, void (*refused)(void *arg),
	      void *arg, char *err, size_t errsz);
/* Call after zmq_ctx_shutdown (which ends the handler's wait): joins and frees. */
void zap_join(struct zap *z);

#endif
