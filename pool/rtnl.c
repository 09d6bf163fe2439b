/* The few rtnetlink requests the sandbox network needs (net.c), made by hand: a request
 * in a fixed buffer, one acknowledgement read back. No library, nothing allocated. */
#include "rtnl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

struct nlreq {
	struct nlmsghdr h;
	char buf[1024];
};

static struct rtattr *rtnl_add(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static void rtnl_end(struct nlmsghdr *h, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)nest);
}

/* Sends one request and reads its acknowledgement: 0 or the kernel's -errno. */
static int rtnl_talk(int fd, struct nlmsghdr *h, uint32_t seq)
{
	h->nlmsg_seq = seq;
	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)n);
		     r = NLMSG_NEXT(r, n)) {
			if (r->nlmsg_seq != seq || r->nlmsg_type != NLMSG_ERROR)
				continue;
			return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
		}
	}
}

int rtnl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	return fd < 0 ? -errno : fd;
}

int rtnl_new_addr(int fd, uint32_t seq, int ifindex, uint32_t addr)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_NEWADDR;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct ifaddrmsg *ifa = NLMSG_DATA(&r.h);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = 31;
	ifa->ifa_index = (unsigned)ifindex;
	uint32_t be = htonl(addr);
	rtnl_add(&r.h, IFA_LOCAL, &be, 4);
	rtnl_add(&r.h, IFA_ADDRESS, &be, 4);
	return rtnl_talk(fd, &r.h, seq);
}

int rtnl_default_route(int fd, uint32_t seq, int ifindex, uint32_t gw)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	r.h.nlmsg_type = RTM_NEWROUTE;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct rtmsg *rt = NLMSG_DATA(&r.h);
	rt->rtm_family = AF_INET;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	uint32_t be = htonl(gw);
	rtnl_add(&r.h, RTA_GATEWAY, &be, 4);
	uint32_t oif = (uint32_t)ifindex;
	rtnl_add(&r.h, RTA_OIF, &oif, 4);
	return rtnl_talk(fd, &r.h, seq);
}

/* The veth pair: `name` here, "eth0" in netns, both up. */
int rtnl_new_veth(int fd, uint32_t seq, const char *name, int netns)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	rtnl_add(&r.h, IFLA_IFNAME, name, strlen(name) + 1);
	struct rtattr *info = rtnl_add(&r.h, IFLA_LINKINFO, NULL, 0);
	rtnl_add(&r.h, IFLA_INFO_KIND, "veth", 5);
	struct rtattr *data = rtnl_add(&r.h, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *peer = rtnl_add(&r.h, VETH_INFO_PEER, NULL, 0);
	/* The peer's ifinfomsg is the payload's head, its attributes follow: all zero (r was
	 * cleared), not up, since the kernel opens it before pairing it and that fails;
	 * net_attach brings it up. */
	r.h.nlmsg_len += NLMSG_ALIGN(sizeof(struct ifinfomsg));
	rtnl_add(&r.h, IFLA_IFNAME, "eth0", 5);
	uint32_t nsfd = (uint32_t)netns;
	rtnl_add(&r.h, IFLA_NET_NS_FD, &nsfd, 4);
	rtnl_end(&r.h, peer);
	rtnl_end(&r.h, data);
	rtnl_end(&r.h, info);
	return rtnl_talk(fd, &r.h, seq);
}

int rtnl_link_up(int fd, uint32_t seq, int ifindex)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return rtnl_talk(fd, &r.h, seq);
}

int rtnl_del_link(int fd, uint32_t seq, const char *name)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_DELLINK;
	rtnl_add(&r.h, IFLA_IFNAME, name, strlen(name) + 1);
	return rtnl_talk(fd, &r.h, seq);
}

int rtnl_ifindex(int sock, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	return ioctl(sock, SIOCGIFINDEX, &ifr) < 0 ? -errno : ifr.ifr_ifindex;
}

/* Deletes every link of the host namespace whose name starts with prefix (what a pool of
 * this range left behind). Returns how many went. */
int rtnl_delete_links(int fd, uint32_t *seq, const char *prefix)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_GETLINK;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.h.nlmsg_seq = ++*seq;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, &r, r.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	char names[256][IFNAMSIZ];
	int n = 0;
	size_t plen = strlen(prefix);
	static char buf[32768];
	for (bool done = false; !done;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got);
		     h = NLMSG_NEXT(h, got)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			int alen = (int)IFLA_PAYLOAD(h);
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == IFLA_IFNAME && n < 256 &&
				    strncmp(RTA_DATA(a), prefix, plen) == 0)
					snprintf(names[n++], IFNAMSIZ, "%s", (char *)RTA_DATA(a));
		}
	}
	int gone = 0;
	for (int i = 0; i < n; i++)
		gone += rtnl_del_link(fd, ++*seq, names[i]) == 0;
	/* A full batch may hide more: go again until a pass finds fewer. */
	if (n == 256 && gone > 0) {
		int more = rtnl_delete_links(fd, seq, prefix);
		if (more > 0)
			gone += more;
	}
	return gone;
}
