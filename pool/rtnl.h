/* Hand-made rtnetlink requests for the sandbox network (see net.c). Each call sends one
 * request on fd (a NETLINK_ROUTE socket of the namespace to act in) with sequence number
 * seq and returns 0 or the kernel's -errno. Addresses are IPv4 in host byte order. */
#ifndef ROLLOUT_POOL_RTNL_H
#define ROLLOUT_POOL_RTNL_H

#include <stdint.h>

/* A NETLINK_ROUTE socket in the caller's current network namespace, or -errno. */
int rtnl_open(void);
/* A veth pair: `name` in fd's namespace, up; "eth0" in the namespace netns, down. */
int rtnl_new_veth(int fd, uint32_t seq, const char *name, int netns);
int rtnl_link_up(int fd, uint32_t seq, int ifindex);
int rtnl_del_link(int fd, uint32_t seq, const char *name);
/* addr/31 on the interface. */
int rtnl_new_addr(int fd, uint32_t seq, int ifindex, uint32_t addr);
int rtnl_default_route(int fd, uint32_t seq, int ifindex, uint32_t gw);
/* The index of interface name in sock's namespace (any socket), or -errno. */
int rtnl_ifindex(int sock, const char *name);
/* Deletes every link whose name starts with prefix; returns how many went, or -errno. */
int rtnl_delete_links(int fd, uint32_t *seq, const char *prefix);

#endif
