/* `network: egress` end to end: a real rollout-pool whose sandboxes get routed veths and the
 * pool's nftables table, against servers in network namespaces of this test (ip netns, veth).
 * Every negative probe runs in the same command as an allowed one that must succeed, so a
 * probe that never ran cannot pass for a refused connection; and every refused destination
 * is first shown to answer the host (the refusal is the policy's, not a missing server).
 * Needs root, iproute2 and unshare: exits 77 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "rollout_wire.h"

static char pool_bin[512], wrapper[256], config[256], hosts[256], endpoint[64], srv_py[256];
static char ns_a[32], ns_b[32], veth_a[32], veth_b[32];
static char ip_a[32], ip_b[32], range[32];
static int pool_port, metrics_port;
static pid_t pool_pid = -1, srv_a = -1, srv_b = -1;
static struct pc C;

/* What a sandbox runs: each argument PROTO:HOST:PORT gets one line SPEC=OK or SPEC=FAIL:why.
 * tcp and udp expect the test server's answer ("P<port>", "U<port>"); conn only connects. */
static const char probe_py[] = "import socket, sys\n"
			       "for spec in sys.argv[1:]:\n"
			       "    proto, host, port = spec.split(':')\n"
			       "    port = int(port)\n"
			       "    try:\n"
			       "        if proto == 'udp':\n"
			       "            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
			       "            s.settimeout(1.5)\n"
			       "            s.sendto(b'hi', (host, port))\n"
			       "            d = s.recvfrom(64)[0]\n"
			       "            r = 'OK' if d.startswith(b'U%d' % port) else 'BAD:%r' % d\n"
			       "        else:\n"
			       "            s = socket.create_connection((host, port), timeout=2)\n"
			       "            if proto == 'conn':\n"
			       "                r = 'OK'\n"
			       "            else:\n"
			       "                s.settimeout(2)\n"
			       "                d = s.recv(64)\n"
			       "                r = 'OK' if d.startswith(b'P%d' % port) else 'BAD:%r' % d\n"
			       "        s.close()\n"
			       "    except Exception as e:\n"
			       "        r = 'FAIL:' + type(e).__name__\n"
			       "    print('%s=%s' % (spec, r), flush=True)\n";

/* The servers in a test namespace: TCP ports answer "P<port>", UDP ports "U<port>". */
static const char server_py[] =
    "import selectors, socket, sys\n"
    "sel = selectors.DefaultSelector()\n"
    "for kind, ports in (('t', sys.argv[1]), ('u', sys.argv[2])):\n"
    "    for p in map(int, ports.split(',')):\n"
    "        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == 't' else socket.SOCK_DGRAM)\n"
    "        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "        s.bind(('0.0.0.0', p))\n"
    "        if kind == 't':\n"
    "            s.listen(64)\n"
    "        sel.register(s, selectors.EVENT_READ, (kind, p))\n"
    "open(sys.argv[3], 'w').close()\n"
    "while True:\n"
    "    for key, _ in sel.select():\n"
    "        kind, p = key.data\n"
    "        if kind == 't':\n"
    "            c = key.fileobj.accept()[0]\n"
    "            c.sendall(b'P%d\\n' % p)\n"
    "            c.close()\n"
    "        else:\n"
    "            d, a = key.fileobj.recvfrom(64)\n"
    "            key.fileobj.sendto(b'U%d\\n' % p, a)\n";

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output of a host command (first line), or "" */
static void capture(char *out, size_t cap, const char *cmd)
{
	out[0] = 0;
	FILE *p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(out, (int)cap, p))
		out[0] = 0;
	pclose(p);
	out[strcspn(out, "\n")] = 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int make_ns(const char *ns, const char *veth, int k, int quad)
{
	/* 198.18.K.(4q+1) on the host side, .(4q+2) in the namespace. */
	return run("ip netns add %s && ip link add %s type veth peer name eth0 netns %s && "
		   "ip addr add 198.18.%d.%d/30 dev %s && ip link set %s up && "
		   "ip -n %s addr add 198.18.%d.%d/30 dev eth0 && ip -n %s link set eth0 up && "
		   "ip -n %s link set lo up",
		   ns, veth, ns, k, 4 * quad + 1, veth, veth, ns, k, 4 * quad + 2, ns, ns);
}

static pid_t start_server(const char *ns, const char *tcp, const char *udp)
{
	char ready[128];
	snprintf(ready, sizeof(ready), "/tmp/rollout-test-net-%d-%s.ready", (int)getpid(), ns);
	unlink(ready);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("ip", "ip", "netns", "exec", ns, "python3", srv_py, tcp, udp, ready, (char *)NULL);
		_exit(127);
	}
	struct stat st;
	for (int i = 0; i < 200 && stat(ready, &st) < 0; i++)
		usleep(25000);
	unlink(ready);
	return pid;
}

static void write_config(const char *path, const char *egress_net)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "pool:\n"
		 "  identity: test-pool-net\n"
		 "  listen: %s\n"
		 "  metrics: 0.0.0.0:%d\n"
		 "  cgroup: rollout-test-net-%d\n"
		 "  egress_range: %s\n"
		 "  profiles:\n"
		 "    - {name: net, warm: 2, max: 8, uid_base: 720000, uid_count: 1000, network: egress,\n"
		 "       egress: [%s]}\n"
		 "    - {name: net2, warm: 1, max: 4, uid_base: 721000, uid_count: 1000, network: egress,\n"
		 "       egress: [\"%s:8080\"]}\n"
		 "    - {name: plain, warm: 0, max: 4, uid_base: 722000, uid_count: 1000}\n",
		 endpoint, metrics_port, (int)getpid(), range, egress_net, ip_b);
	write_file(path, text, 0600);
}

static pid_t spawn_pool(void)
{
	return pc_spawn_pool(wrapper, config, endpoint, 20000);
}

static void stop_pool(int sig)
{
	if (pool_pid > 0) {
		kill(pool_pid, sig);
		waitpid(pool_pid, NULL, 0);
	}
	pool_pid = -1;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_pool_net: needs root (namespaces, veths, nftables); skipping\n");
		exit(77);
	}
	if (run("command -v ip >/dev/null && command -v unshare >/dev/null && command -v python3 "
		">/dev/null") != 0) {
		fprintf(stderr, "test_pool_net: needs ip (iproute2), unshare and python3; skipping\n");
		exit(77);
	}
	int pid = (int)getpid();
	const char *bin = getenv("ROLLOUT_BINARY_DIR");
	snprintf(pool_bin, sizeof(pool_bin), "%s/pool/rollout-pool", bin ? bin : ".");
	int k = 1 + pid % 250;
	snprintf(ns_a, sizeof(ns_a), "rtnA%d", pid);
	snprintf(ns_b, sizeof(ns_b), "rtnB%d", pid);
	snprintf(veth_a, sizeof(veth_a), "rtA%d", pid);
	snprintf(veth_b, sizeof(veth_b), "rtB%d", pid);
	snprintf(ip_a, sizeof(ip_a), "198.18.%d.2", k);
	snprintf(ip_b, sizeof(ip_b), "198.18.%d.6", k);
	snprintf(range, sizeof(range), "10.%d.0.0/16", 100 + pid % 100);
	pool_port = 30000 + pid % 10000;
	metrics_port = pool_port + 10000;
	snprintf(endpoint, sizeof(endpoint), "tcp://0.0.0.0:%d", pool_port);
	snprintf(config, sizeof(config), "/tmp/rollout-test-net-%d.yaml", pid);
	snprintf(hosts, sizeof(hosts), "/tmp/rollout-test-net-%d.hosts", pid);
	snprintf(wrapper, sizeof(wrapper), "/tmp/rollout-test-net-%d.sh", pid);
	snprintf(srv_py, sizeof(srv_py), "/tmp/rollout-test-net-%d-server.py", pid);
	write_file(srv_py, server_py, 0644);
	/* The pool resolves allowlisted names through its own /etc/hosts: give it ours in a
	 * mount namespace of its own. */
	char text[1024];
	snprintf(text, sizeof(text), "127.0.0.1 localhost\n%s srv-a.test\n%s srv-b.test\n", ip_a, ip_b);
	write_file(hosts, text, 0644);
	snprintf(text, sizeof(text),
		 "#!/bin/sh\nexec unshare -m --propagation private sh -c "
		 "'mount --bind \"$1\" /etc/hosts && shift && exec \"$@\"' sh %s %s \"$@\"\n",
		 hosts, pool_bin);
	write_file(wrapper, text, 0755);
	if (make_ns(ns_a, veth_a, k, 0) || make_ns(ns_b, veth_b, k, 1)) {
		fprintf(stderr, "test_pool_net: cannot make the test namespaces\n");
		return -1;
	}
	srv_a = start_server(ns_a, "8080,8081,8082,5353", "5353,5354,8082,53");
	srv_b = start_server(ns_b, "8080", "53");
	snprintf(text, sizeof(text), "\"%s:8080/tcp\", \"%s:5353/udp\", \"srv-a.test:8082\"", ip_a, ip_a);
	write_config(config, text);
	pool_pid = spawn_pool();
	if (pool_pid < 0) {
		fprintf(stderr, "test_pool_net: cannot start %s: %d\n", pool_bin, pool_pid);
		return -1;
	}
	return pc_connect(&C, endpoint, "tester", 10000);
}

static int teardown(void **state)
{
	(void)state;
	pc_close(&C);
	stop_pool(SIGTERM);
	if (srv_a > 0)
		kill(srv_a, SIGKILL), waitpid(srv_a, NULL, 0);
	if (srv_b > 0)
		kill(srv_b, SIGKILL), waitpid(srv_b, NULL, 0);
	run("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; ip link del %s 2>/dev/null; "
	    "ip link del %s 2>/dev/null",
	    ns_a, ns_b, veth_a, veth_b);
	unlink(config);
	unlink(hosts);
	unlink(wrapper);
	unlink(srv_py);
	return 0;
}

static uint64_t open_box(struct pc *c, const char *profile)
{
	struct pc_result r;
	assert_int_equal(pc_open(c, profile, &r, 15000), 0);
	if (r.status != 0)
		fail_msg("open %s: status %d (%s)", profile, r.status, r.message ? r.message : "");
	return r.sandbox;
}

static void close_box(struct pc *c, uint64_t box)
{
	struct pc_result r;
	assert_int_equal(pc_close_sandbox(c, box, &r), 0);
	assert_int_equal(r.status, 0);
}

/* Runs the probe with the given specs; returns its stdout (static, until the next call). */
static const char *probe(uint64_t box, const char *specs)
{
	static char out[65536];
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "python3 - %s", specs);
	struct pc_result r;
	assert_int_equal(pc_exec(&C, box, cmd, NULL, probe_py, strlen(probe_py), 60000, 0, &r, 70000), 0);
	if (r.status != 0 || r.exit_code != 0)
		fail_msg("probe: status %d exit %d: %.*s", r.status, r.exit_code, (int)r.err_len,
			 (const char *)r.err);
	size_t n = r.out_len < sizeof(out) - 1 ? r.out_len : sizeof(out) - 1;
	memcpy(out, r.out, n);
	out[n] = 0;
	printf("%s", out);
	return out;
}

static void expect(const char *out, const char *spec, bool ok)
{
	char want[256];
	snprintf(want, sizeof(want), "%s=%s", spec, ok ? "OK" : "FAIL");
	if (!strstr(out, want))
		fail_msg("expected %s in:\n%s", want, out);
}

/* The host side: can this process connect (and, for a test server, read its answer)? */
static bool host_connects(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	struct timeval tv = { 2, 0 };
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

static void sandbox_ip(struct pc *c, uint64_t box, char *ip, size_t cap)
{
	/* Netlink is closed to sandboxes (no `ip addr`): the source address a route picks. */
	struct pc_result r;
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
		 "s.connect(('%s', 8080)); print('inet ' + s.getsockname()[0] + '/')\"",
		 ip_a);
	assert_int_equal(pc_exec(c, box, cmd, NULL, NULL, 0, 10000, 0, &r, 15000), 0);
	assert_int_equal(r.status, 0);
	char buf[512];
	size_t n = r.out_len < sizeof(buf) - 1 ? r.out_len : sizeof(buf) - 1;
	memcpy(buf, r.out, n);
	buf[n] = 0;
	char *p = strstr(buf, "inet ");
	if (!p)
		fail_msg("no IPv4 address on eth0: %s", buf);
	p += 5;
	size_t l = strcspn(p, "/");
	assert_true(l < cap);
	memcpy(ip, p, l);
	ip[l] = 0;
}

/* ---- tests ---- */

/* Allowed host, port and protocol pass; a denied port, protocol or host does not. */
static void test_allowlist(void **state)
{
	(void)state;
	/* The refused destinations do answer the host. */
	assert_true(host_connects(ip_a, 8081));
	assert_true(host_connects(ip_a, 5353));
	assert_true(host_connects(ip_b, 8080));
	uint64_t b = open_box(&C, "net");
	char specs[1024];
	snprintf(specs, sizeof(specs),
		 "tcp:%s:8080 tcp:%s:8081 udp:%s:5353 udp:%s:5354 tcp:%s:5353 tcp:srv-a.test:8082 "
		 "udp:srv-a.test:8082 tcp:%s:8080 udp:%s:53 udp:%s:53",
		 ip_a, ip_a, ip_a, ip_a, ip_a, ip_b, ip_a, ip_b);
	const char *out = probe(b, specs);
	char s[128];
#define SPEC(fmt, ...) (snprintf(s, sizeof(s), fmt, __VA_ARGS__), s)
	expect(out, SPEC("tcp:%s:8080", ip_a), true);  /* allowed: the probe ran */
	expect(out, SPEC("tcp:%s:8081", ip_a), false); /* port not allowed */
	expect(out, SPEC("udp:%s:5353", ip_a), true);  /* udp entry */
	expect(out, SPEC("udp:%s:5354", ip_a), false); /* udp port not allowed */
	expect(out, SPEC("tcp:%s:5353", ip_a), false); /* the entry says /udp */
	expect(out, "tcp:srv-a.test:8082", true);      /* a host entry: both protocols */
	expect(out, "udp:srv-a.test:8082", true);
	expect(out, SPEC("tcp:%s:8080", ip_b), false); /* host not allowed */
	expect(out, SPEC("udp:%s:53", ip_a), false);   /* no DNS server on an allowed host */
	expect(out, SPEC("udp:%s:53", ip_b), false);
	close_box(&C, b);
}

/* Each profile has its own allowlist. */
static void test_profiles_apart(void **state)
{
	(void)state;
	uint64_t b = open_box(&C, "net2");
	char specs[256], s[128];
	snprintf(specs, sizeof(specs), "tcp:%s:8080 udp:%s:53 tcp:%s:8080", ip_b, ip_b, ip_a);
	const char *out = probe(b, specs);
	expect(out, SPEC("tcp:%s:8080", ip_b), true);
	expect(out, SPEC("udp:%s:53", ip_b), false);
	expect(out, SPEC("tcp:%s:8080", ip_a), false);
	close_box(&C, b);
	/* network: none, as before: only lo. */
	b = open_box(&C, "plain");
	struct pc_result r;
	assert_int_equal(
	    pc_exec(&C, b, "ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
		    NULL, NULL, 0, 10000, 0, &r, 15000),
	    0);
	assert_int_equal(r.status, 0);
	assert_null(memmem(r.out, r.out_len, "eth0", 4));
	assert_non_null(memmem(r.out, r.out_len, "lo", 2));
	close_box(&C, b);
}

/* Allowed names resolve (from /etc/hosts the pool wrote); nothing else does. */
static void test_dns(void **state)
{
	(void)state;
	uint64_t b = open_box(&C, "net");
	struct pc_result r;
	const char *cmd =
	    "getent hosts srv-a.test; echo a=$?; getent hosts srv-b.test; echo b=$?; "
	    "getent hosts example.com; echo ex=$?; "
	    "python3 -c \"import socket; socket.getaddrinfo('srv-b.test', 80)\" 2>/dev/null; echo py=$?; "
	    "echo resolv=$(wc -c < /etc/resolv.conf)";
	assert_int_equal(pc_exec(&C, b, cmd, NULL, NULL, 0, 30000, 0, &r, 35000), 0);
	assert_int_equal(r.status, 0);
	printf("%.*s", (int)r.out_len, (const char *)r.out);
	char want[64];
	snprintf(want, sizeof(want), "%s", ip_a);
	assert_non_null(memmem(r.out, r.out_len, want, strlen(want)));
	assert_non_null(memmem(r.out, r.out_len, "a=0", 3)); /* the probe ran and resolved */
	assert_non_null(memmem(r.out, r.out_len, "b=2", 3)); /* known to the pool, not allowed */
	assert_non_null(memmem(r.out, r.out_len, "ex=2", 4));
	assert_non_null(memmem(r.out, r.out_len, "py=1", 4));
	assert_non_null(memmem(r.out, r.out_len, "resolv=0", 8));
	snprintf(want, sizeof(want), "%s", ip_b);
	assert_null(memmem(r.out, r.out_len, want, strlen(want)));
	close_box(&C, b);
}

/* A sandbox cannot reach a sibling (its address or its gateway), whatever listens there. */
static void test_siblings(void **state)
{
	(void)state;
	struct pc c2;
	assert_int_equal(pc_connect(&c2, endpoint, "tester2", 10000), 0);
	uint64_t b1 = open_box(&C, "net"), b2 = open_box(&c2, "net");
	char ip2[32];
	sandbox_ip(&c2, b2, ip2, sizeof(ip2));
	/* The sibling listens for 6 s, proves its listener works by connecting to itself, and
	 * says how many connections it accepted. */
	char listen_cmd[1024];
	snprintf(listen_cmd, sizeof(listen_cmd),
		 "python3 -c \"\nimport socket, time\ns = socket.socket(); s.bind(('0.0.0.0', 9000)); "
		 "s.listen(8); s.settimeout(0.2)\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
		 "u.bind(('0.0.0.0', 9000)); u.setblocking(False)\n"
		 "socket.create_connection(('%s', 9000), timeout=1)\nn = 0; d = 0\nend = time.time() + 6\n"
		 "while time.time() < end:\n"
		 "    try:\n        s.accept(); n += 1\n    except OSError:\n        pass\n"
		 "    try:\n        u.recvfrom(64); d += 1\n    except OSError:\n        pass\n"
		 "print('accepted=%%d datagrams=%%d' %% (n, d))\n\"",
		 ip2);
	assert_int_equal(pc_send_exec(&c2, 777, b2, listen_cmd, 20000), 0);
	usleep(500000);
	char gw2[32];
	struct in_addr a;
	inet_pton(AF_INET, ip2, &a);
	a.s_addr = htonl(ntohl(a.s_addr) - 1);
	inet_ntop(AF_INET, &a, gw2, sizeof(gw2));
	char specs[512], s[128];
	snprintf(specs, sizeof(specs), "tcp:%s:8080 conn:%s:9000 udp:%s:9000 conn:%s:%d conn:%s:22", ip_a,
		 ip2, ip2, gw2, pool_port, gw2);
	const char *out = probe(b1, specs);
	expect(out, SPEC("tcp:%s:8080", ip_a), true);
	expect(out, SPEC("conn:%s:9000", ip2), false);
	expect(out, SPEC("udp:%s:9000", ip2), false);
	expect(out, SPEC("conn:%s:%d", gw2, pool_port), false);
	struct pc_result r;
	assert_int_equal(pc_wait(&c2, 777, &r, 20000), 0);
	assert_int_equal(r.status, 0);
	printf("sibling: %.*s", (int)r.out_len, (const char *)r.out);
	/* Its own connection only: the listener worked and nothing of b1 arrived. */
	assert_non_null(memmem(r.out, r.out_len, "accepted=1 datagrams=0", 22));
	close_box(&C, b1);
	close_box(&c2, b2);
	pc_close(&c2);
}

/* The pool's ZeroMQ and metrics ports on every host address, the host's own addresses:
 * all answer the host, none answers a sandbox. */
static void test_host_unreachable(void **state)
{
	(void)state;
	uint64_t b = open_box(&C, "net");
	char gw[32], ip[32];
	sandbox_ip(&C, b, ip, sizeof(ip));
	struct in_addr a;
	inet_pton(AF_INET, ip, &a);
	a.s_addr = htonl(ntohl(a.s_addr) - 1);
	inet_ntop(AF_INET, &a, gw, sizeof(gw));
	char specs[8192], s[128];
	size_t used =
	    (size_t)snprintf(specs, sizeof(specs), "tcp:%s:8080 conn:127.0.0.1:%d", ip_a, pool_port);
	struct ifaddrs *ifs, *i;
	assert_int_equal(getifaddrs(&ifs), 0);
	int n = 0;
	bool saw_gw = false;
	for (i = ifs; i && n < 48; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		char h[32];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, h, sizeof(h));
		if (strncmp(h, "127.", 4) == 0)
			continue;
		saw_gw |= strcmp(h, gw) == 0;
		/* The control: the host reaches both ports there. */
		if (!host_connects(h, pool_port) || !host_connects(h, metrics_port))
			fail_msg("the host cannot reach the pool on %s", h);
		used += (size_t)snprintf(specs + used, sizeof(specs) - used, " conn:%s:%d conn:%s:%d", h,
					 pool_port, h, metrics_port);
		n++;
	}
	freeifaddrs(ifs);
	assert_true(saw_gw); /* the sandbox's gateway is one of the host's addresses */
	assert_true(n >= 2);
	const char *out = probe(b, specs);
	expect(out, SPEC("tcp:%s:8080", ip_a), true);
	expect(out, SPEC("conn:127.0.0.1:%d", pool_port), false);
	const char *p = out;
	int refused = 0;
	while ((p = strstr(p, "conn:"))) {
		const char *eq = strchr(p, '=');
		assert_non_null(eq);
		if (strncmp(eq + 1, "FAIL", 4) != 0)
			fail_msg("a sandbox reached the host: %.*s", (int)strcspn(p, "\n"), p);
		refused++;
		p = eq;
	}
	assert_int_equal(refused, 2 * n + 1);
	close_box(&C, b);
}

/* IPv6 is dropped from a sandbox's veth: the host end's link-local address, where this test
 * listens, answers the host and not the sandbox (whose own link-local address is ready). */
static void test_ipv6_dropped(void **state)
{
	(void)state;
	uint64_t b = open_box(&C, "net");
	char ip[32], dev[64], ll[64], cmd[512];
	sandbox_ip(&C, b, ip, sizeof(ip));
	snprintf(cmd, sizeof(cmd), "ip -o route get %s | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'", ip);
	capture(dev, sizeof(dev), cmd);
	assert_int_equal(dev[0], 'r');
	/* The host end's link-local address, once duplicate address detection is done. */
	uint64_t end = now_ms() + 5000;
	do {
		snprintf(cmd, sizeof(cmd),
			 "ip -6 -o addr show dev %s scope link | grep -v tentative | awk '{print $4}' | cut "
			 "-d/ -f1",
			 dev);
		capture(ll, sizeof(ll), cmd);
	} while (!ll[0] && now_ms() < end && usleep(50000) == 0);
	if (!ll[0])
		fail_msg("no link-local address on %s", dev);
	int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
	assert_int_equal(bind(l, (struct sockaddr *)&a6, sizeof(a6)), 0);
	assert_int_equal(listen(l, 16), 0);
	socklen_t al = sizeof(a6);
	getsockname(l, (struct sockaddr *)&a6, &al);
	int port = ntohs(a6.sin6_port);
	/* The control: the host reaches its listener there. */
	int c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 to = { .sin6_family = AF_INET6,
				   .sin6_port = htons((uint16_t)port),
				   .sin6_scope_id = if_nametoindex(dev) };
	assert_int_equal(inet_pton(AF_INET6, ll, &to.sin6_addr), 1);
	assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
	close(c);
	/* In the sandbox: wait for its own link-local address to be usable (not tentative:
	 * flag 0x40 of /proc/net/if_inet6), then try. */
	char sh[2048];
	snprintf(sh, sizeof(sh),
		 "python3 -c \"\nimport socket, time\n"
		 "def ready():\n"
		 "    for line in open('/proc/net/if_inet6'):\n"
		 "        f = line.split()\n"
		 "        if f[5] == 'eth0' and f[0].startswith('fe80') and not int(f[4], 16) & 0x40:\n"
		 "            return True\n"
		 "    return False\n"
		 "end = time.time() + 5\n"
		 "while not ready() and time.time() < end:\n"
		 "    time.sleep(0.05)\n"
		 "print('ll-ready=%%s' %% ready())\n"
		 "socket.create_connection(('%s', 8080), timeout=2).close(); print('v4=OK')\n"
		 "try:\n"
		 "    socket.create_connection(('%s%%eth0', %d), timeout=3).close(); print('v6=OK')\n"
		 "except OSError as e:\n"
		 "    print('v6=FAIL:' + type(e).__name__)\n\"",
		 ip_a, ll, port);
	struct pc_result r;
	assert_int_equal(pc_exec(&C, b, sh, NULL, NULL, 0, 30000, 0, &r, 35000), 0);
	close(l);
	printf("%.*s%.*s", (int)r.out_len, (const char *)r.out, (int)r.err_len, (const char *)r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(memmem(r.out, r.out_len, "ll-ready=True", 13));
	assert_non_null(memmem(r.out, r.out_len, "v4=OK", 5)); /* the probe ran */
	assert_non_null(memmem(r.out, r.out_len, "v6=FAIL", 7));
	close_box(&C, b);
}

/* An unresolvable allowlisted name stops the pool at start with the key in the message. */
static void test_unresolvable_host(void **state)
{
	(void)state;
	char path[128], cmd[1024], out[2048];
	snprintf(path, sizeof(path), "/tmp/rollout-test-net-%d-bad.yaml", (int)getpid());
	char text[512];
	snprintf(
	    text, sizeof(text),
	    "pool:\n  listen: ipc:///tmp/rollout-test-net-%d-bad.sock\n  cgroup: rollout-test-netbad-%d\n"
	    "  egress_range: 10.99.0.0/24\n  profiles:\n"
	    "    - {name: bad, network: egress, egress: [\"10.1.0.0/16\", \"nosuch-host.invalid:443\"]}\n",
	    (int)getpid(), (int)getpid());
	write_file(path, text, 0600);
	snprintf(cmd, sizeof(cmd), "timeout 20 %s --config %s 2>&1; echo rc=$?", pool_bin, path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	unlink(path);
	printf("%s", out);
	assert_non_null(
	    strstr(out, "pool.profiles[0] (bad): egress[1]: cannot resolve 'nosuch-host.invalid'"));
	assert_non_null(strstr(out, path));
	assert_non_null(strstr(out, "rc=1"));
}

/* A second pool on the same range is refused, and leaves the running pool's table alone. */
static void test_range_taken(void **state)
{
	(void)state;
	char path[128], cmd[1024], out[2048], text[512];
	snprintf(path, sizeof(path), "/tmp/rollout-test-net-%d-second.yaml", (int)getpid());
	snprintf(
	    text, sizeof(text),
	    "pool:\n  listen: ipc:///tmp/rollout-test-net-%d-second.sock\n  cgroup: rollout-test-net2-%d\n"
	    "  egress_range: %s\n  profiles:\n"
	    "    - {name: other, network: egress, egress: [\"10.1.0.0/16\"], uid_base: 723000, uid_count: "
	    "100}\n",
	    (int)getpid(), (int)getpid(), range);
	write_file(path, text, 0600);
	snprintf(cmd, sizeof(cmd), "timeout 20 %s --config %s 2>&1; echo rc=$?", pool_bin, path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	unlink(path);
	printf("%s", out);
	assert_non_null(strstr(out, "another rollout-pool on this host holds"));
	assert_non_null(strstr(out, "rc=1"));
	/* The first pool still works: its table is intact. */
	uint64_t b = open_box(&C, "net");
	char specs[128], s[128];
	snprintf(specs, sizeof(specs), "tcp:%s:8080 tcp:%s:8081", ip_a, ip_a);
	const char *o = probe(b, specs);
	expect(o, SPEC("tcp:%s:8080", ip_a), true);
	expect(o, SPEC("tcp:%s:8081", ip_a), false);
	close_box(&C, b);
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

/* Closing a sandbox removes its veth; a pool killed with -9 and started again removes what
 * the old one left and installs its table once; a pool that stops removes its table. */
static void test_teardown_and_restart(void **state)
{
	(void)state;
	uint64_t b = open_box(&C, "net");
	char ip[32], dev[64], cmd[256];
	sandbox_ip(&C, b, ip, sizeof(ip));
	snprintf(cmd, sizeof(cmd), "ip -o route get %s | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'", ip);
	capture(dev, sizeof(dev), cmd);
	printf("sandbox %s behind %s\n", ip, dev);
	assert_int_equal(strlen(dev), 15);
	assert_int_equal(dev[0], 'r');
	assert_true(link_exists(dev));
	close_box(&C, b);
	uint64_t end = now_ms() + 3000;
	while (link_exists(dev) && now_ms() < end)
		usleep(10000);
	assert_false(link_exists(dev));
	char table[64], prefix[8];
	snprintf(prefix, sizeof(prefix), "%.6s", dev);
	snprintf(table, sizeof(table), "rollout_pool_%.5s", dev + 1);
	assert_int_equal(run("nft list table inet %s >/dev/null", table), 0);

	/* kill -9, then what a crash could leave: a veth of ours, with no sandbox. */
	pc_close(&C);
	stop_pool(SIGKILL);
	char left[32];
	snprintf(left, sizeof(left), "%sfefffffff", prefix);
	assert_int_equal(run("ip link add %s type veth peer name rtL%d", left, (int)getpid()), 0);
	assert_true(link_exists(left));
	pool_pid = spawn_pool();
	assert_true(pool_pid > 0);
	assert_int_equal(pc_connect(&C, endpoint, "tester", 10000), 0);
	assert_false(link_exists(left));
	char count[32];
	snprintf(cmd, sizeof(cmd), "nft list tables | grep -c -x 'table inet %s'", table);
	capture(count, sizeof(count), cmd);
	assert_string_equal(count, "1");
	b = open_box(&C, "net");
	char specs[128], s[128];
	snprintf(specs, sizeof(specs), "tcp:%s:8080 tcp:%s:8081", ip_a, ip_a);
	const char *out = probe(b, specs);
	expect(out, SPEC("tcp:%s:8080", ip_a), true);
	expect(out, SPEC("tcp:%s:8081", ip_a), false);
	close_box(&C, b);

	/* A pool that stops takes its table and veths along. */
	pc_close(&C);
	stop_pool(SIGTERM);
	assert_int_not_equal(run("nft list table inet %s >/dev/null 2>&1", table), 0);
	snprintf(cmd, sizeof(cmd), "ip -o link show | grep -c ': %s' || true", prefix);
	capture(count, sizeof(count), cmd);
	assert_string_equal(count, "0");
	/* Later tests (none now) would need it again. */
	pool_pid = spawn_pool();
	assert_true(pool_pid > 0);
	assert_int_equal(pc_connect(&C, endpoint, "tester", 10000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_profiles_apart),
		cmocka_unit_test(test_dns),
		cmocka_unit_test(test_siblings),
		cmocka_unit_test(test_host_unreachable),
		cmocka_unit_test(test_ipv6_dropped),
		cmocka_unit_test(test_unresolvable_host),
		cmocka_unit_test(test_range_taken),
		cmocka_unit_test(test_teardown_and_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
