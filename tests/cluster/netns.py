"""A cluster of hosts made of network namespaces on this machine, for the cluster tests.

One "switch" namespace holds a bridge; every host is a namespace with one veth port on it
and an address in 10.77.0.0/24, which exists only inside these namespaces (the machine's
own namespace gains nothing). Host names carry a tag made from the test's pid, so runs do
not collide and leftovers of a killed run are recognised and removed by the next one.

Links are veth pairs, or for hosts that get faults a pair of TAPs joined by wire.py (this
kernel has neither sch_netem nor tc classifiers; a link in user space drops and delays
frames as netem would, per direction). Everything made here is undone by Cluster.down(), which the tests call from `finally`, from
an atexit hook and from SIGTERM/SIGINT handlers; processes are started with
PR_SET_PDEATHSIG so they die with the test even when it is killed with SIGKILL.
"""
import atexit
import ctypes
import glob
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse

SUBNET = "10.77.0"
PREFIX = "rc"  # every namespace: rc<pid>-<host>

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG; survives the exec of `ip netns exec`


def run(*argv, check=True, quiet=False):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r.stdout


def sweep_stale():
    """Removes namespaces, /etc/netns entries and cgroups of earlier runs whose process is gone."""
    for ns in run("ip", "netns", "list").split("\n"):
        m = re.match(r"^%s(\d+)-\S+" % PREFIX, ns)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            run("ip", "netns", "del", ns.split()[0], check=False)
    for d in glob.glob("/etc/netns/%s*-*" % PREFIX):
        m = re.match(r"^%s(\d+)-" % PREFIX, os.path.basename(d))
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            shutil.rmtree(d, ignore_errors=True)
    for d in glob.glob("/sys/fs/cgroup/*/%s*-pool*" % PREFIX) + glob.glob("/sys/fs/cgroup/%s*-pool*" % PREFIX):
        m = re.search(r"/%s(\d+)-" % PREFIX, d)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            rm_cgroup(d)


def rm_cgroup(d):
    for sub in sorted(glob.glob(d + "/*/"), reverse=True):
        try:
            os.rmdir(sub)
        except OSError:
            pass
    try:
        os.rmdir(d)
    except OSError:
        pass


class Cluster:
    """Hosts (namespaces) on one bridge, the daemons on them, faults on their links."""

    def __init__(self, workdir):
        self.tag = "%s%d" % (PREFIX, os.getpid())
        self.dir = workdir
        self.hosts = {}  # name -> index
        self.procs = []  # (name, Popen)
        self.made_etc = []
        self.wires = {}  # host -> wire.py process
        self.down_done = False
        sweep_stale()
        self.sw = self.ns("sw")
        run("ip", "netns", "add", self.sw)
        run("ip", "-n", self.sw, "link", "set", "lo", "up")
        run("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.sw, "link", "set", "br0", "up")
        atexit.register(self.down)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, sig, frame):
        self.down()
        os._exit(128 + sig)

    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def addr(self, host):
        return "%s.%d" % (SUBNET, 10 + self.hosts[host])

    def add_host(self, host, wire=False):
        """A namespace with lo up and eth0 on the bridge (port p<i> in the switch namespace).
        With wire, the link is a pair of TAPs joined by wire.py, where faults can be set."""
        i = len(self.hosts)
        self.hosts[host] = i
        ns = self.ns(host)
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        if wire:
            p = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                   "wire.py"), self.sw, "p%d" % i, ns, "eth0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 preexec_fn=_die_with_parent)
            self.procs.append(("wire-" + host, p))
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("wire for %s did not start" % host)
            self.wires[host] = p
        else:
            run("ip", "-n", self.sw, "link", "add", "p%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "-n", self.sw, "link", "set", "p%d" % i, "master", "br0", "up")
        run("ip", "-n", ns, "addr", "add", self.addr(host) + "/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        return ns

    def port(self, host):
        return "p%d" % self.hosts[host]

    # ---- processes ----

    def spawn(self, host, argv, log, keep_sys=False, **kw):
        """Starts argv in host's namespace. `ip netns exec` mounts a sysfs of the namespace over
        /sys (hiding /sys/fs/cgroup) and binds /etc/netns/<ns>/* over /etc; keep_sys enters
        the network namespace only (nsenter), so a pool keeps its cgroups."""
        f = open(log, "w")
        enter = (["nsenter", "--net=/var/run/netns/" + self.ns(host), "--"] if keep_sys
                 else ["ip", "netns", "exec", self.ns(host)])
        p = subprocess.Popen(enter + argv, stdout=f, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **kw)
        self.procs.append((host, p))
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def sh(self, host, *argv, check=True):
        return run("ip", "netns", "exec", self.ns(host), *argv, check=check)

    def scrape(self, host, url):
        """Prometheus text of url, fetched from inside host's namespace, as {series: value}."""
        t0 = time.monotonic()
        text = self.sh(host, "/usr/bin/python3", "-c",
                       "import sys,urllib.request as u;"
                       "sys.stdout.write(u.urlopen(sys.argv[1],timeout=3).read().decode())", url, check=False)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        took = time.monotonic() - t0
        if took > 1 or not out:
            print("(scrape of %s from %s took %.1f s, %d series)" % (url, host, took, len(out)), flush=True)
        return out

    def hosts_file(self, host, lines):
        """/etc/netns/<ns>/hosts: `ip netns exec` binds it over /etc/hosts for processes it starts.
        Rewritten in place (same inode) so a bind mount made earlier sees the new text."""
        d = "/etc/netns/%s" % self.ns(host)
        path = d + "/hosts"
        if not os.path.isdir(d):
            os.makedirs(d)
            self.made_etc.append(d)
        with open(path, "a+") as f:
            f.seek(0)
            f.truncate()
            f.write("127.0.0.1 localhost\n" + "".join(l + "\n" for l in lines))

    # ---- faults on a host's link ----

    def fault(self, host, direction="both", loss=0.0, delay=0.0, syn=False, nodata=False):
        """On a wire host's link: direction both, in (to the host) or out (from the host);
        loss a probability, delay seconds, syn drops new TCP connections only, nodata drops
        TCP segments that carry data (acknowledgements pass)."""
        p = self.wires[host]
        k = {"both": "both", "in": "ab", "out": "ba"}[direction]
        p.stdin.write("set %s loss=%g delay=%g syn=%d nodata=%d\n" % (k, loss, delay, int(syn), int(nodata)))
        p.stdin.flush()
        if p.stdout.readline().strip() != "ok":
            raise RuntimeError("wire for %s did not answer" % host)

    def wire_stats(self, host):
        """(segments, bytes) of TCP data passed to and from host since the last call."""
        p = self.wires[host]
        p.stdin.write("stats\n")
        p.stdin.flush()
        r = p.stdout.readline().split()
        if not r or r[0] != "ok":
            raise RuntimeError("wire for %s did not answer" % host)
        v = dict(x.split("=") for x in r[1:])
        return tuple(tuple(int(n) for n in v[k].split("/")) for k in ("ab", "ba"))

    def heal(self, host):
        self.fault(host, "both", 0.0, 0.0, False)

    def link(self, host, up):
        run("ip", "-n", self.sw, "link", "set", self.port(host), "up" if up else "down")

    # ---- teardown ----

    def down(self):
        """Stops every process, removes every namespace (their veths go with them) and file
        made under /etc/netns. Returns a list of what was still left afterwards."""
        if self.down_done:
            return []
        self.down_done = True
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 15
        for _, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for host in list(self.hosts) + ["sw"]:
            run("ip", "netns", "del", self.ns(host), check=False)
        for d in self.made_etc:
            shutil.rmtree(d, ignore_errors=True)
        left = [ns for ns in run("ip", "netns", "list").split("\n") if ns.startswith(self.tag + "-")]
        left += [d for d in self.made_etc if os.path.exists(d)]
        return left
