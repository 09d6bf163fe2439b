/* The grammar of `egress:` entries and of `egress_range` (see net.h): pure functions, used
 * by the config loader (syntax, with file and line) and by the pool at start. */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int why_fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	if (len == 0 || len > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

static int parse_cidr(const char *s, size_t len, uint32_t *addr, uint8_t *prefix, char *why, size_t cap)
{
	char buf[64];
	if (len >= sizeof(buf))
		return why_fail(why, cap, "'%.*s' is too long for an IPv4 address", 40, s);
	memcpy(buf, s, len);
	buf[len] = 0;
	char *slash = strchr(buf, '/');
	uint32_t pfx = 32;
	if (slash) {
		*slash = 0;
		if (parse_u32(slash + 1, strlen(slash + 1), 32, &pfx))
			return why_fail(why, cap, "bad CIDR prefix '/%s' (0..32)", slash + 1);
	}
	struct in_addr a;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, buf, &a6) == 1)
		return why_fail(why, cap, "'%s': IPv6 destinations are not supported", buf);
	if (inet_pton(AF_INET, buf, &a) != 1)
		return why_fail(why, cap, "'%s' is not an IPv4 address", buf);
	uint32_t h = ntohl(a.s_addr);
	uint32_t mask = pfx ? ~0u << (32 - pfx) : 0;
	if (h & ~mask)
		return why_fail(why, cap, "bad CIDR '%s': host bits set below the prefix", s);
	*addr = h;
	*prefix = (uint8_t)pfx;
	return 0;
}

static bool valid_host(const char *s, size_t len)
{
	if (len == 0 || len > 253 || s[0] == '-' || s[0] == '.')
		return false;
	bool alpha = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '.')
			return false;
		alpha |= isalpha(c) != 0;
	}
	return alpha; /* all digits and dots is a malformed address, not a name */
}

int net_parse_entry(const char *s, struct net_rule *r, char *host, size_t hostcap, char *why, size_t whycap)
{
	memset(r, 0, sizeof(*r));
	if (host && hostcap)
		host[0] = 0;
	size_t len = strlen(s);
	r->protos = NET_TCP | NET_UDP;
	if (len > 4 && strcmp(s + len - 4, "/tcp") == 0) {
		r->protos = NET_TCP;
		len -= 4;
	} else if (len > 4 && strcmp(s + len - 4, "/udp") == 0) {
		r->protos = NET_UDP;
		len -= 4;
	}
	/* An IPv6 address has colons of its own: say so rather than misread a port. */
	size_t colons = 0;
	for (size_t i = 0; i < len; i++)
		colons += s[i] == ':';
	if (colons > 1)
		return why_fail(why, whycap, "'%s': IPv6 destinations are not supported", s);
	const char *colon = memchr(s, ':', len);
	size_t tlen = colon ? (size_t)(colon - s) : len;
	r->port_lo = 0;
	r->port_hi = 65535;
	if (colon) {
		const char *p = colon + 1;
		size_t plen = len - tlen - 1;
		const char *dash = memchr(p, '-', plen);
		uint32_t lo, hi;
		if (dash) {
			if (parse_u32(p, (size_t)(dash - p), 65535, &lo) ||
			    parse_u32(dash + 1, plen - (size_t)(dash - p) - 1, 65535, &hi) || lo == 0 ||
			    hi < lo)
				return why_fail(why, whycap,
						"bad port range in '%s' (LO-HI, 1 <= LO <= HI <= 65535)", s);
		} else {
			if (parse_u32(p, plen, 65535, &lo) || lo == 0)
				return why_fail(why, whycap, "bad port in '%s' (1..65535)", s);
			hi = lo;
		}
		r->port_lo = (uint16_t)lo;
		r->port_hi = (uint16_t)hi;
	}
	if (tlen == 0)
		return why_fail(why, whycap, "'%s' names no destination", s);
	bool looks_ip = true;
	for (size_t i = 0; i < tlen; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.' && s[i] != '/')
			looks_ip = false;
	if (looks_ip || memchr(s, '/', tlen))
		return parse_cidr(s, tlen, &r->addr, &r->prefix, why, whycap);
	if (!valid_host(s, tlen))
		return why_fail(why, whycap, "'%s' is neither an IPv4 CIDR nor a host name", s);
	if (!colon)
		return why_fail(why, whycap, "'%s': a host name needs a port (HOST:PORT)", s);
	if (!host || tlen >= hostcap)
		return why_fail(why, whycap, "host name in '%s' is too long", s);
	memcpy(host, s, tlen);
	host[tlen] = 0;
	r->prefix = 32;
	return 0;
}

int net_parse_range(const char *s, uint32_t *base, uint8_t *prefix, char *why, size_t whycap)
{
	if (!strchr(s, '/'))
		return why_fail(why, whycap, "'%s' is not a CIDR (a.b.c.d/prefix)", s);
	int rc = parse_cidr(s, strlen(s), base, prefix, why, whycap);
	if (rc)
		return rc;
	if (*prefix < 8 || *prefix > 28)
		return why_fail(why, whycap, "'%s': the prefix must be /8 .. /28", s);
	static const struct {
		uint32_t net;
		uint8_t len;
	} priv[] = { { 0x0a000000u, 8 }, { 0xac100000u, 12 }, { 0xc0a80000u, 16 }, { 0x64400000u, 10 } };
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (*prefix >= priv[i].len && (*base & (~0u << (32 - priv[i].len))) == priv[i].net)
			return 0;
	return why_fail(why, whycap,
			"'%s' is not inside a private range (10/8, 172.16/12, 192.168/16, 100.64/10)", s);
}

bool net_overlaps(uint32_t a, uint8_t pa, uint32_t b, uint8_t pb)
{
	uint8_t p = pa < pb ? pa : pb;
	uint32_t mask = p ? ~0u << (32 - p) : 0;
	return (a & mask) == (b & mask);
}
