/* Init framing alone (pool/frame.c) over a socketpair with small buffers: frames larger
 * than the socket takes are written in parts without blocking, input arriving a byte at a
 * time is reassembled, oversized and empty frames are refused both ways, EOF is seen, and
 * a callback that stops the reader stops it at once. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"

struct got {
	int n;
	size_t len[8];
	uint8_t first[8], last[8];
	bool aligned;
	int stop_after;
};

static int collect(void *arg, const uint8_t *msg, size_t len)
{
	struct got *g = arg;
	g->aligned = g->aligned && ((uintptr_t)msg & 7) == 0;
	if (g->n < 8) {
		g->len[g->n] = len;
		g->first[g->n] = msg[0];
		g->last[g->n] = msg[len - 1];
	}
	g->n++;
	return g->stop_after && g->n == g->stop_after ? 42 : 0;
}

static void pair(int sv[2], int bufsz)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	}
}

/* Issue 10 #9: a frame far larger than the socket buffer never blocks the writer. */
static void test_partial_writes(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 4096);
	struct frame_io w, r;
	frame_init(&w, sv[0], 1u << 24);
	frame_init(&r, sv[1], 1u << 24);
	size_t len = 3u << 20;
	uint8_t *msg = malloc(len);
	for (size_t i = 0; i < len; i++)
		msg[i] = (uint8_t)(i * 7);
	assert_int_equal(frame_send(&w, msg, len), 1); /* did not fit: the rest waits */
	assert_true(frame_pending(&w));
	assert_int_equal(frame_send(&w, "tail", 4), 1); /* queued behind, in order */
	struct got g = { .aligned = true };
	int rounds = 0, rc = 1;
	while ((rc = frame_flush(&w)) == 1 || g.n < 2) {
		assert_true(rc >= 0);
		assert_int_equal(frame_receive(&r, collect, &g), 0);
		assert_true(++rounds < 100000);
	}
	assert_false(frame_pending(&w));
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], len);
	assert_int_equal(g.first[0], msg[0]);
	assert_int_equal(g.last[0], msg[len - 1]);
	assert_int_equal(g.len[1], 4);
	assert_true(g.aligned);
	print_message("3 MiB through a 4 KiB socket in %d rounds\n", rounds);
	free(msg);
	frame_fini(&w);
	frame_fini(&r);
	close(sv[0]);
	close(sv[1]);
}

/* A frame handed over whole (frame_send_owned) is written from the caller's buffer, in
 * order with frames queued before and after it, and freed once out (ASan: no leak, no
 * use after free). */
static void test_owned_frames_in_order(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 4096);
	struct frame_io w, r;
	frame_init(&w, sv[0], 1u << 24);
	frame_init(&r, sv[1], 1u << 24);
	size_t len = 2u << 20;
	uint8_t *a = malloc(len), *b = malloc(len), *c = malloc(3);
	memset(a, 'a', len);
	memset(b, 'b', len);
	memcpy(c, "ccc", 3);
	assert_int_equal(frame_send_owned(&w, a, len), 1); /* taken, mostly still to write */
	assert_true(frame_pending(&w));
	assert_int_equal(frame_send(&w, "x", 1), 1);       /* after a: copied, queued */
	assert_int_equal(frame_send_owned(&w, b, len), 1); /* behind bytes: copied, b freed */
	assert_int_equal(frame_send_owned(&w, c, 3), 1);
	assert_int_equal(frame_send_owned(&w, malloc(8), 0), -EMSGSIZE); /* freed too */
	struct got g = { .aligned = true };
	int rounds = 0, rc;
	while ((rc = frame_flush(&w)) == 1 || g.n < 4) {
		assert_true(rc >= 0);
		assert_int_equal(frame_receive(&r, collect, &g), 0);
		assert_true(++rounds < 100000);
	}
	assert_int_equal(g.n, 4);
	assert_int_equal(g.len[0], len);
	assert_int_equal(g.first[0], 'a');
	assert_int_equal(g.last[0], 'a');
	assert_int_equal(g.len[1], 1);
	assert_int_equal(g.first[1], 'x');
	assert_int_equal(g.len[2], len);
	assert_int_equal(g.first[2], 'b');
	assert_int_equal(g.len[3], 3);
	assert_int_equal(g.first[3], 'c');
	assert_false(frame_pending(&w));
	frame_fini(&w);
	frame_fini(&r);
	close(sv[0]);
	close(sv[1]);
}

static void test_byte_by_byte(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 65536);
	struct frame_io r;
	frame_init(&r, sv[1], 1024);
	uint8_t wire[4 + 5 + 4 + 3];
	uint32_t l = 5;
	memcpy(wire, &l, 4);
	memcpy(wire + 4, "hello", 5);
	l = 3;
	memcpy(wire + 9, &l, 4);
	memcpy(wire + 13, "abc", 3);
	struct got g = { .aligned = true };
	for (size_t i = 0; i < sizeof(wire); i++) {
		assert_int_equal(write(sv[0], wire + i, 1), 1);
		assert_int_equal(frame_receive(&r, collect, &g), 0);
		assert_int_equal(g.n, i < 8 ? 0 : i < 15 ? 1 : 2);
	}
	assert_int_equal(g.len[0], 5);
	assert_int_equal(g.first[1], 'a');
	/* The peer goes: end of file. */
	close(sv[0]);
	assert_int_equal(frame_receive(&r, collect, &g), -EPIPE);
	frame_fini(&r);
	close(sv[1]);
}

static void test_oversized_and_empty(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 65536);
	struct frame_io w, r;
	frame_init(&w, sv[0], 100);
	frame_init(&r, sv[1], 100);
	uint8_t big[101] = { 0 };
	assert_int_equal(frame_send(&w, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(frame_send(&w, big, 0), -EMSGSIZE);
	assert_false(frame_pending(&w));
	assert_int_equal(frame_send(&w, big, 100), 0);
	struct got g = { .aligned = true };
	assert_int_equal(frame_receive(&r, collect, &g), 0);
	assert_int_equal(g.n, 1);
	/* A peer announcing more than the limit, or nothing, is refused before any body. */
	uint32_t l = 101;
	assert_int_equal(write(sv[0], &l, 4), 4);
	assert_int_equal(frame_receive(&r, collect, &g), -EBADMSG);
	frame_fini(&r);
	frame_init(&r, sv[1], 100);
	l = 0;
	assert_int_equal(write(sv[0], &l, 4), 4);
	assert_int_equal(frame_receive(&r, collect, &g), -EBADMSG);
	frame_fini(&w);
	frame_fini(&r);
	close(sv[0]);
	close(sv[1]);
}

static void test_callback_stops(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 65536);
	struct frame_io w, r;
	frame_init(&w, sv[0], 100);
	frame_init(&r, sv[1], 100);
	for (int i = 0; i < 3; i++)
		assert_int_equal(frame_send(&w, "xyz", 3), 0);
	struct got g = { .aligned = true, .stop_after = 1 };
	assert_int_equal(frame_receive(&r, collect, &g), 42);
	assert_int_equal(g.n, 1);
	/* The other two were not lost: the next call hands them out. */
	g.stop_after = 0;
	assert_int_equal(frame_receive(&r, collect, &g), 0);
	assert_int_equal(g.n, 3);
	frame_fini(&w);
	frame_fini(&r);
	close(sv[0]);
	close(sv[1]);
}

static void test_peer_gone_while_writing(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, 4096);
	struct frame_io w;
	frame_init(&w, sv[0], 1u << 20);
	static uint8_t msg[1u << 19];
	assert_int_equal(frame_send(&w, msg, sizeof(msg)), 1);
	close(sv[1]);
	assert_int_equal(frame_flush(&w), -EPIPE);
	frame_fini(&w);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_writes), cmocka_unit_test(test_owned_frames_in_order),
		cmocka_unit_test(test_byte_by_byte),   cmocka_unit_test(test_oversized_and_empty),
		cmocka_unit_test(test_callback_stops), cmocka_unit_test(test_peer_gone_while_writing),
	};
	return cmocka_run_group_tests_name("pool_frame", tests, NULL, NULL);
}
