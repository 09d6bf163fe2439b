/* The sandbox's system-call filter, built once at pool start with libseccomp and kept as
 * a BPF program, so a new sandbox only hands it to the kernel (the child of clone must not
 * allocate). What it refuses, and how, is the list in syscalls.c. */
#ifndef ROLLOUT_POOL_SYSCALLS_H
#define ROLLOUT_POOL_SYSCALLS_H

#include <linux/filter.h>

/* 0 and *out (malloc'ed, one block: free(*out)), or a negative errno. */
int sbx_seccomp_build(struct sock_fprog **out);

#endif
