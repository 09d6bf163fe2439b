/* common/ for the daemons: log escaping, the event loop, Prometheus text and endpoint,
 * and the table-driven config loader. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "prom.h"
#include "promhttp.h"
#include "util.h"

static void test_log_escape(void **state)
{
	(void)state;
	char buf[64];
	assert_string_equal(rlog_esc(buf, sizeof(buf), "a\"b\\c\nts=x\x01"), "a\\\"b\\\\c\\nts=x\\x01");
	assert_string_equal(rlog_esc(buf, 8, "0123456789"), "012");
	assert_string_equal(rlog_esc(buf, sizeof(buf), NULL), "");
}

/* ---- loop ---- */

struct io {
	struct loop *l;
	int fd, other, hits;
};

static void on_io(void *arg, uint32_t ev)
{
	struct io *x = arg;
	(void)ev;
	x->hits++;
	uint64_t v;
	if (read(x->fd, &v, sizeof(v)) < 0)
		return;
	if (x->other >= 0) /* deletes the other fd, whose event is in the same batch */
		loop_del(x->l, x->other);
}

static int ticks;
static void on_tick(void *arg, uint64_t now)
{
	(void)arg;
	(void)now;
	ticks++;
}

static void test_loop(void **state)
{
	(void)state;
	struct loop *l;
	assert_int_equal(loop_create(&l), 0);
	struct io a = { l, eventfd(1, EFD_NONBLOCK), -1, 0 }, b = { l, eventfd(1, EFD_NONBLOCK), -1, 0 };
	a.other = b.fd;
	b.other = a.fd;
	assert_int_equal(loop_add(l, a.fd, EPOLLIN, on_io, &a), 0);
	assert_int_equal(loop_add(l, a.fd, EPOLLIN, on_io, &a), -EEXIST);
	assert_int_equal(loop_add(l, b.fd, EPOLLIN, on_io, &b), 0);
	assert_int_equal(loop_run_once(l, 100), 2);
	/* Both were ready; whichever ran first deleted the other, whose event was dropped. */
	assert_int_equal(a.hits + b.hits, 1);
	assert_int_equal(loop_every(l, ROLLOUT_MS(5), on_tick, NULL), 0);
	uint64_t t0 = rollout__now_ns();
	while (ticks < 3)
		assert_true(loop_run_once(l, 1000) >= 0);
	assert_true(rollout__now_ns() - t0 >= ROLLOUT_MS(14));
	assert_true(rollout__now_ns() - t0 < ROLLOUT_MS(1000));
	close(a.fd);
	close(b.fd);
	loop_destroy(l);
}

/* ---- prom ---- */

static void test_histogram(void **state)
{
	(void)state;
	struct prom_hist h = { 0 };
	prom_observe(&h, 5000);                /* 5 µs: first bucket */
	prom_observe(&h, 2000000);             /* 2 ms */
	prom_observe(&h, 700ull * 1000000000); /* over the last bound: +Inf only */
	struct prom_out o;
	prom_out_init(&o);
	prom_head(&o, "x_seconds", "histogram", "test");
	prom_hist_series(&o, "x_seconds", "a=\"b\"", &h);
	size_t len;
	char *t = prom_out_take(&o, &len);
	assert_non_null(t);
	assert_non_null(strstr(t, "x_seconds_bucket{a=\"b\",le=\"1e-05\"} 1\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{a=\"b\",le=\"0.0025\"} 2\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{a=\"b\",le=\"600\"} 2\n"));
	assert_non_null(strstr(t, "x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t, "x_seconds_count{a=\"b\"} 3\n"));
	free(t);
}

static char *render(void *arg, size_t *len)
{
	(void)arg;
	char *t = strdup("up 1\n");
	*len = 5;
	return t;
}

static int connect_to(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static void test_endpoint(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	unsigned sl;
	assert_int_equal(promhttp_parse_addr("127.0.0.1:9", &ss, &sl), 0);
	assert_int_equal(promhttp_parse_addr("[::1]:9", &ss, &sl), 0);
	assert_int_equal(promhttp_parse_addr("localhost:9", &ss, &sl), -EINVAL);
	assert_int_equal(promhttp_parse_addr("127.0.0.1:70000", &ss, &sl), -EINVAL);
	assert_int_equal(promhttp_parse_addr("127.0.0.1", &ss, &sl), -EINVAL);
	struct promhttp *h = NULL;
	int port = 0, rc = -1;
	for (int i = 0; i < 20 && rc; i++) {
		char addr[32];
		port = 30000 + (getpid() * 7 + i * 131) % 20000;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		rc = promhttp_start(&h, addr, render, NULL, NULL);
	}
	assert_int_equal(rc, 0);
	/* 200 idle connections (more than the old limit of 64) do not block a scrape. */
	int idle[200];
	for (int i = 0; i < 200; i++)
		assert_true((idle[i] = connect_to(port)) >= 0);
	int s = connect_to(port);
	assert_true(s >= 0);
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_int_equal(write(s, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	char buf[4096];
	size_t got = 0;
	for (ssize_t n; (n = read(s, buf + got, sizeof(buf) - 1 - got)) > 0;)
		got += (size_t)n;
	buf[got] = 0;
	assert_non_null(strstr(buf, "200 OK"));
	assert_non_null(strstr(buf, "up 1"));
	close(s);
	/* Other methods and paths get short, bounded answers. */
	s = connect_to(port);
	const char post[] =
	    "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
	assert_int_equal(write(s, post, sizeof(post) - 1), (ssize_t)sizeof(post) - 1);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	got = 0;
	for (ssize_t n; (n = read(s, buf + got, sizeof(buf) - 1 - got)) > 0;)
		got += (size_t)n;
	buf[got] = 0;
	assert_non_null(strstr(buf, "405"));
	close(s);
	for (int i = 0; i < 200; i++)
		close(idle[i]);
	promhttp_stop(h);
}

/* ---- cfg ---- */

struct sect {
	char *name;
	uint32_t size, limit;
	char **tags;
	unsigned tags_count;
};
#define KEYS(X, S)                                     \
	X(S, STR, name, "dflt", 1, 16, NULL, "a name") \
	X(S, U32, size, "64", 1, 1024, NULL, "a size") \
	X(S, U32, limit, "0", 0, 10, NULL, "0: none")  \
	X(S, SEQ, tags, NULL, 1, 4, &cfg_string_schema, "at least one tag")
static const cyaml_schema_field_t fields[] = { KEYS(CFG_CYAML_FIELD, struct sect) CYAML_FIELD_END };
static const struct cfg_key keys[] = { KEYS(CFG_KEY_ROW, struct sect) };
struct doc {
	struct sect *t;
};
static const cyaml_schema_field_t doc_fields[] = {
	CYAML_FIELD_MAPPING_PTR("t", CYAML_FLAG_POINTER, struct doc, t, fields), CYAML_FIELD_END
};
static const cyaml_schema_value_t doc_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct doc,
								     doc_fields) };

static int load_text(const char *text, struct doc **d, char *err, size_t errsz)
{
	char path[] = "/tmp/rollout-cfg-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = cfg_load(path, &doc_schema, (void **)d, err, errsz);
	if (!rc)
		rc = cfg_apply((*d)->t, keys, 4, path, "t", err, errsz);
	unlink(path);
	return rc;
}

static void test_config(void **state)
{
	(void)state;
	char err[512];
	struct doc *d = NULL;
	assert_int_equal(load_text("t:\n  tags: [a]\n", &d, err, sizeof(err)), 0);
	assert_string_equal(d->t->name, "dflt");
	assert_int_equal(d->t->size, 64);
	assert_int_equal(d->t->limit, 0);
	cfg_free(&doc_schema, d);
	d = NULL;
	assert_int_equal(load_text("t:\n  size: 2000\n  tags: [a]\n", &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: t.size: 2000 is outside the accepted range 1..1024"));
	cfg_free(&doc_schema, d);
	d = NULL;
	assert_int_equal(load_text("t:\n  name: x\n", &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t.tags: needs at least 1 entry"));
	cfg_free(&doc_schema, d);
	d = NULL;
	assert_int_equal(load_text("a: &a [x, x]\nt:\n  tags: *a\n", &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 3: YAML aliases are not accepted"));
	char deep[200] = "t: ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	assert_int_equal(load_text(deep, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nested deeper than 32 levels"));
	char *ref = NULL;
	size_t reflen = 0;
	FILE *f = open_memstream(&ref, &reflen);
	cfg_reference(f, "t", keys, 4);
	fclose(f);
	assert_non_null(strstr(ref, "| `t.size` | integer | `64` | 1..1024 | a size |"));
	free(ref);
}

/* RELIABILITY 29: libzmq >= 4.3.3, and CURVE support whenever CURVE is configured. */
static void test_zmq_checks(void **state)
{
	(void)state;
	char err[128];
	assert_int_equal(daemon_zmq_ok(4, 3, 2, true, false, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "4.3.2 is too old"));
	assert_int_equal(daemon_zmq_ok(4, 2, 9, true, false, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(daemon_zmq_ok(4, 3, 3, false, false, err, sizeof(err)), 0);
	assert_int_equal(daemon_zmq_ok(4, 3, 4, false, true, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no CURVE support"));
	assert_int_equal(daemon_zmq_ok(5, 0, 0, true, true, err, sizeof(err)), 0);
	/* The libzmq this was built against passes, with CURVE. */
	assert_int_equal(daemon_check_zmq(true, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_escape), cmocka_unit_test(test_loop),
		cmocka_unit_test(test_histogram),  cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_config),     cmocka_unit_test(test_zmq_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
