/* shm module tests: ring edge cases in one process, then real forked peers with a real
 * SCM_RIGHTS hand-over, dead and hostile peers, sleeping and waking, NUMA binding. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <numa.h>

#include "ring.h"
#include "rollout/error.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void make_seg(struct shm_seg *seg, uint32_t size, uint32_t max_record)
{
	struct shm_seg_opts o = { .sq_size = size,
				  .cq_size = size,
				  .sq_max_record = max_record,
				  .cq_max_record = max_record,
				  .memory_node = -1,
				  .epoch = 42 };
	assert_int_equal(shm_seg_create(seg, &o), 0);
}

struct pair {
	struct shm_seg seg;
	struct shm_writer w;
	struct shm_reader r;
};

static void pair_open(struct pair *p, uint32_t size, uint32_t max_record)
{
	make_seg(&p->seg, size, max_record);
	assert_int_equal(shm_writer_init(&p->w, &p->seg, SHM_SQ, NULL), 0);
	assert_int_equal(shm_reader_init(&p->r, &p->seg, SHM_SQ, NULL), 0);
}

static void pair_close(struct pair *p)
{
	shm_reader_destroy(&p->r);
	shm_seg_close(&p->seg);
}

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i);
}

static int check_fill(const uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 31 + i))
			return 0;
	return 1;
}

static void send_rec(struct shm_writer *w, uint32_t len, uint32_t seed)
{
	int err = 0;
	uint8_t *p = shm_writer_reserve(w, len, &err);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 8, 0);
	fill(p, len, seed);
	assert_int_equal(shm_writer_commit(w, len), 0);
}

static void expect_rec(struct shm_reader *r, uint32_t len, uint32_t seed)
{
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(r, &d, &n), 0);
	assert_int_equal(n, len);
	assert_true(check_fill(d, n, seed));
	shm_reader_release(r);
}

static void test_empty(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 4096, 0);
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&p.r, &d, &n), -EAGAIN);
	assert_int_equal(shm_reader_pending(&p.r), 0);
	assert_int_equal(shm_reader_wait(&p.r, 0), -ETIMEDOUT);
	assert_int_equal(shm_writer_publish(&p.w), 0);
	pair_close(&p);
}

static void test_roundtrip_and_batch(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 4096, 0);
	for (uint32_t i = 0; i < 10; i++)
		send_rec(&p.w, 1 + i * 7, i);
	/* Committed but unpublished records are invisible. */
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&p.r, &d, &n), -EAGAIN);
	int bytes = 0;
	for (uint32_t i = 0; i < 10; i++)
		bytes += (int)((8 + 1 + i * 7 + 7) & ~7u);
	assert_int_equal(shm_writer_publish(&p.w), bytes);
	for (uint32_t i = 0; i < 10; i++) {
		/* peek is idempotent until release */
		assert_int_equal(shm_reader_peek(&p.r, &d, &n), 0);
		expect_rec(&p.r, 1 + i * 7, i);
	}
	assert_int_equal(shm_reader_peek(&p.r, &d, &n), -EAGAIN);
	assert_int_equal(p.r.stats.records, 10);
	assert_int_equal(p.w.stats.records, 10);
	pair_close(&p);
}

static void test_commit_shorter_and_abort(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 4096, 0);
	int err;
	void *x = shm_writer_reserve(&p.w, 1000, &err);
	assert_non_null(x);
	assert_null(shm_writer_reserve(&p.w, 10, &err));
	assert_int_equal(err, -EBUSY);
	assert_int_equal(shm_writer_commit(&p.w, 0), -EINVAL);
	assert_int_equal(shm_writer_commit(&p.w, 1001), -EINVAL);
	fill(x, 10, 5);
	assert_int_equal(shm_writer_commit(&p.w, 10), 0);
	assert_int_equal(shm_writer_commit(&p.w, 10), -EINVAL);
	assert_non_null(shm_writer_reserve(&p.w, 100, &err));
	shm_writer_abort(&p.w);
	shm_writer_publish(&p.w);
	expect_rec(&p.r, 10, 5);
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&p.r, &d, &n), -EAGAIN);
	pair_close(&p);
}

static void test_sizes(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 8192, 0);
	uint32_t max = p.w.g.max_record;
	assert_int_equal(max, 8192 / 2 - 16);
	int err = 0;
	assert_null(shm_writer_reserve(&p.w, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(shm_writer_reserve(&p.w, max + 1, &err));
	assert_int_equal(err, ROLLOUT_E_TOO_BIG);
	assert_int_equal(shm_writer_wait(&p.w, max + 1, 0), ROLLOUT_E_TOO_BIG);
	/* The maximum fits at any offset of an empty ring. */
	for (uint32_t k = 0; k < 40; k++) {
		send_rec(&p.w, max, k);
		shm_writer_publish(&p.w);
		expect_rec(&p.r, max, k);
		send_rec(&p.w, 1 + k * 13, k);
		shm_writer_publish(&p.w);
		expect_rec(&p.r, 1 + k * 13, k);
	}
	pair_close(&p);

	/* Bad geometry is refused at creation. */
	struct shm_seg seg;
	struct shm_seg_opts o = { .sq_size = 5000, .cq_size = 4096, .memory_node = -1 };
	assert_int_equal(shm_seg_create(&seg, &o), -EINVAL);
	o.sq_size = 4096;
	o.sq_max_record = 4096;
	assert_int_equal(shm_seg_create(&seg, &o), -EINVAL);
	o.sq_max_record = 0;
	o.features = 1u << 30;
	assert_int_equal(shm_seg_create(&seg, &o), -EINVAL);
}

static void test_full_ring(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 4096, 0);
	int err = 0;
	uint32_t sent = 0;
	for (;;) {
		void *x = shm_writer_reserve(&p.w, 56, &err);
		if (!x)
			break;
		fill(x, 56, sent);
		shm_writer_commit(&p.w, 56);
		sent++;
	}
	assert_int_equal(err, -EAGAIN);
	assert_int_equal(sent, 4096 / 64);
	shm_writer_publish(&p.w);
	assert_int_equal(shm_writer_wait(&p.w, 56, 10), -ETIMEDOUT);
	/* Nothing is overwritten: everything reads back in order. */
	expect_rec(&p.r, 56, 0);
	/* Released space goes back in batches; a flush hands it back now. */
	shm_reader_flush(&p.r);
	assert_int_equal(shm_writer_wait(&p.w, 56, 0), 0);
	send_rec(&p.w, 56, sent);
	shm_writer_publish(&p.w);
	for (uint32_t i = 1; i <= sent; i++)
		expect_rec(&p.r, 56, i);
	pair_close(&p);
}

static void test_wrap_padding(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, 4096, 0);
	/* 3 records of 1200 payload (1208 each) leave 472 bytes at the end; a 600-byte record
	 * needs a padding record there and starts at offset 0. */
	for (uint32_t i = 0; i < 3; i++)
		send_rec(&p.w, 1200, i);
	shm_writer_publish(&p.w);
	for (uint32_t i = 0; i < 3; i++)
		expect_rec(&p.r, 1200, i);
	shm_reader_flush(&p.r);
	send_rec(&p.w, 600, 9);
	shm_writer_publish(&p.w);
	struct shm_rec_hdr pad;
	memcpy(&pad, p.w.g.data + 3 * 1208, sizeof(pad));
	assert_int_equal(pad.type, SHM_REC_PAD);
	assert_int_equal(pad.len, 4096 - 3 * 1208);
	expect_rec(&p.r, 600, 9);
	assert_int_equal(p.r.head, 4096 + 608);
	/* Many laps with sizes that hit every alignment. */
	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t len = 1 + (i * 2654435761u) % 700;
		send_rec(&p.w, len, i);
		const void *d;
		uint32_t n;
		shm_writer_publish(&p.w);
		assert_int_equal(shm_reader_peek(&p.r, &d, &n), 0);
		assert_int_equal(n, len);
		assert_true(check_fill(d, n, i));
		shm_reader_release(&p.r);
	}
	pair_close(&p);
}

/* Writes a raw record header into the ring as a hostile writer would. */
static void raw_hdr(struct pair *p, uint32_t off, uint32_t len, uint16_t type)
{
	struct shm_rec_hdr h = { .len = len, .type = type };
	memcpy(p->w.g.data + off, &h, sizeof(h));
}

static void expect_refused(struct pair *p)
{
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&p->r, &d, &n), ROLLOUT_E_CORRUPT);
	assert_int_equal(p->r.stats.refused, 1);
	/* Sticky: the channel stays refused. */
	assert_int_equal(shm_reader_peek(&p->r, &d, &n), ROLLOUT_E_CORRUPT);
	assert_int_equal(shm_reader_wait(&p->r, 0), ROLLOUT_E_CORRUPT);
	assert_int_equal(p->r.stats.refused, 1);
}

static void test_hostile_records(void **state)
{
	(void)state;
	struct {
		const char *what;
		uint32_t len;
		uint16_t type;
		uint64_t tail;
	} cases[] = {
		{ "zero length", 0, SHM_REC_DATA, 64 },
		{ "over max_record", 2049, SHM_REC_DATA, 4096 },
		{ "longer than published", 100, SHM_REC_DATA, 64 },
		{ "larger than the ring", 0xfffffff0u, SHM_REC_DATA, 64 },
		{ "unknown type", 8, 7, 64 },
		{ "padding at offset 0", 4096, SHM_REC_PAD, 4096 },
		{ "tail beyond a ring", 8, SHM_REC_DATA, 4096 + 8 },
		{ "misaligned tail", 8, SHM_REC_DATA, 20 },
		{ "tail backwards", 8, SHM_REC_DATA, (uint64_t)-8 },
		{ "short header", 8, SHM_REC_DATA, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pair p;
		pair_open(&p, 4096, 2000);
		if (p.r.g.max_record != 2000)
			fail();
		raw_hdr(&p, 0, cases[i].len, cases[i].type);
		if (cases[i].tail == 0) {
			/* A tail that leaves less than a header visible. */
			send_rec(&p.w, 8, 1);
			shm_writer_publish(&p.w);
			expect_rec(&p.r, 8, 1);
			p.w.g.ctl->tail = 16 + 4; /* not even aligned */
		} else {
			p.w.g.ctl->tail = cases[i].tail;
		}
		print_message("case: %s\n", cases[i].what);
		expect_refused(&p);
		pair_close(&p);
	}

	/* A padding record whose length does not reach the end of the ring. */
	struct pair p;
	pair_open(&p, 4096, 0);
	for (uint32_t i = 0; i < 3; i++)
		send_rec(&p.w, 1200, i);
	shm_writer_publish(&p.w);
	for (uint32_t i = 0; i < 3; i++)
		expect_rec(&p.r, 1200, i);
	raw_hdr(&p, 3 * 1208, 100, SHM_REC_PAD);
	p.w.g.ctl->tail = 4096 + 64;
	expect_refused(&p);
	pair_close(&p);

	/* A consumer index that runs ahead of what was published breaks the writer. */
	pair_open(&p, 4096, 0);
	int err = 0;
	while (shm_writer_send(&p.w, "0123456789", 10) == 0)
		;
	p.r.g.ctl->head = 4096 * 3;
	assert_null(shm_writer_reserve(&p.w, 56, &err));
	assert_int_equal(err, ROLLOUT_E_CORRUPT);
	assert_int_equal(p.w.stats.refused, 1);
	pair_close(&p);
}

static void test_attach_checks(void **state)
{
	(void)state;
	struct shm_seg a, b;
	make_seg(&a, 4096, 0);
	/* Sealed: the peer cannot shrink or grow it. */
	assert_int_equal(ftruncate(a.fd, 4096), -1);
	assert_int_equal(errno, EPERM);
	int fd = dup(a.fd);
	assert_int_equal(shm_seg_attach(&b, fd, a.size + 4096), -EMSGSIZE);
	assert_int_equal(shm_seg_attach(&b, fd, a.size), 0);
	assert_int_equal(b.hdr.sq.size, 4096);
	assert_int_equal(b.hdr.live.epoch, 42);
	shm_seg_close(&b);

	struct shm_seg_hdr *h = a.base;
	struct shm_seg_hdr saved = *h;
	/* Each header corruption, one at a time. */
	for (int k = 0; k < 11; k++) {
		*h = saved;
		int want = ROLLOUT_E_ABI;
		switch (k) {
		case 0:
			h->magic ^= 1;
			break;
		case 1:
			h->abi_version = 2;
			break;
		case 2:
			h->features |= 1u << 20;
			break;
		case 3:
			h->hdr_size = 64;
			break;
		case 4:
			h->seg_size += 4096;
			want = -EMSGSIZE;
			break;
		case 5:
			h->sq.size = 3000;
			break;
		case 6:
			h->sq.max_record = h->sq.size;
			break;
		case 7:
			h->cq.data_off = a.size - 2048;
			break;
		case 8:
			h->cq.ctl_off = 8;
			break;
		case 9:
			h->cq.data_off = h->sq.data_off;
			break;
		case 10:
			h->sq.ctl_off = h->sq.data_off;
			break;
		}
		fd = dup(a.fd);
		int rc = shm_seg_attach(&b, fd, 0);
		if (rc != want)
			fail_msg("header case %d: got %d (%s), want %d", k, rc, rollout_err_name(rc), want);
		close(fd);
	}
	*h = saved;
	shm_seg_close(&a);

	/* Not a memfd / not sealed. */
	int plain = memfd_create("unsealed", MFD_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(ftruncate(plain, 1 << 20), 0);
	assert_int_equal(shm_seg_attach(&b, plain, 0), -EPERM);
	close(plain);
	char tmpl[] = "/tmp/rollout-shm-XXXXXX";
	int tf = mkstemp(tmpl);
	assert_true(tf >= 0);
	unlink(tmpl);
	assert_int_equal(shm_seg_attach(&b, tf, 0), -EPERM);
	close(tf);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* The child is the trainer: it receives the segment over the socket, checks the sender,
 * streams records into the SQ and reads the replies from the CQ. */
static int trainer_child(int sock, pid_t parent, uint32_t nrec)
{
	int fds[1];
	unsigned nfds = 0;
	uint64_t size;
	int before = count_fds();
	int n = shm_recv_fds(sock, &size, sizeof(size), fds, 1, &nfds);
	if (n != sizeof(size) || nfds != 1)
		return 10;
	/* The parent sent two extra descriptors: they were closed, only the segment is new. */
	if (count_fds() != before + 1)
		return 11;
	int pid;
	unsigned uid, gid;
	if (shm_peer_cred(sock, &pid, &uid, &gid) || pid != parent || uid != getuid())
		return 12;
	struct shm_seg seg;
	if (shm_seg_attach(&seg, fds[0], size))
		return 13;
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = sock;
	struct shm_writer w;
	struct shm_reader r;
	if (shm_writer_init(&w, &seg, SHM_SQ, &wc) || shm_reader_init(&r, &seg, SHM_CQ, &wc))
		return 14;
	uint32_t sent = 0, got = 0;
	while (got < nrec) {
		while (sent < nrec && sent - got < 64) {
			int err;
			uint8_t *p = shm_writer_reserve(&w, 100, &err);
			if (!p)
				break;
			memcpy(p, &sent, 4);
			fill(p + 4, 96, sent);
			shm_writer_commit(&w, 100);
			sent++;
		}
		shm_writer_publish(&w);
		const void *d;
		uint32_t len;
		int rc = shm_reader_peek(&r, &d, &len);
		if (rc == -EAGAIN) {
			rc = shm_reader_wait(&r, 5000);
			if (rc)
				return 15;
			continue;
		}
		uint32_t v;
		memcpy(&v, d, 4);
		if (rc || len != 8 || v != got)
			return 16;
		shm_reader_release(&r);
		got++;
	}
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	return 0;
}

static void test_cross_process_scm_rights(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	const uint32_t nrec = 20000;
	pid_t parent = getpid();
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(sv[0]);
		_exit(trainer_child(sv[1], parent, nrec));
	}
	close(sv[1]);
	struct shm_seg seg;
	struct shm_seg_opts o = { .sq_size = 8192, .cq_size = 4096, .memory_node = -1, .epoch = 7 };
	assert_int_equal(shm_seg_create(&seg, &o), 0);
	uint64_t size = seg.size;
	int extra1 = eventfd(0, EFD_CLOEXEC), extra2 = eventfd(0, EFD_CLOEXEC);
	int fds[3] = { seg.fd, extra1, extra2 };
	assert_int_equal(shm_send_fds(sv[0], &size, sizeof(size), fds, 3), 0);
	close(extra1);
	close(extra2);

	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = sv[0];
	struct shm_reader r;
	struct shm_writer w;
	assert_int_equal(shm_reader_init(&r, &seg, SHM_SQ, &wc), 0);
	assert_int_equal(shm_writer_init(&w, &seg, SHM_CQ, &wc), 0);
	for (uint32_t i = 0; i < nrec; i++) {
		const void *d;
		uint32_t len;
		int rc;
		while ((rc = shm_reader_peek(&r, &d, &len)) == -EAGAIN)
			assert_int_equal(shm_reader_wait(&r, 5000), 0);
		assert_int_equal(rc, 0);
		assert_int_equal(len, 100);
		uint32_t v;
		memcpy(&v, d, 4);
		assert_int_equal(v, i);
		assert_true(check_fill((const uint8_t *)d + 4, 96, i));
		shm_reader_release(&r);
		uint64_t reply = i;
		while ((rc = shm_writer_send(&w, &reply, 8)) == -EAGAIN)
			assert_int_equal(shm_writer_wait(&w, 8, 5000), 0);
		assert_int_equal(rc, 0);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	close(sv[0]);
}

/* A writer killed between reserve and commit: the reader learns it within a second from
 * the liveness fd (socket EOF or pidfd), and the half-built record never becomes visible. */
static void dead_writer(bool use_pidfd)
{
	struct shm_seg seg;
	make_seg(&seg, 4096, 0);
	int sv[2], ready[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(sv[0]);
		struct shm_writer w;
		if (shm_writer_init(&w, &seg, SHM_SQ, NULL))
			_exit(1);
		shm_writer_send(&w, "whole", 5);
		int err;
		uint8_t *p = shm_writer_reserve(&w, 64, &err);
		memset(p, 'x', 64);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(sv[1]);
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	int pidfd = -1;
	if (use_pidfd) {
		pidfd = (int)syscall(SYS_pidfd_open, child, 0);
		assert_true(pidfd >= 0);
		wc.peer_fd = pidfd;
	} else {
		wc.peer_fd = sv[0];
	}
	struct shm_reader r;
	assert_int_equal(shm_reader_init(&r, &seg, SHM_SQ, &wc), 0);
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&r, &d, &n), 0);
	assert_memory_equal(d, "whole", 5);
	shm_reader_release(&r);
	/* Alive and idle: a bounded wait times out. */
	assert_int_equal(shm_reader_wait(&r, 100), -ETIMEDOUT);
	kill(child, SIGKILL);
	uint64_t t0 = now_ms();
	int rc = shm_reader_wait(&r, 10000);
	uint64_t dt = now_ms() - t0;
	assert_int_equal(rc, ROLLOUT_E_PEER_DEAD);
	assert_true(dt < 1000);
	print_message("dead writer (%s) noticed after %llu ms\n", use_pidfd ? "pidfd" : "socket EOF",
		      (unsigned long long)dt);
	assert_int_equal(shm_reader_peek(&r, &d, &n), -EAGAIN);
	assert_int_equal(shm_reader_pending(&r), 0);
	waitpid(child, NULL, 0);
	if (pidfd >= 0)
		close(pidfd);
	close(sv[0]);
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
}

static void test_dead_writer_socket(void **state)
{
	(void)state;
	dead_writer(false);
}

static void test_dead_writer_pidfd(void **state)
{
	(void)state;
	dead_writer(true);
}

/* A writer blocked on a full ring whose reader dies is released with PEER_DEAD. */
static void test_dead_reader(void **state)
{
	(void)state;
	struct shm_seg seg;
	make_seg(&seg, 4096, 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(sv[0]);
		pause();
		_exit(0);
	}
	close(sv[1]);
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = sv[0];
	struct shm_writer w;
	assert_int_equal(shm_writer_init(&w, &seg, SHM_SQ, &wc), 0);
	while (shm_writer_send(&w, "0123456789abcdef", 16) == 0)
		;
	assert_int_equal(shm_writer_wait(&w, 16, 50), -ETIMEDOUT);
	kill(child, SIGKILL);
	uint64_t t0 = now_ms();
	assert_int_equal(shm_writer_wait(&w, 16, 10000), ROLLOUT_E_PEER_DEAD);
	assert_true(now_ms() - t0 < 1000);
	waitpid(child, NULL, 0);
	close(sv[0]);
	shm_seg_close(&seg);
}

/* A side that closes its segment says so: the peer's wait ends with SHUTDOWN at once. */
static void test_peer_closing(void **state)
{
	(void)state;
	struct shm_seg a, b;
	make_seg(&a, 4096, 0);
	assert_int_equal(shm_seg_attach(&b, dup(a.fd), a.size), 0);
	struct shm_reader r;
	assert_int_equal(shm_reader_init(&r, &b, SHM_CQ, NULL), 0);
	shm_seg_heartbeat(&a);
	shm_seg_heartbeat(&b);
	assert_true(((struct shm_seg_hdr *)b.base)->live.owner_heartbeat > 0);
	assert_true(((struct shm_seg_hdr *)b.base)->live.client_heartbeat > 0);
	assert_int_equal(shm_seg_state(&b), SHM_STATE_LIVE);
	shm_seg_close(&a);
	assert_int_equal(shm_seg_state(&b), SHM_STATE_CLOSING);
	uint64_t t0 = now_ms();
	assert_int_equal(shm_reader_wait(&r, 5000), ROLLOUT_E_SHUTDOWN);
	assert_true(now_ms() - t0 < 100);
	shm_reader_destroy(&r);
	shm_seg_close(&b);
}

/* Event-loop style: the reader arms, sleeps in poll() on its eventfd, and the writer's
 * publish signals that eventfd exactly when the reader said it sleeps. */
static void test_eventfd_wakeup(void **state)
{
	(void)state;
	struct shm_seg seg;
	make_seg(&seg, 4096, 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct shm_waitcfg rc_cfg, wc_cfg;
	shm_waitcfg_default(&rc_cfg);
	shm_waitcfg_default(&wc_cfg);
	rc_cfg.wait_fd = efd;
	wc_cfg.wake_fd = efd;
	struct shm_reader r;
	struct shm_writer w;
	assert_int_equal(shm_reader_init(&r, &seg, SHM_SQ, &rc_cfg), 0);
	assert_int_equal(shm_writer_init(&w, &seg, SHM_SQ, &wc_cfg), 0);
	/* Not armed: publishing does not touch the eventfd. */
	assert_int_equal(shm_writer_send(&w, "a", 1), 0);
	struct pollfd p = { .fd = efd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(shm_reader_arm(&r), -EAGAIN); /* a record is there: do not sleep */
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&r, &d, &n), 0);
	shm_reader_release(&r);
	assert_int_equal(shm_reader_arm(&r), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(shm_writer_send(&w, "b", 1), 0);
	assert_int_equal(poll(&p, 1, 1000), 1);
	shm_reader_disarm(&r);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(w.stats.wakeups, 1);
	assert_int_equal(shm_reader_peek(&r, &d, &n), 0);
	assert_memory_equal(d, "b", 1);
	shm_reader_release(&r);
	/* The blocking wait in eventfd mode, woken from another thread's publish. */
	assert_int_equal(shm_reader_wait(&r, 20), -ETIMEDOUT);
	assert_int_equal(shm_writer_send(&w, "c", 1), 0);
	assert_int_equal(shm_reader_wait(&r, 1000), 0);
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	close(efd);
}

static void test_numa_binding(void **state)
{
	(void)state;
	/* Its own ctest entry (test_shm_numa): a machine without NUMA support shows it as a
	 * skip there, with this reason, instead of a pass. */
	if (numa_available() < 0) {
		fprintf(stderr, "no NUMA support on this machine (numa_available() < 0); skipping\n");
		exit(77);
	}
	struct shm_seg seg;
	struct shm_seg_opts o = { .sq_size = 1 << 16, .cq_size = 1 << 16, .memory_node = 0 };
	assert_int_equal(shm_seg_create(&seg, &o), 0);
	assert_int_equal(seg.hdr.memory_node, 0);
	assert_int_equal(shm_page_node(seg.base, seg.size), 0);
	/* The attaching side sees the same pages on the same node. */
	struct shm_seg b;
	assert_int_equal(shm_seg_attach(&b, dup(seg.fd), seg.size), 0);
	assert_int_equal(shm_page_node(b.base, b.size), 0);
	assert_int_equal(((struct shm_seg_hdr *)b.base)->memory_node, 0);
	shm_seg_close(&b);
	shm_seg_close(&seg);
	o.memory_node = numa_max_node() + 1;
	assert_int_equal(shm_seg_create(&seg, &o), -EINVAL);
}

/* Huge pages when the system has them: reserve a few for the test if we may, and put them
 * back afterwards; without any, the segment silently uses normal pages. */
static void test_hugepages(void **state)
{
	(void)state;
	struct shm_seg seg;
	struct shm_seg_opts o = {
		.sq_size = 1 << 20, .cq_size = 1 << 20, .memory_node = -1, .try_hugepages = true
	};
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");
	long before = -1;
	if (f && fscanf(f, "%ld", &before) != 1)
		before = -1;
	if (f)
		fclose(f);
	bool raised = false;
	if (before == 0 && getuid() == 0) {
		f = fopen("/proc/sys/vm/nr_hugepages", "w");
		if (f) {
			raised = fprintf(f, "4\n") > 0;
			raised = (fclose(f) == 0) && raised;
		}
	}
	assert_int_equal(shm_seg_create(&seg, &o), 0);
	if (raised || before > 0) {
		print_message("hugetlb backing: %s, segment %zu bytes\n", seg.hugepages ? "yes" : "no",
			      seg.size);
		if (raised)
			assert_true(seg.hugepages);
	} else {
		assert_false(seg.hugepages);
	}
	if (seg.hugepages)
		assert_true(seg.hdr.features & SHM_FEAT_HUGEPAGES);
	/* Either way the rings work. */
	struct shm_writer w;
	struct shm_reader r;
	assert_int_equal(shm_writer_init(&w, &seg, SHM_CQ, NULL), 0);
	assert_int_equal(shm_reader_init(&r, &seg, SHM_CQ, NULL), 0);
	assert_int_equal(shm_writer_send(&w, "hp", 2), 0);
	const void *d;
	uint32_t n;
	assert_int_equal(shm_reader_peek(&r, &d, &n), 0);
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	if (raised) {
		f = fopen("/proc/sys/vm/nr_hugepages", "w");
		if (f) {
			fprintf(f, "0\n");
			fclose(f);
		}
	}
}

/* A hostile peer scribbles random bytes over the header, the control block and the data
 * while this process keeps writing and reading: every inconsistency is refused and
 * counted, nothing crashes, no record handed out is larger than the reader's buffer. */
static void test_scribbler(void **state)
{
	(void)state;
	struct shm_seg seg;
	make_seg(&seg, 8192, 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		uint64_t x = 88172645463325252ull;
		uint8_t *base = seg.base;
		size_t span = seg.hdr.sq.data_off + seg.hdr.sq.size;
		for (;;) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t off = x % span;
			if ((x >> 40) % 8 == 0) /* aim at the control lines often */
				off = seg.hdr.sq.ctl_off + (x >> 20) % 64;
			base[off] = (uint8_t)(x >> 32);
			if ((x & 0xf) == 0)
				usleep(100);
		}
	}
	uint64_t refused = 0, records = 0, rounds = 0, t0 = now_ms();
	struct shm_ring_ctl *ctl = (struct shm_ring_ctl *)((uint8_t *)seg.base + seg.hdr.sq.ctl_off);
	/* At least 1.5 s, and until the scribbler got through at least once (a loaded machine
	 * may give it little time), at most 20 s. */
	while (now_ms() - t0 < 1500 || (refused == 0 && now_ms() - t0 < 20000)) {
		/* Attach as a fresh peer would, from reset indices (the scribbler keeps going). */
		ctl->head = ctl->tail = 0;
		struct shm_writer w;
		struct shm_reader r;
		int rc = shm_reader_init(&r, &seg, SHM_SQ, NULL);
		assert_int_not_equal(rc, -ENOMEM);
		if (rc == 0)
			rc = shm_writer_init(&w, &seg, SHM_SQ, NULL);
		if (rc) {
			assert_int_equal(rc, ROLLOUT_E_CORRUPT);
			refused++;
			shm_reader_destroy(&r);
			continue;
		}
		rounds++;
		for (int i = 0; i < 2000; i++) {
			shm_writer_send(&w, "payload-payload-payload", 23);
			const void *d;
			uint32_t n;
			rc = shm_reader_peek(&r, &d, &n);
			if (rc == ROLLOUT_E_CORRUPT)
				break;
			if (rc == 0) {
				assert_true(n >= 1 && n <= r.g.max_record);
				volatile uint8_t last = ((const uint8_t *)d)[n - 1];
				(void)last;
				shm_reader_release(&r);
				records++;
			}
			if (shm_reader_wait(&r, 0) == ROLLOUT_E_SHUTDOWN)
				((struct shm_seg_hdr *)seg.base)->live.state = SHM_STATE_LIVE;
		}
		refused += r.stats.refused + w.stats.refused;
		shm_reader_destroy(&r);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	print_message("scribbler: %llu rounds, %llu records read, %llu refusals\n",
		      (unsigned long long)rounds, (unsigned long long)records, (unsigned long long)refused);
	assert_true(refused > 0);
	shm_seg_close(&seg);
}

/* Stress: a producer and a consumer thread move N records (ROLLOUT_STRESS_RECORDS, default
 * 10 million) of random sizes through a small ring with random pauses on both sides, so
 * both sleep and wake often. Every record is checked; a lost wake-up hangs and times out. */
struct stress {
	struct shm_seg *seg;
	uint64_t n;
	uint64_t sum_w, sum_r;
	int rc_w, rc_r;
	uint64_t sleeps_r, sleeps_w, wakeups_w, wakeups_r;
};

static uint32_t xs(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void pause_sometimes(uint32_t *s)
{
	uint32_t v = xs(s);
	if (v % 50000 == 0)
		usleep(v % 2000);
	else if (v % 5000 == 0)
		sched_yield();
}

static void *stress_writer(void *arg)
{
	struct stress *st = arg;
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.spin_ns = 2000;
	struct shm_writer w;
	st->rc_w = shm_writer_init(&w, st->seg, SHM_SQ, &wc);
	uint32_t seed = 12345;
	for (uint64_t i = 0; i < st->n && !st->rc_w; i++) {
		uint32_t len = 8 + xs(&seed) % 120;
		int err;
		uint8_t *p;
		while (!(p = shm_writer_reserve(&w, len, &err))) {
			if (err != -EAGAIN || (st->rc_w = shm_writer_wait(&w, len, 10000)))
				goto out;
		}
		memcpy(p, &i, 8);
		memset(p + 8, (int)(i & 0xff), len - 8);
		shm_writer_commit(&w, len);
		st->sum_w += len;
		if ((i & 7) == 7 || i + 1 == st->n)
			shm_writer_publish(&w);
		pause_sometimes(&seed);
	}
	shm_writer_publish(&w);
out:
	st->sleeps_w = w.stats.sleeps;
	st->wakeups_w = w.stats.wakeups;
	return NULL;
}

static void *stress_reader(void *arg)
{
	struct stress *st = arg;
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.spin_ns = 2000;
	struct shm_reader r;
	st->rc_r = shm_reader_init(&r, st->seg, SHM_SQ, &wc);
	uint32_t seed = 999;
	for (uint64_t i = 0; i < st->n && !st->rc_r; i++) {
		const void *d;
		uint32_t n;
		int rc;
		while ((rc = shm_reader_peek(&r, &d, &n)) == -EAGAIN) {
			if ((rc = shm_reader_wait(&r, 10000)))
				break;
		}
		if (rc) {
			st->rc_r = rc;
			break;
		}
		uint64_t seq;
		memcpy(&seq, d, 8);
		const uint8_t *b = d;
		if (seq != i || n < 8 || b[n - 1] != (n > 8 ? (uint8_t)(i & 0xff) : b[n - 1])) {
			st->rc_r = -EBADMSG;
			break;
		}
		st->sum_r += n;
		shm_reader_release(&r);
		pause_sometimes(&seed);
	}
	st->sleeps_r = r.stats.sleeps;
	st->wakeups_r = r.stats.wakeups;
	shm_reader_destroy(&r);
	return NULL;
}

static void test_stress(void **state)
{
	(void)state;
	const char *env = getenv("ROLLOUT_STRESS_RECORDS");
	struct shm_seg seg;
	make_seg(&seg, 4096, 0);
	struct stress st = { .seg = &seg, .n = env ? strtoull(env, NULL, 10) : 10000000ull };
	pthread_t tw, tr;
	uint64_t t0 = now_ms();
	assert_int_equal(pthread_create(&tr, NULL, stress_reader, &st), 0);
	assert_int_equal(pthread_create(&tw, NULL, stress_writer, &st), 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	print_message(
	    "stress: %llu records in %llu ms; reader slept %llu times, writer %llu; wake-ups %llu/%llu\n",
	    (unsigned long long)st.n, (unsigned long long)(now_ms() - t0), (unsigned long long)st.sleeps_r,
	    (unsigned long long)st.sleeps_w, (unsigned long long)st.wakeups_w,
	    (unsigned long long)st.wakeups_r);
	assert_int_equal(st.rc_w, 0);
	assert_int_equal(st.rc_r, 0);
	assert_int_equal(st.sum_w, st.sum_r);
	assert_true(st.sleeps_r + st.sleeps_w > 0);
	shm_seg_close(&seg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_roundtrip_and_batch),
		cmocka_unit_test(test_commit_shorter_and_abort),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_full_ring),
		cmocka_unit_test(test_wrap_padding),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_attach_checks),
		cmocka_unit_test(test_cross_process_scm_rights),
		cmocka_unit_test(test_dead_writer_socket),
		cmocka_unit_test(test_dead_writer_pidfd),
		cmocka_unit_test(test_dead_reader),
		cmocka_unit_test(test_peer_closing),
		cmocka_unit_test(test_eventfd_wakeup),
		cmocka_unit_test(test_numa_binding),
		cmocka_unit_test(test_hugepages),
		cmocka_unit_test(test_scribbler),
	};
	const struct CMUnitTest stress[] = { cmocka_unit_test(test_stress) };
	/* "stress" runs only the stress test (the TSan pass), "numa" only the NUMA binding
	 * (which may skip); otherwise everything but those. */
	if (argc > 1 && strcmp(argv[1], "stress") == 0)
		return cmocka_run_group_tests_name("shm_stress", stress, NULL, NULL);
	if (argc > 1 && strcmp(argv[1], "numa") == 0)
		cmocka_set_test_filter("test_numa_binding");
	else
		cmocka_set_skip_filter("test_numa_binding");
	return cmocka_run_group_tests_name("shm", tests, NULL, NULL);
}
