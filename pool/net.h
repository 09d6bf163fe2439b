/* Network policy of sandboxes (`network: egress`). A sandbox of such a profile gets a routed
 * veth pair: "eth0" in its network namespace, a host end named after the pool's range, the
 * profile and the sandbox's /31 slot. No bridge: each pair is its own point-to-point link
 * with a /31 route, so sandboxes never share a segment. One nftables table per pool
 * (installed at start, rules per profile, nothing per sandbox) lets a sandbox reach only
 * its profile's allowlist (address . protocol . port), masquerades it out of the host,
 * and refuses everything aimed at the host itself, at other sandboxes, IPv6 and spoofed
 * sources. Host names of the allowlist are resolved once by the pool and written into the
 * sandbox's /etc/hosts; its /etc/resolv.conf is empty, so no DNS server is asked.
 *
 * The pool's main process calls net_sys_create before the zygote forks; the zygote (one
 * thread) then calls net_attach / net_detach around each sandbox's life. */
#ifndef ROLLOUT_POOL_NET_H
#define ROLLOUT_POOL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum net_mode { NET_NONE = 0, NET_EGRESS = 1 };

#define NET_TCP 1u
#define NET_UDP 2u

/* One allowed destination: addr/prefix (host byte order), protocols, ports lo..hi. */
struct net_rule {
	uint32_t addr;
	uint8_t prefix;
	uint8_t protos; /* NET_TCP | NET_UDP */
	uint16_t port_lo, port_hi;
};

/* Parses one `egress:` entry: `CIDR[:PORT]`, `ADDR[:PORT]` or `HOST:PORT`, PORT a number or
 * LO-HI, optionally ending in /tcp or /udp (default both). A host name goes to host (the
 * rule's address is then left 0 for the resolver to fill). 0, or -EINVAL with why. */
int net_parse_entry(const char *s, struct net_rule *r, char *host, size_t hostcap, char *why, size_t whycap);
/* Parses a private IPv4 range (RFC 1918 or 100.64.0.0/10), prefix /8 .. /28. */
int net_parse_range(const char *s, uint32_t *base, uint8_t *prefix, char *why, size_t whycap);
/* Whether a/pa and b/pb share an address. */
bool net_overlaps(uint32_t a, uint8_t pa, uint32_t b, uint8_t pb);

/* A profile's resolved policy. */
struct net_profile {
	int index; /* the profile's position: names its veths and its nft set */
	struct net_rule *rules;
	size_t nrules;
	char hosts[128]; /* the /etc/hosts bound into its sandboxes */
};

struct net_profile_spec {
	const char *name;
	int mode; /* enum net_mode */
	char *const *egress;
	unsigned egress_count;
};

struct net_sys;

/* Checks the range, takes a lock on it (two pools of one host cannot share a range), resolves
 * every profile's allowlist, writes the hosts files, enables IPv4 forwarding, removes what a
 * previous pool of this range left (veths, the nft table) and installs the nft table.
 * Needs root. host_netns: an fd of the pool's network namespace. On failure -errno and a
 * message naming the key in err. */
int net_sys_create(struct net_sys **out, const char *range, const struct net_profile_spec *profiles,
		   size_t nprofiles, int host_netns, char *err, size_t errsz);
/* Removes the nft table, the hosts files and the lock (the pool's main process, at exit). */
void net_sys_destroy(struct net_sys *n);
/* The policy of profile i, or NULL when it has no network beyond loopback. */
const struct net_profile *net_sys_profile(const struct net_sys *n, size_t i);
/* The nft table name and the prefix of every host-side veth name of this pool. */
const char *net_sys_table(const struct net_sys *n);
const char *net_sys_ifprefix(const struct net_sys *n);

/* In the zygote: gives the namespace netns a veth pair, addresses and a default route.
 * *slot receives the sandbox's slot for net_detach. 0 or -errno. */
int net_attach(struct net_sys *n, const struct net_profile *np, int netns, int32_t *slot);
/* Frees the slot; the pair goes away with the namespace, once the sandbox is gone. */
void net_detach(struct net_sys *n, const struct net_profile *np, int32_t slot);

/* In the sandbox child, before pivot_root: binds the profile's hosts file over
 * root/etc/hosts and `empty` over root/etc/resolv.conf (read-only). */
int net_bind_files(const struct net_profile *np, const char *empty, const char *root);

#endif
