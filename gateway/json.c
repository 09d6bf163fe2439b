/* JSON helpers of the gateway: protobuf-JSON bytes (base64), text that may not be UTF-8,
 * RFC 3339 timestamps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_t *gw_json_bytes_b64(const uint8_t *p, size_t n)
{
	size_t olen = (n + 2) / 3 * 4;
	char *o = malloc(olen + 1);
	if (!o)
		return NULL;
	size_t w = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		o[w++] = b64[v >> 18 & 63];
		o[w++] = b64[v >> 12 & 63];
		o[w++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		o[w++] = i + 2 < n ? b64[v & 63] : '=';
	}
	json_t *j = json_stringn_nocheck(o, w);
	free(o);
	return j;
}

static int b64v(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long gw_b64_decode(const char *in, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t w = 0;
	for (; *in && *in != '='; in++) {
		int v = b64v(*in);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (w >= cap)
				return -E2BIG;
			out[w++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)w;
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len = c < 0x80             ? 1
		     : (c & 0xe0) == 0xc0 ? 2
		     : (c & 0xf0) == 0xe0 ? 3
		     : (c & 0xf8) == 0xf0 ? 4
					  : 0;
	if (!len || len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
		return 0;
	if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
		return 0;
	return len;
}

json_t *gw_json_text(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char *o = malloc(n * 3 + 1);
	if (!o)
		return NULL;
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		size_t l = p[i] ? utf8_seq(p + i, n - i) : 0;
		if (l) {
			memcpy(o + w, p + i, l);
			w += l;
			i += l;
		} else { /* NUL or invalid byte: U+FFFD */
			memcpy(o + w, "\xef\xbf\xbd", 3);
			w += 3;
			i++;
		}
	}
	json_t *j = json_stringn_nocheck(o, w);
	free(o);
	return j;
}

char *gw_iso8601(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}
