/* The metrics endpoint (see promhttp.h). Limits: many connections in all and per address,
 * a small per-connection memory pool (oversized headers are refused by libmicrohttpd
 * itself), and a short idle timeout, so a few hundred idle or trickling clients neither
 * block a scrape nor hold memory for long. */
#include "promhttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROMHTTP_MAX_CONNECTIONS 1024u
#define PROMHTTP_PER_IP          512u
#define PROMHTTP_TIMEOUT_S       3u
#define PROMHTTP_CONN_MEMORY     ((size_t)32768)

struct promhttp {
	struct MHD_Daemon *mhd;
	promhttp_render_fn render;
	promhttp_health_fn health;
	void *arg;
};

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct promhttp *h = cls;
	(void)version;
	(void)upload;
	/* A body is never expected: answer at the headers and let libmicrohttpd discard it. */
	if (*upload_size)
		*upload_size = 0;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	(void)state;
	if (!strcmp(url, "/metrics")) {
		size_t len = 0;
		char *body = h->render(h->arg, &len);
		if (!body)
			return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
		struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(body);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (!strcmp(url, "/healthz")) {
		char why[256] = "unhealthy";
		if (h->health && h->health(h->arg, why, sizeof(why))) {
			char text[300];
			snprintf(text, sizeof(text), "%s\n", why);
			return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, text);
		}
		return reply_text(c, MHD_HTTP_OK, "ok\n");
	}
	return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

int promhttp_parse_addr(const char *addr, void *out, unsigned *socklen)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char host[64], *end;
	if (!colon || colon == addr || !colon[1])
		return -EINVAL;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	size_t hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 3 || addr[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, hl - 2);
		host[hl - 2] = 0;
		struct sockaddr_in6 *sa = out;
		memset(sa, 0, sizeof(*sa));
		sa->sin6_family = AF_INET6;
		sa->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
			return -EINVAL;
		*socklen = sizeof(*sa);
		return 0;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = 0;
	struct sockaddr_in *sa = out;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	*socklen = sizeof(*sa);
	return 0;
}

int promhttp_start(struct promhttp **out, const char *addr, promhttp_render_fn render,
		   promhttp_health_fn health, void *arg)
{
	struct sockaddr_storage ss;
	unsigned sl;
	*out = NULL;
	if (promhttp_parse_addr(addr, &ss, &sl))
		return -EINVAL;
	struct promhttp *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->render = render;
	h->health = health;
	h->arg = arg;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR,
				  (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
				  PROMHTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  PROMHTTP_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, PROMHTTP_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, PROMHTTP_CONN_MEMORY, MHD_OPTION_END);
	if (!h->mhd) {
		free(h);
		return -EADDRINUSE;
	}
	*out = h;
	return 0;
}

void promhttp_stop(struct promhttp *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	free(h);
}

int promhttp_object_new(void **obj, size_t size, const char *addr, promhttp_render_fn render)
{
	*obj = NULL;
	if (size < sizeof(struct promhttp *))
		return -EINVAL;
	void *o = calloc(1, size);
	if (!o)
		return -ENOMEM;
	int rc = addr ? promhttp_start((struct promhttp **)o, addr, render, NULL, o) : 0;
	if (rc) {
		free(o);
		return rc;
	}
	*obj = o;
	return 0;
}

void promhttp_object_free(void *obj)
{
	if (!obj)
		return;
	promhttp_stop(*(struct promhttp **)obj);
	free(obj);
}
