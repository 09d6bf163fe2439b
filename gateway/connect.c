/* Connect protocol framing and error codes (see connect.h). */
#include "connect.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned http;
} codes[] = {
	[CONNECT_OK] = { "ok", 200 },
	[CONNECT_CANCELED] = { "canceled", 499 },
	[CONNECT_UNKNOWN] = { "unknown", 500 },
	[CONNECT_INVALID_ARGUMENT] = { "invalid_argument", 400 },
	[CONNECT_DEADLINE_EXCEEDED] = { "deadline_exceeded", 504 },
	[CONNECT_NOT_FOUND] = { "not_found", 404 },
	[CONNECT_ALREADY_EXISTS] = { "already_exists", 409 },
	[CONNECT_PERMISSION_DENIED] = { "permission_denied", 403 },
	[CONNECT_RESOURCE_EXHAUSTED] = { "resource_exhausted", 429 },
	[CONNECT_FAILED_PRECONDITION] = { "failed_precondition", 400 },
	[CONNECT_ABORTED] = { "aborted", 409 },
	[CONNECT_OUT_OF_RANGE] = { "out_of_range", 400 },
	[CONNECT_UNIMPLEMENTED] = { "unimplemented", 501 },
	[CONNECT_INTERNAL] = { "internal", 500 },
	[CONNECT_UNAVAILABLE] = { "unavailable", 503 },
	[CONNECT_DATA_LOSS] = { "data_loss", 500 },
	[CONNECT_UNAUTHENTICATED] = { "unauthenticated", 401 },
};

const char *connect_code_name(enum connect_code c)
{
	return (unsigned)c < sizeof(codes) / sizeof(codes[0]) ? codes[c].name : "unknown";
}

unsigned connect_code_http(enum connect_code c)
{
	return (unsigned)c < sizeof(codes) / sizeof(codes[0]) ? codes[c].http : 500;
}

void connect_envelope_hdr(uint8_t hdr[CONNECT_HDR], uint8_t flags, uint32_t len)
{
	hdr[0] = flags;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

long connect_envelope_read(const uint8_t *buf, size_t n, size_t max, uint8_t *flags, const uint8_t **msg,
			   uint32_t *len)
{
	if (n < CONNECT_HDR)
		return 0;
	uint32_t l = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (buf[0] & CONNECT_FLAG_COMPRESSED)
		return -EPROTO;
	if (l > max)
		return -E2BIG;
	if (n - CONNECT_HDR < l)
		return 0;
	*flags = buf[0];
	*msg = buf + CONNECT_HDR;
	*len = l;
	return (long)(CONNECT_HDR + (size_t)l);
}

static json_t *error_obj(enum connect_code c, const char *message)
{
	return json_pack("{s:s,s:s}", "code", connect_code_name(c), "message", message ? message : "");
}

char *connect_end_json(enum connect_code c, const char *message)
{
	if (c == CONNECT_OK)
		return strdup("{}");
	json_t *e = error_obj(c, message);
	json_t *o = e ? json_pack("{s:o}", "error", e) : NULL;
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

char *connect_error_json(enum connect_code c, const char *message)
{
	json_t *e = error_obj(c, message);
	char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	return s;
}
