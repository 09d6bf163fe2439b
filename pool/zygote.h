/* The pool's sandbox factory process (see zygote.c). Requests and answers are fixed-size
 * records on a SOCK_SEQPACKET pair; a created sandbox comes back with its socket and pidfd
 * passed as SCM_RIGHTS. */
#ifndef ROLLOUT_POOL_ZYGOTE_H
#define ROLLOUT_POOL_ZYGOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"
#include "snapstore.h"

#define ZY_MAX_PACKET (64u << 10) /* a ZY_IMAGE record at most */

enum { ZY_CREATE = 1, ZY_DESTROY = 2, ZY_EXIT = 3, ZY_IMAGE = 4 };

struct zy_req {
	uint32_t op;
	uint32_t profile; /* index into the profiles given to zy_start */
	uint64_t id;
	char snap[SNAP_ID_MAX]; /* ZY_CREATE: the snapshot to start from, or "" */
};

struct zy_resp {
	uint32_t op;
	int32_t status; /* 0 or -errno of the creation */
	uint64_t id;
	int32_t pid;
	uint32_t uid;
	uint64_t create_ns; /* time the creation took inside the zygote */
	uint64_t oom_before;
};

struct zygote {
	pid_t pid;
	int fd; /* pool's end, non-blocking: readable when an answer waits */
	/* Requests the socket did not take yet, sent in order by zy_flush. */
	struct zy_req *q;
	size_t qhead, qlen, qcap;
};

/* Forks the zygote; call before any thread exists. profiles must stay valid. */
int zy_start(struct zygote *z, struct sbx_runtime *rt, const struct sbx_profile *profiles, size_t nprofiles);
/* Queues a request and sends what the socket takes now; never blocks. 0: all sent; 1:
 * some wait (watch the fd for EPOLLOUT and call zy_flush); -ENOMEM; -errno when the
 * zygote is gone. */
int zy_request(struct zygote *z, uint32_t op, uint32_t profile, uint64_t id);
/* Sends queued requests: 0 when none are left, 1 when some still wait, or -errno. */
int zy_flush(struct zygote *z);
static inline bool zy_pending(const struct zygote *z)
{
	return z->qlen > 0;
}
/* Gives the zygote a profile's resolved image and its environment (NULL-terminated): its
 * sandboxes can be created from then on. Waits up to a second for room on the socket. */
int zy_image(struct zygote *z, uint32_t profile, const struct sbx_image *img, const char *const *env);
/* ZY_CREATE from a snapshot (snap: its id; NULL: the bare image). */
int zy_request_from(struct zygote *z, uint32_t profile, uint64_t id, const char *snap);
/* Reads one answer; on a successful creation *sock_fd and *pidfd are the sandbox's.
 * -EAGAIN when none waits, -EPIPE when the zygote is gone. */
int zy_receive(struct zygote *z, struct zy_resp *resp, int *sock_fd, int *pidfd);
/* Closes the link (the zygote then destroys every sandbox and exits) and waits for it. */
void zy_stop(struct zygote *z);
uint64_t zy_now_ns(void);

#endif
