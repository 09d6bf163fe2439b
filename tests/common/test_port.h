/* A TCP port on 127.0.0.1 that nobody listens on now, for a daemon a test starts: below the
 * kernel's ephemeral range (32768 and up, where outgoing connections of other tests take
 * theirs), spread by seed (the test's pid), checked by binding it. A daemon started right
 * after gets it unless another process takes it in between, which these ports make rare. */
#ifndef ROLLOUT_TEST_PORT_H
#define ROLLOUT_TEST_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int test_free_port(unsigned seed)
{
	for (unsigned i = 0; i < 2000; i++) {
		int port = 20000 + (int)((seed * 7919u + i * 97u) % 12000u);
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -1;
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(s);
		/* Its neighbour too: some tests put a metrics endpoint on port + 1. */
		if (ok) {
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			a.sin_port = htons((uint16_t)(port + 1));
			ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
			if (s >= 0)
				close(s);
		}
		if (ok)
			return port;
	}
	return -1;
}

#endif
