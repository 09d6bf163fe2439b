/* Memory ordering for the shared rings, in one place. Index publication is a store-release
 * matched by a load-acquire on the other side; the sleep/wake handshake (store my index, then
 * look at the peer's waiting flag, against: set my waiting flag, then look at the index) needs
 * the two sides' store->load pairs ordered, which seq_cst accesses give without a standalone
 * fence (TSan does not model fences). */
#ifndef ROLLOUT_SHM_BARRIER_H
#define ROLLOUT_SHM_BARRIER_H

#define shm_load_acquire(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define shm_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define shm_load_relaxed(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define shm_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define shm_load_seqcst(p)      __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define shm_store_seqcst(p, v)  __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define shm_xchg(p, v)          __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

static inline void shm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
