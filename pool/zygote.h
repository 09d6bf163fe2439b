/* The pool's sandbox factory process (see zygote.c). Requests and answers are fixed-size
 * records on a SOCK_SEQPACKET pair; a created sandbox comes back with its socket and pidfd
 * passed as SCM_RIGHTS. */
#ifndef ROLLOUT_POOL_ZYGOTE_H
#define ROLLOUT_POOL_ZYGOTE_H

#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

enum { ZY_CREATE = 1, ZY_DESTROY = 2, ZY_EXIT = 3 };

struct zy_req {
	uint32_t op;
	uint32_t profile; /* index into the profiles given to zy_start */
	uint64_t id;
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
	int fd; /* readable when an answer is waiting */
};

/* Forks the zygote; call before any thread exists. profiles must stay valid. */
int zy_start(struct zygote *z, struct sbx_runtime *rt, const struct sbx_profile *profiles, size_t nprofiles);
int zy_request(struct zygote *z, uint32_t op, uint32_t profile, uint64_t id);
/* Reads one answer; on a successful creation *sock_fd and *pidfd are the sandbox's. */
int zy_receive(struct zygote *z, struct zy_resp *resp, int *sock_fd, int *pidfd);
/* Asks the zygote to destroy every sandbox and exit, and waits for it. */
void zy_stop(struct zygote *z);
uint64_t zy_now_ns(void);

#endif
