/* Small helpers both daemons need: the monotonic clock and a 64-bit hash mix. Header-only
 * so the hot paths inline them. */
#ifndef ROLLOUT_COMMON_UTIL_H
#define ROLLOUT_COMMON_UTIL_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: every deadline, timeout and latency in the daemons. */
static inline uint64_t rollout__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A finaliser (murmur3's fmix64): ids handed out in sequence spread over every bucket. */
static inline uint64_t rollout__mix64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ull;
	v ^= v >> 33;
	return v;
}

/* Appends item to a singly linked FIFO kept as head and tail pointers (next is the link
 * field's name). */
#define ROLLOUT_FIFO_APPEND(head, tail, item, next) \
	do {                                        \
		(item)->next = NULL;                \
		if (tail)                           \
			(tail)->next = (item);      \
		else                                \
			(head) = (item);            \
		(tail) = (item);                    \
	} while (0)

#define ROLLOUT_MS(ms) ((uint64_t)(ms)*1000000ull)

#endif
