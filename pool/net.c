/* Sandbox network policy (see net.h): the pool's nftables table, the resolved allowlists, and the
 * per-sandbox veth pair made with a few rtnetlink messages (no process spawned, no nft run
 * per sandbox: creation stays cheap). */
#include "net.h"
#include "rtnl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <netdb.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NET_MAX_SLOTS (1u << 20)

struct net_sys {
	uint32_t base; /* host byte order */
	uint8_t prefix;
	char range[32];   /* "a.b.c.d/p" */
	char tag[8];      /* 5 hex digits from the range */
	char ifprefix[8]; /* "r" + tag */
	char table[32];   /* nft table (inet family) */
	char lock[96];
	int lock_fd;
	int host_netns;
	int rtnl; /* rtnetlink socket of the host namespace (made at start, used by the zygote) */
	uint32_t seq;
	struct net_profile *prof; /* one per profile; NULL rules and index -1: none */
	size_t nprof;
	/* Slots: fresh ones in order, then freed ones oldest first (a freed slot's link may
	 * linger a moment while its namespace is cleaned up). */
	uint32_t nslots, fresh;
	uint32_t *freed;
	uint32_t fhead, flen;
};

/* ---- the pool's table ---- */

static void ip_str(uint32_t a, char *out, size_t cap)
{
	snprintf(out, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int run_nft(const char *cmds, char *err, size_t errsz)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		snprintf(err, errsz, "nftables: cannot create a context");
		return -ENOMEM;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = nft_run_cmd_from_buffer(ctx, cmds);
	if (rc) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		snprintf(err, errsz, "nftables: %s", e && *e ? e : "command failed");
		size_t l = strlen(err);
		while (l && (err[l - 1] == '\n'))
			err[--l] = 0;
	}
	nft_ctx_free(ctx);
	return rc ? -EIO : 0;
}

/* The whole table, replaced in one transaction (a leftover of an earlier start goes). */
static char *ruleset(const struct net_sys *n)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	const char *T = n->table, *R = n->range, *P = n->ifprefix;
	fprintf(f, "table inet %s {}\ndelete table inet %s\ntable inet %s {\n", T, T, T);
	for (size_t i = 0; i < n->nprof; i++) {
		const struct net_profile *np = &n->prof[i];
		if (np->index < 0 || !np->nrules)
			continue;
		fprintf(
		    f,
		    "  set p%zu { type ipv4_addr . inet_proto . inet_service; flags interval; elements = {",
		    i);
		bool first = true;
		for (size_t k = 0; k < np->nrules; k++) {
			const struct net_rule *r = &np->rules[k];
			char a[20];
			ip_str(r->addr, a, sizeof(a));
			for (unsigned proto = NET_TCP; proto <= NET_UDP; proto <<= 1) {
				if (!(r->protos & proto))
					continue;
				fprintf(f, "%s %s/%u . %s . %u-%u", first ? "" : ",", a, r->prefix,
					proto == NET_TCP ? "tcp" : "udp", r->port_lo, r->port_hi);
				first = false;
			}
		}
		fprintf(f, " } }\n");
	}
	/* Before routing: only our addresses, each from its own link, and no IPv6 at all. */
	fprintf(f,
		"  chain sb_pre { type filter hook prerouting priority raw; policy accept;\n"
		"    iifname \"%s*\" meta nfproto ipv6 drop\n"
		"    iifname \"%s*\" ip saddr != %s drop\n"
		"    iifname \"%s*\" fib saddr . iif oif missing drop\n  }\n",
		P, P, R, P);
	/* Nothing a sandbox sends reaches the host itself: no pool port, no host address. */
	fprintf(f,
		"  chain sb_in { type filter hook input priority filter; policy accept;\n"
		"    iifname \"%s*\" reject with icmpx type admin-prohibited\n  }\n",
		P);
	/* Into sandboxes only answers; out of them only the profile's allowlist. */
	fprintf(f,
		"  chain sb_fwd { type filter hook forward priority filter; policy accept;\n"
		"    ip daddr %s ct state established,related accept\n"
		"    ip daddr %s drop\n"
		"    iifname \"%s*\" jump sb_allow\n  }\n"
		"  chain sb_allow {\n"
		"    ct state established,related accept\n",
		R, R, P);
	for (size_t i = 0; i < n->nprof; i++)
		if (n->prof[i].index >= 0 && n->prof[i].nrules)
			fprintf(f,
				"    iifname \"%s%02zx*\" ip daddr . meta l4proto . th dport @p%zu accept\n",
				P, i, i);
	fprintf(f,
		"    reject with icmpx type admin-prohibited\n  }\n"
		"  chain sb_nat { type nat hook postrouting priority srcnat; policy accept;\n"
		"    ip saddr %s oifname != \"%s*\" masquerade\n  }\n}\n",
		R, P);
	if (fclose(f)) {
		free(s);
		return NULL;
	}
	return s;
}

static int write_hosts(const char *path, const char *names, char *err, size_t errsz)
{
	char tmp[200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	fprintf(f,
		"# rollout-pool: the names this sandbox may reach (no DNS server is reachable)\n"
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s",
		names);
	if (fchmod(fileno(f), 0644) || fclose(f) || rename(tmp, path)) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -errno;
	}
	return 0;
}

/* Parses and resolves one profile's entries into np; the hosts lines go to names. */
static int build_profile(struct net_sys *n, const struct net_profile_spec *sp, size_t i, FILE *names,
			 char *err, size_t errsz)
{
	struct net_profile *np = &n->prof[i];
	np->index = (int)i;
	size_t cap = sp->egress_count * 2 + 1;
	np->rules = calloc(cap, sizeof(*np->rules));
	if (!np->rules)
		return -ENOMEM;
	for (unsigned e = 0; e < sp->egress_count; e++) {
		struct net_rule r;
		char host[256], why[200];
		if (net_parse_entry(sp->egress[e], &r, host, sizeof(host), why, sizeof(why))) {
			snprintf(err, errsz, "pool.profiles[%zu] (%s): egress[%u]: %s", i, sp->name, e, why);
			return -EINVAL;
		}
		if (!host[0]) {
			if (net_overlaps(r.addr, r.prefix, n->base, n->prefix)) {
				snprintf(
				    err, errsz,
				    "pool.profiles[%zu] (%s): egress[%u] '%s' overlaps pool.egress_range %s "
				    "(other sandboxes are never reachable)",
				    i, sp->name, e, sp->egress[e], n->range);
				return -EINVAL;
			}
			np->rules[np->nrules++] = r;
			continue;
		}
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
		int g = getaddrinfo(host, NULL, &hints, &res);
		if (g || !res) {
			snprintf(err, errsz, "pool.profiles[%zu] (%s): egress[%u]: cannot resolve '%s': %s",
				 i, sp->name, e, host, g ? gai_strerror(g) : "no IPv4 address");
			if (res)
				freeaddrinfo(res);
			return -EINVAL;
		}
		size_t added = 0;
		for (struct addrinfo *a = res; a; a = a->ai_next) {
			uint32_t ip = ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
			bool dup = false;
			for (size_t k = np->nrules - added; k < np->nrules; k++)
				dup |= np->rules[k].addr == ip;
			if (dup)
				continue;
			if (net_overlaps(ip, 32, n->base, n->prefix)) {
				freeaddrinfo(res);
				snprintf(err, errsz,
					 "pool.profiles[%zu] (%s): egress[%u]: '%s' resolves into "
					 "pool.egress_range %s",
					 i, sp->name, e, host, n->range);
				return -EINVAL;
			}
			if (np->nrules == cap) {
				struct net_rule *nr = realloc(np->rules, cap * 2 * sizeof(*nr));
				if (!nr) {
					freeaddrinfo(res);
					return -ENOMEM;
				}
				np->rules = nr;
				cap *= 2;
			}
			r.addr = ip;
			r.prefix = 32;
			np->rules[np->nrules++] = r;
			added++;
			char a4[20];
			ip_str(ip, a4, sizeof(a4));
			fprintf(names, "%s\t%s\n", a4, host);
		}
		freeaddrinfo(res);
	}
	return 0;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int net_sys_create(struct net_sys **out, const char *range, const struct net_profile_spec *profiles,
		   size_t nprofiles, int host_netns, char *err, size_t errsz)
{
	*out = NULL;
	char why[200];
	uint32_t base;
	uint8_t prefix;
	if (net_parse_range(range, &base, &prefix, why, sizeof(why))) {
		snprintf(err, errsz, "pool.egress_range: %s", why);
		return -EINVAL;
	}
	if (geteuid() != 0) {
		snprintf(err, errsz, "network: egress needs a pool running as root (veths, nftables)");
		return -EPERM;
	}
	if (nprofiles > 255) {
		snprintf(err, errsz, "network: at most 255 profiles");
		return -EINVAL;
	}
	struct net_sys *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->lock_fd = n->rtnl = -1;
	n->host_netns = host_netns;
	n->base = base;
	n->prefix = prefix;
	n->nslots = prefix >= 12 ? 1u << (31 - prefix) : NET_MAX_SLOTS;
	if (n->nslots > NET_MAX_SLOTS)
		n->nslots = NET_MAX_SLOTS;
	char b[20];
	ip_str(base, b, sizeof(b));
	snprintf(n->range, sizeof(n->range), "%s/%u", b, prefix);
	snprintf(n->tag, sizeof(n->tag), "%05x", fnv1a(n->range) & 0xfffff);
	snprintf(n->ifprefix, sizeof(n->ifprefix), "r%.5s", n->tag);
	snprintf(n->table, sizeof(n->table), "rollout_pool_%s", n->tag);
	snprintf(n->lock, sizeof(n->lock), "/run/rollout-pool-net-%s.lock", n->tag);
	int rc = -ENOMEM;
	n->prof = calloc(nprofiles, sizeof(*n->prof));
	if (!n->prof)
		goto fail;
	n->nprof = nprofiles;
	n->lock_fd = open(n->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK)
			snprintf(err, errsz,
				 "pool.egress_range %s: another rollout-pool on this host holds %s (the "
				 "same range, or one whose names collide with it: choose another)",
				 n->range, n->lock);
		else
			snprintf(err, errsz, "%s: %s", n->lock, strerror(-rc));
		if (n->lock_fd >= 0)
			close(n->lock_fd);
		n->lock_fd = -1;
		goto fail;
	}
	for (size_t i = 0; i < nprofiles; i++) {
		n->prof[i].index = -1;
		if (profiles[i].mode != NET_EGRESS)
			continue;
		char *names = NULL;
		size_t nlen = 0;
		FILE *f = open_memstream(&names, &nlen);
		if (!f)
			goto fail;
		rc = build_profile(n, &profiles[i], i, f, err, errsz);
		fclose(f);
		snprintf(n->prof[i].hosts, sizeof(n->prof[i].hosts), "/run/rollout-pool-net-%s-%zu.hosts",
			 n->tag, i);
		if (!rc)
			rc = write_hosts(n->prof[i].hosts, names ? names : "", err, errsz);
		free(names);
		if (rc)
			goto fail;
	}
	/* Written only when off: a container's /proc/sys is often read-only, and a pod may have
	 * it set already (a sysctl of the pod spec). */
	char fwd = 0;
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &fwd, 1, 0) != 1 || (fwd != '1' && pwrite(fd, "1", 1, 0) != 1)) {
		rc = -errno;
		snprintf(err, errsz, "cannot enable net.ipv4.ip_forward: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	if ((rc = rtnl_open()) < 0) {
		snprintf(err, errsz, "rtnetlink: %s", strerror(-rc));
		goto fail;
	}
	n->rtnl = rc;
	rtnl_delete_links(n->rtnl, &n->seq, n->ifprefix);
	char *rs = ruleset(n);
	if (!rs) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = run_nft(rs, err, errsz);
	free(rs);
	if (rc)
		goto fail;
	*out = n;
	return 0;
fail:
	net_sys_destroy(n);
	return rc ? rc : -EIO;
}

void net_sys_destroy(struct net_sys *n)
{
	if (!n)
		return;
	if (n->lock_fd >= 0) {
		/* Only the holder of the range removes its table: a pool refused at start must
		 * not take a running one's rules away. */
		char cmd[160], err[256];
		snprintf(cmd, sizeof(cmd), "table inet %s {}\ndelete table inet %s\n", n->table, n->table);
		run_nft(cmd, err, sizeof(err));
		for (size_t i = 0; i < n->nprof; i++)
			if (n->prof[i].hosts[0])
				unlink(n->prof[i].hosts);
		/* The sandboxes are gone (the zygote went first), but their veths go with their
		 * namespaces only when the kernel gets to it: a stopped pool leaves none. */
		if (n->rtnl >= 0)
			rtnl_delete_links(n->rtnl, &n->seq, n->ifprefix);
		close(n->lock_fd);
	}
	for (size_t i = 0; i < n->nprof; i++)
		free(n->prof[i].rules);
	free(n->prof);
	if (n->rtnl >= 0)
		close(n->rtnl);
	free(n->freed);
	free(n);
}

const struct net_profile *net_sys_profile(const struct net_sys *n, size_t i)
{
	return n && i < n->nprof && n->prof[i].index >= 0 ? &n->prof[i] : NULL;
}

const char *net_sys_table(const struct net_sys *n)
{
	return n->table;
}

const char *net_sys_ifprefix(const struct net_sys *n)
{
	return n->ifprefix;
}

/* ---- per sandbox (the zygote) ---- */

static int slot_alloc(struct net_sys *n, uint32_t *slot)
{
	if (n->fresh < n->nslots) {
		*slot = n->fresh++;
		return 0;
	}
	if (!n->flen)
		return -ENOSPC;
	*slot = n->freed[n->fhead];
	n->fhead = (n->fhead + 1) % n->nslots;
	n->flen--;
	return 0;
}

static void slot_free(struct net_sys *n, uint32_t slot)
{
	if (!n->freed && !(n->freed = malloc((size_t)n->nslots * sizeof(*n->freed))))
		return; /* the slot is lost; the range is large */
	if (n->flen == n->nslots)
		return;
	n->freed[(n->fhead + n->flen) % n->nslots] = slot;
	n->flen++;
}

static void veth_name(const struct net_sys *n, const struct net_profile *np, uint32_t slot, char *out)
{
	snprintf(out, IFNAMSIZ, "%.6s%02x%07x", n->ifprefix, (unsigned)np->index & 0xff, slot & 0xfffffff);
}

int net_attach(struct net_sys *n, const struct net_profile *np, int netns, int32_t *slot_out)
{
	*slot_out = -1;
	uint32_t slot;
	int rc = slot_alloc(n, &slot);
	if (rc)
		return rc;
	char name[IFNAMSIZ];
	veth_name(n, np, slot, name);
	uint32_t host = n->base + 2 * slot, sbx = host + 1;
	rc = rtnl_new_veth(n->rtnl, ++n->seq, name, netns);
	if (rc == -EEXIST) {
		/* The slot's last tenant's link is still going away with its namespace. */
		rtnl_del_link(n->rtnl, ++n->seq, name);
		rc = rtnl_new_veth(n->rtnl, ++n->seq, name, netns);
	}
	if (rc) {
		slot_free(n, slot);
		return rc;
	}
	int idx = rtnl_ifindex(n->rtnl, name);
	rc = idx < 0 ? idx : rtnl_new_addr(n->rtnl, ++n->seq, idx, host);
	if (rc)
		goto fail;
	/* The sandbox's end: a netlink socket made inside its namespace. */
	if (setns(netns, CLONE_NEWNET) < 0) {
		rc = -errno;
		goto fail;
	}
	int s = rtnl_open();
	if (setns(n->host_netns, CLONE_NEWNET) < 0)
		abort(); /* cannot get back to the pool's network: nothing sane to do */
	if (s < 0) {
		rc = s;
		goto fail;
	}
	idx = rtnl_ifindex(s, "eth0");
	rc = idx < 0 ? idx : rtnl_link_up(s, 1, idx);
	if (!rc)
		rc = rtnl_new_addr(s, 2, idx, sbx);
	if (!rc)
		rc = rtnl_default_route(s, 3, idx, host);
	close(s);
	if (rc)
		goto fail;
	*slot_out = (int32_t)slot;
	return 0;
fail:
	rtnl_del_link(n->rtnl, ++n->seq, name);
	slot_free(n, slot);
	return rc;
}

void net_detach(struct net_sys *n, const struct net_profile *np, int32_t slot)
{
	(void)np;
	if (slot < 0)
		return;
	/* No RTM_DELLINK: deleting a veth waits for an RCU grace period (tens of ms under load,
	 * ten times the rest of a teardown), and the zygote would wait with it. The pair goes
	 * with the sandbox's namespace, which the kernel tears down in batches once its last
	 * process is gone; a slot is reused last (FIFO), and net_attach deletes a link still
	 * there then. */
	slot_free(n, (uint32_t)slot);
}

/* ---- inside the sandbox child ---- */

static int bind_ro(const char *src, const char *dst)
{
	struct stat st;
	/* A missing file or a symlink (into /run, empty in the sandbox) is left as it is: the
	 * resolver then finds no server either. */
	if (lstat(dst, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		return -errno;
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return -errno;
	return 0;
}

int net_bind_files(const struct net_profile *np, const char *empty, const char *root)
{
	char dst[512];
	snprintf(dst, sizeof(dst), "%s/etc/hosts", root);
	int rc = bind_ro(np->hosts, dst);
	if (rc)
		return rc;
	snprintf(dst, sizeof(dst), "%s/etc/resolv.conf", root);
	return bind_ro(empty, dst);
}
