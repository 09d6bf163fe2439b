#!/usr/bin/python3
"""Many hosts: two rolloutd "GPU nodes" with a trainer each and four rollout-pool hosts, every
one a network namespace on one bridge (netns.py), a workload of pipelined trajectories
(cluster_driver.c) across them, and one fault per run:

  cut_short   a pool host's link down for less than pool_timeout_ms, then up again
  cut_long    a pool host cut off (100 % loss) for longer than the pool's lease, healed
              while new connections to it stay blocked, so only the old connection can
              deliver what rolloutd sent into the cut: the pool must not run any of it
  asymmetric  the pool hears rolloutd, rolloutd does not hear the pool
  delay       200 ms delay and 1 % loss on one pool link (both ways), steps/s with and without
  restart     a pool killed and started again at once: a new process (boot id), same address
  dns         rolloutd finds its pools by a dns: name; the name's addresses change while it
              runs (a fifth pool added, the first one removed)

Checked: every request completed exactly once (the drivers account for every id); steps in
flight on a lost pool complete SANDBOX_LOST with infra_failed; new opens reach healthy pools
within pool_timeout_ms; a cut-off pool reaps the sandboxes of the coordinators it no longer
hears; resources settle; every namespace, veth, process and cgroup made is gone at the end.
Prints, per fault, requests completed / lost / duplicated. Usage: cluster_test.py BUILD FAULT
The faulty pool's link is a user-space wire (wire.py: loss, delay, SYN drop per direction),
since this kernel has no sch_netem. Exit 0 pass, 1 fail, 77 skip (not root, no netns/TAP).
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

HEARTBEAT_MS, POOL_TIMEOUT_MS, LEASE_MS = 100, 2000, 3000
POOLS = 4
# A step that names its pool (uname -n), then takes 50 ms.
SLOW_STEP = "uname -n; sleep 0.05"
TRAJ, STEPS = 24, 8
ZMQ_PORT, POOL_METRICS, RD_METRICS = 7710, 9311, 9310
DNS_NAME = "pools.cluster.test"


class Test:
    def __init__(self, build, fault):
        self.build, self.fault = build, fault
        self.failures = []
        self.dir = tempfile.mkdtemp(prefix="rollout-cluster-%s-" % fault)
        self.cl = None
        self.pool_proc = {}
        self.rd_proc = {}
        self.drivers = {}
        self.pool_timeout_ms = POOL_TIMEOUT_MS
        self.lease_ms = LEASE_MS
        self.t0 = time.monotonic()
        self.results = []  # RESULT lines, also written for the summary ctest prints at the end

    def log(self, msg):
        print("[%6.2fs] %s" % (time.monotonic() - self.t0, msg), flush=True)

    def result(self, line):
        print(line, flush=True)
        self.results.append(line)

    def write_results(self):
        """build/test-results/cluster_<fault>.txt: tests/cluster/print_results.sh shows them
        after ctest (CTestCustom.cmake), whether the test passed or not."""
        d = os.path.join(os.environ.get("ROLLOUT_BINARY_DIR", self.build), "test-results")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cluster_%s.txt" % self.fault), "w") as f:
            for line in self.results:
                f.write(line + "\n")
            f.write("%s cluster_%s: %s\n" % ("PASS" if not self.failures else "FAIL", self.fault,
                                              "; ".join(self.failures) or "all checks passed"))

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    # ---- the cluster ----

    def pool_cfg(self, i):
        cl = self.cl
        host = "pool%d" % i
        path = os.path.join(self.dir, host + ".yaml")
        with open(path, "w") as f:
            f.write("pool:\n  identity: %s\n  listen: tcp://%s:%d\n  metrics: %s:%d\n  cgroup: %s-%s\n"
                    "  lease_ms: %d\n  profiles:\n"
                    "    - {name: default, hostname: %s, warm: 12, max: 96, memory_mb: 128, pids: 32,"
                    " workdir_mb: 8, timeout_ms: 30000}\n"
                    "    - {name: noop, type: noop, max: 100000}\n"
                    % (host, cl.addr(host), ZMQ_PORT, cl.addr(host), POOL_METRICS, cl.tag, host, self.lease_ms, host))
        return path

    def rd_cfg(self, g, pools):
        cl = self.cl
        host = "gpu%d" % g
        path = os.path.join(self.dir, host + ".yaml")
        if self.fault == "dns":
            plist = "  pools: [{dns: %s:%d}]\n" % (DNS_NAME, ZMQ_PORT)
        else:
            plist = "  pools:\n" + "".join("    - {endpoint: tcp://%s:%d}\n" % (cl.addr("pool%d" % i), ZMQ_PORT)
                                           for i in pools)
        with open(path, "w") as f:
            f.write("rolloutd:\n  socket: %s/%s.sock\n  metrics: %s:%d\n  identity: %s\n  shards: 1\n"
                    "  heartbeat_ms: %d\n  pool_timeout_ms: %d\n  lease_ms: %d\n  ring_bytes: 1048576\n"
                    "  max_record: 65536\n  drain_ms: 2000\n%s"
                    % (self.dir, host, cl.addr(host), RD_METRICS, host, HEARTBEAT_MS, self.pool_timeout_ms,
                       self.lease_ms, plist))
        return path

    def start_pool(self, i):
        host = "pool%d" % i
        cfg = self.pool_cfg(i)
        exe = os.path.join(self.build, "pool/rollout-pool")
        r = subprocess.run([exe, "--check-config", cfg], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("pool config refused: " + r.stderr)
        self.pool_proc[i] = self.cl.spawn(host, [exe, "--config", cfg, "--log-level", "info"],
                                          os.path.join(self.dir, "%s.%d.log" % (host, len(self.cl.procs))),
                                          keep_sys=True)

    def start_rd(self, g, pools):
        host = "gpu%d" % g
        cfg = self.rd_cfg(g, pools)
        exe = os.path.join(self.build, "coordinator/rolloutd")
        r = subprocess.run([exe, "--check-config", cfg], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("rolloutd config refused: " + r.stderr)
        self.rd_proc[g] = self.cl.spawn(host, [exe, "--config", cfg, "--log-level", "info"],
                                        os.path.join(self.dir, host + ".log"))

    def pool_metrics(self, i):
        h = "pool%d" % i
        return self.cl.scrape(h, "http://%s:%d/metrics" % (self.cl.addr(h), POOL_METRICS))

    def rd_metrics(self, g):
        h = "gpu%d" % g
        return self.cl.scrape(h, "http://%s:%d/metrics" % (self.cl.addr(h), RD_METRICS))

    @staticmethod
    def pool_up(m, idx):
        return m.get('rolloutd_pool_up{shard="0",pool="%d"}' % idx)

    def wait_pools_up(self, g, idxs, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            m = self.rd_metrics(g)
            if all(self.pool_up(m, i) == 1 for i in idxs):
                return True
            time.sleep(0.1)
        return False

    def up(self, pools=range(POOLS), rd_pools=None, wire=None):
        self.cl = netns.Cluster(self.dir)
        for g in range(2):
            self.cl.add_host("gpu%d" % g)
        for i in pools:
            self.cl.add_host("pool%d" % i, wire=(i == wire))
        for i in pools:
            self.start_pool(i)
        rd_pools = list(pools) if rd_pools is None else rd_pools
        for g in range(2):
            if self.fault == "dns":
                self.cl.hosts_file("gpu%d" % g, self.dns_lines(rd_pools))
            self.start_rd(g, rd_pools)
        for g in range(2):
            if not self.wait_pools_up(g, range(len(rd_pools)), 20):
                raise RuntimeError("gpu%d: pool links not up after 20 s" % g)
        self.log("cluster up: %s" % ", ".join("%s=%s" % (h, self.cl.addr(h)) for h in self.cl.hosts))

    def start_drivers(self, seconds=300, profile="default", traj=TRAJ, cmd=None):
        exe = os.path.join(self.build, "tests/cluster/cluster_driver")
        for g in range(2):
            h = "gpu%d" % g
            self.drivers[g] = self.cl.spawn(
                h, [exe, "--socket", "%s/%s.sock" % (self.dir, h), "--log", "%s/%s.events" % (self.dir, h),
                    "--name", h, "--seconds", str(seconds), "--traj", str(traj), "--steps", str(STEPS),
                    "--profile", profile,
                    "--drain-s", "8"] + (["--cmd", cmd] if cmd else []), os.path.join(self.dir, h + ".driver"))

    def stop_drivers(self):
        for p in self.drivers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGUSR1)
        summaries, events = {}, {}
        for g, p in self.drivers.items():
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            h = "gpu%d" % g
            with open(os.path.join(self.dir, h + ".driver")) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("{")]
            summaries[g] = json.loads(lines[-1]) if lines else None
            events[g] = self.read_events(os.path.join(self.dir, h + ".events"))
        return summaries, events

    @staticmethod
    def read_events(path):
        """Completions as dicts; each open gets the pool its sandbox's steps named."""
        ev, pool_of = [], {}
        with open(path) as f:
            for line in f:
                p = line.split()
                if p[0] == "C":
                    e = {"id": int(p[1]), "kind": p[2], "status": p[3], "infra": p[4] == "1",
                         "t_sub": float(p[5]) / 1e3, "t_done": float(p[6]) / 1e3, "sandbox": p[7], "pool": int(p[8])}
                    if e["pool"] >= 0:
                        pool_of.setdefault(e["sandbox"], e["pool"])
                    ev.append(e)
                else:
                    ev.append({"mark": p[0], "id": int(p[1]), "kind": p[2] if len(p) > 2 else ""})
        for e in ev:
            if e.get("kind") == "open" and "status" in e and e["status"] == "OK":
                e["pool"] = pool_of.get(e["sandbox"], -1)
        return ev

    # ---- checks shared by every fault ----

    def report(self, summaries, events):
        tot = {"completed": 0, "lost": 0, "duplicated": 0, "unknown": 0, "submitted": 0}
        for g, s in summaries.items():
            if not self.check(s is not None, "gpu%d: the driver printed its summary" % g):
                continue
            self.log("gpu%d driver: %s" % (g, json.dumps(s)))
            for k in tot:
                tot[k] += s[k]
        self.result("RESULT fault=%s requests=%d completed=%d lost=%d duplicated=%d"
                    % (self.fault, tot["submitted"], tot["completed"], tot["lost"], tot["duplicated"] + tot["unknown"]))
        self.check(tot["submitted"] > 0 and tot["lost"] == 0, "every request completed (lost=%d)" % tot["lost"])
        self.check(tot["duplicated"] == 0 and tot["unknown"] == 0,
                   "no request completed twice (duplicated=%d, unknown ids=%d)" % (tot["duplicated"], tot["unknown"]))
        allc = [e for ev in events.values() for e in ev if "status" in e]
        lost = [e for e in allc if e["status"] == "SANDBOX_LOST"]
        self.check(all(e["infra"] for e in lost),
                   "every SANDBOX_LOST completion has infra_failed (%d of %d)"
                   % (sum(e["infra"] for e in lost), len(lost)))
        odd = sorted({e["status"] for e in allc} - {"OK", "SANDBOX_LOST", "NOT_FOUND"})
        self.check(not odd, "no completion with another status (%s)" % (", ".join(odd) or "none"))
        return allc

    def settle(self, pools):
        """After the drivers closed their sandboxes: no pool holds a leased sandbox."""
        end = time.monotonic() + self.lease_ms / 1e3 + 3
        leased = {}
        while time.monotonic() < end:
            leased = {i: self.pool_metrics(i).get("rollout_pool_leased_sandboxes") for i in pools}
            if all(v == 0 for v in leased.values()):
                break
            time.sleep(0.2)
        self.check(all(v == 0 for v in leased.values()),
                   "resources settle: no pool holds a leased sandbox after the run (%s)" % leased)

    def down(self):
        if not self.cl:
            return
        tag = self.cl.tag
        left = self.cl.down()
        # Pools stopped with SIGTERM destroy their sandboxes; one killed leaves empty cgroups
        # that the test removes. A cgroup that still holds a process is a leak.
        busy = []
        for d in glob.glob("/sys/fs/cgroup/*/%s-pool*" % tag) + glob.glob("/sys/fs/cgroup/%s-pool*" % tag):
            for sub in glob.glob(d + "/sbx-*"):
                try:
                    with open(sub + "/cgroup.procs") as f:
                        if f.read().strip():
                            busy.append(sub)
                except OSError:
                    pass
            netns.rm_cgroup(d)
        self.check(not left, "cleanup: no namespace or /etc/netns entry left (%s)" % (left or "none"))
        self.check(not busy, "cleanup: no sandbox process left (%s)" % (busy or "none"))
        strays = subprocess.run(["pgrep", "-f", self.dir], capture_output=True, text=True).stdout.split()
        self.check(not strays, "cleanup: no process of this run left (%s)" % (strays or "none"))

    # ---- the faults ----

    def cut_window_checks(self, allc, victim, t_cut, t_heal):
        pt = self.pool_timeout_ms / 1e3
        slack = 0.5
        # Steps in flight on the victim when it was cut complete SANDBOX_LOST (once: see above).
        lost_steps = [e for e in allc if e["kind"] == "exec" and e["status"] == "SANDBOX_LOST"]
        self.check(all(e["pool"] in (victim, -1) for e in lost_steps),
                   "SANDBOX_LOST only for steps on the cut pool (%d steps)" % len(lost_steps))
        late = [e for e in lost_steps if e["t_done"] > t_cut + pt + slack]
        self.check(not late, "lost steps completed within pool_timeout_ms + %.1f s of the cut (%d late)"
                   % (slack, len(late)))
        # New opens: each either went to the cut pool before rolloutd gave it up and completes
        # SANDBOX_LOST by then, or completes OK on a healthy pool (a creation there may take
        # its time: the warm sandboxes of three pools now serve everyone).
        opens = [e for e in allc if e["kind"] == "open" and t_cut <= e["t_sub"] < t_heal]
        bad = [e for e in opens if not ((e["status"] == "SANDBOX_LOST" and e["t_done"] <= t_cut + pt + slack)
                                        or (e["status"] == "OK" and e["pool"] != victim))]
        worst = max((e["t_done"] - e["t_sub"] for e in opens if e["status"] == "OK"), default=0)
        self.check(opens and not bad,
                   "opens after the cut: lost by pool_timeout_ms (+%.1f s) or served by a healthy pool: %d opens, "
                   "%d not (slowest OK open %.0f ms)" % (slack, len(opens), len(bad), worst * 1e3))
        after = [e for e in opens if e["t_sub"] > t_cut + pt + slack]
        bad = [e for e in after if e["status"] != "OK" or e["pool"] == victim]
        self.check(after and not bad, "opens after detection all reach healthy pools (%d opens, %d not)"
                   % (len(after), len(bad)))
        return lost_steps

    def run_cut(self, short):
        victim = 1
        self.up(wire=victim)
        # Steps that last 50 ms (the first line still names the pool): some are in
        # flight on the victim whenever the fault hits, however fast a plain step is.
        self.start_drivers(cmd=SLOW_STEP)
        time.sleep(3)
        before = self.pool_metrics(victim)
        t_cut = time.monotonic()
        if short:
            # TCP's retransmission backoff makes a cut cost more than its length: a fifth of
            # pool_timeout_ms heals well within it.
            cut_s = 0.2 * self.pool_timeout_ms / 1e3
            self.cl.link("pool%d" % victim, False)
            self.log("pool%d: link down for %.0f ms (pool_timeout_ms %d)" % (victim, cut_s * 1e3, self.pool_timeout_ms))
            time.sleep(cut_s)
            self.cl.link("pool%d" % victim, True)
            t_heal = time.monotonic()
            time.sleep(3)
            summaries, events = self.stop_drivers()
            allc = self.report(summaries, events)
            lost = [e for e in allc if e["status"] != "OK"]
            self.check(not lost, "a cut shorter than pool_timeout_ms loses nothing (%d not OK)" % len(lost))
            for g in range(2):
                self.check(self.pool_up(self.rd_metrics(g), victim) == 1, "gpu%d: pool%d link is up" % (g, victim))
            used = [e for e in allc if e["kind"] == "exec" and e["pool"] == victim and e["t_sub"] > t_heal]
            self.check(used, "pool%d serves steps after the cut (%d)" % (victim, len(used)))
            self.settle(range(POOLS))
            return
        cut_s = (self.lease_ms + 1000) / 1e3
        self.cl.fault("pool%d" % victim, "both", loss=1.0)
        self.log("pool%d: 100%% loss both ways for %.1f s (pool_timeout_ms %d, lease_ms %d)"
                 % (victim, cut_s, self.pool_timeout_ms, self.lease_ms))
        time.sleep(cut_s - 0.3)
        during = self.pool_metrics(victim)
        self.check(during.get("rollout_pool_leased_sandboxes") == 0,
                   "the cut-off pool reaped its sandboxes by lease (leased %s, before the cut %s)"
                   % (during.get("rollout_pool_leased_sandboxes"), before.get("rollout_pool_leased_sandboxes")))
        self.check(during.get("rollout_pool_leases_expired_total", 0) > before.get("rollout_pool_leases_expired_total", 0),
                   "rollout_pool_leases_expired_total rose (%s -> %s)"
                   % (before.get("rollout_pool_leases_expired_total"), during.get("rollout_pool_leases_expired_total")))
        for g in range(2):
            self.check(self.pool_up(self.rd_metrics(g), victim) == 0, "gpu%d: pool%d is down during the cut" % (g, victim))
        time.sleep(0.3)
        # Heal, but keep new connections out: what reaches the pool now can only be what
        # rolloutd sent into the cut on the connection it has since given up (its kernel
        # still retransmits it). From the pool only acknowledgements pass: they open
        # rolloutd's congestion window so all of it gets through, while the pool's own data
        # (which rolloutd's closed socket would answer with a reset) stays dropped.
        self.cl.fault("pool%d" % victim, "in", syn=True)
        self.cl.wire_stats("pool%d" % victim)
        self.cl.fault("pool%d" % victim, "out", nodata=True)
        t_heal = time.monotonic()
        req0 = sum(v for k, v in during.items() if k.startswith("rollout_pool_requests_total"))
        time.sleep(2)
        ss = self.cl.sh("pool%d" % victim, "ss", "-tn", "state", "established", "( sport = :%d )" % ZMQ_PORT,
                        check=False)
        self.log("pool%d's connections from coordinators during the window: %d" % (victim, len(ss.splitlines()) - 1))
        time.sleep(2)
        after = self.pool_metrics(victim)
        (to_seg, to_bytes), (from_seg, from_bytes) = self.cl.wire_stats("pool%d" % victim)
        self.log("pool%d after the heal, new connections blocked: %d data segments (%d bytes) reached it on old "
                 "connections, %d (%d bytes) left it" % (victim, to_seg, to_bytes, from_seg, from_bytes))
        req1 = sum(v for k, v in after.items() if k.startswith("rollout_pool_requests_total"))
        self.log("pool%d after the heal: requests %d -> %d, refused %s -> %s, duplicates %s -> %s" % (
            victim, req0, req1, during.get("rollout_pool_refused_total"), after.get("rollout_pool_refused_total"),
            during.get("rollout_pool_duplicate_dispatches_total"), after.get("rollout_pool_duplicate_dispatches_total")))
        self.check(req1 == req0, "no request delivered late by the expired session was executed by pool%d "
                   "(%d accepted after the heal; want 0)" % (victim, req1 - req0))
        self.check(after.get("rollout_pool_leased_sandboxes") == 0,
                   "pool%d holds no sandbox for a stale dispatch (leased %s)"
                   % (victim, after.get("rollout_pool_leased_sandboxes")))
        self.cl.fault("pool%d" % victim, "out")
        self.cl.fault("pool%d" % victim, "in")
        t_open = time.monotonic()
        back = all(self.wait_pools_up(g, [victim], 30) for g in range(2))
        self.check(back, "pool%d rejoins both rolloutds after the heal (%.1f s after new connections were let in)"
                   % (victim, time.monotonic() - t_open))
        time.sleep(2)
        summaries, events = self.stop_drivers()
        allc = self.report(summaries, events)
        lost_steps = self.cut_window_checks(allc, victim, t_cut, t_heal)
        self.check(lost_steps, "steps in flight on the cut pool completed SANDBOX_LOST (%d)" % len(lost_steps))
        used = [e for e in allc if e["kind"] == "exec" and e["pool"] == victim and e["t_sub"] > t_open]
        self.check(not back or used, "pool%d serves steps again after it rejoined (%d)" % (victim, len(used)))
        self.settle(range(POOLS))

    def run_asymmetric(self):
        victim = 2
        self.up(wire=victim)
        # Steps that last 50 ms (the first line still names the pool): some are in
        # flight on the victim whenever the fault hits, however fast a plain step is.
        self.start_drivers(cmd=SLOW_STEP)
        time.sleep(3)
        before = self.pool_metrics(victim)
        t_cut = time.monotonic()
        cut_s = (self.lease_ms + 1000) / 1e3
        self.cl.fault("pool%d" % victim, "out", loss=1.0)
        self.log("pool%d: its packets dropped (it hears rolloutd, rolloutd does not hear it) for %.1f s"
                 % (victim, cut_s))
        time.sleep(cut_s)
        during = self.pool_metrics(victim)
        for g in range(2):
            self.check(self.pool_up(self.rd_metrics(g), victim) == 0, "gpu%d: pool%d is down during the cut" % (g, victim))
        self.check(during.get("rollout_pool_leased_sandboxes") == 0,
                   "the pool rolloutd cannot hear reaped the sandboxes of the sessions rolloutd gave up "
                   "(leased %s, before %s)" % (during.get("rollout_pool_leased_sandboxes"),
                                              before.get("rollout_pool_leased_sandboxes")))
        self.cl.heal("pool%d" % victim)
        t_heal = time.monotonic()
        back = all(self.wait_pools_up(g, [victim], 30) for g in range(2))
        self.check(back, "pool%d rejoins after the heal (%.1f s)" % (victim, time.monotonic() - t_heal))
        time.sleep(2)
        summaries, events = self.stop_drivers()
        allc = self.report(summaries, events)
        lost_steps = self.cut_window_checks(allc, victim, t_cut, t_heal)
        self.check(lost_steps, "steps in flight on the unheard pool completed SANDBOX_LOST (%d)" % len(lost_steps))
        self.settle(range(POOLS))

    def run_delay(self):
        victim = 3
        # 200 ms each way and 1 % loss: heartbeats can take a second; keep the link up.
        self.pool_timeout_ms, self.lease_ms = 4000, 8000
        self.up(wire=victim)
        # noop sandboxes: a step costs no process, so what is measured is the link, not this
        # busy 2-core machine. The pool of a step is read from its sandbox id, whose high 32
        # bits each pool process draws from its boot id.
        self.start_drivers(profile="noop", traj=32)
        time.sleep(2)
        ta = time.monotonic()
        time.sleep(6)
        tb = time.monotonic()
        self.cl.fault("pool%d" % victim, "both", loss=0.01, delay=0.2)
        self.log("pool%d: delay 200 ms and 1 %% loss both ways" % victim)
        time.sleep(10)
        tc = time.monotonic()
        summaries, events = self.stop_drivers()
        allc = self.report(summaries, events)
        self.check(all(e["status"] == "OK" for e in allc),
                   "nothing lost on the slow link (%d not OK)" % sum(e["status"] != "OK" for e in allc))
        steps = [e for e in allc if e["kind"] == "exec" and e["status"] == "OK"]
        for e in steps:
            e["pool"] = int(e["sandbox"], 16) >> 32

        def median(v):
            v = sorted(v)
            return v[len(v) // 2] if v else 0

        # The first second after the change is left out: trajectories move at the new pace.
        t1, t2 = tb + 1, tc
        prefixes = sorted({e["pool"] for e in steps})
        self.check(len(prefixes) == POOLS, "steps ran on all %d pools (%d sandbox id prefixes)" % (POOLS, len(prefixes)))
        slow = max(prefixes, key=lambda p: median([e["t_done"] - e["t_sub"] for e in steps
                                                  if e["pool"] == p and t1 <= e["t_sub"] < t2]))

        def rate(t1, t2, pool=None):
            w = [e for e in steps if t1 <= e["t_done"] < t2 and (pool is None or e["pool"] == pool)]
            busy = sum(min(e["t_done"], t2) - max(e["t_sub"], t1) for e in w)
            return len(w) / (t2 - t1), busy / (t2 - t1), median([e["t_done"] - e["t_sub"] for e in w])

        a_all, _, _ = rate(ta, tb)
        a_v, a_conc, a_lat = rate(ta, tb, slow)
        b_all, _, _ = rate(t1, t2)
        b_v, b_conc, b_lat = rate(t1, t2, slow)
        self.result("RESULT fault=delay steps_per_s_without=%.0f steps_per_s_with=%.0f slow_pool_steps_per_s_without=%.1f "
              "slow_pool_steps_per_s_with=%.1f slow_pool_in_flight_without=%.1f slow_pool_in_flight_with=%.1f "
              "slow_pool_p50_ms_without=%.1f slow_pool_p50_ms_with=%.1f"
                    % (a_all, b_all, a_v, b_v, a_conc, b_conc, a_lat * 1e3, b_lat * 1e3))
        self.check(b_lat >= 0.4, "steps on the slow pool take the 400 ms round trip (p50 %.0f ms)" % (b_lat * 1e3))
        # Pipelined: the slow link carries many steps per round trip, not one: the steps in
        # flight on it (Little's law: rate x latency) match the trajectories waiting there.
        self.check(b_conc >= 8, "the slow link stays pipelined: %.1f steps in flight on average, %.1f steps/s "
                   "at a %.0f ms round trip (want >= 8 in flight)" % (b_conc, b_v, b_lat * 1e3))
        self.check(b_all - b_v > 0, "the other pools keep serving (%.0f steps/s)" % (b_all - b_v))
        self.settle(range(POOLS))

    def run_restart(self):
        victim = 0
        # The new process must answer before pool_timeout_ms, or rolloutd gives the pool up
        # for its silence and the restart is never seen as one: leave it ample time, even on
        # a loaded machine.
        self.pool_timeout_ms, self.lease_ms = 6000, 8000
        self.up()
        # Steps that last 50 ms (the first line still names the pool): some are in
        # flight on the victim whenever the fault hits, however fast a plain step is.
        self.start_drivers(cmd=SLOW_STEP)
        time.sleep(3)
        t_cut = time.monotonic()
        self.cl.stop(self.pool_proc[victim], signal.SIGKILL)
        self.start_pool(victim)
        self.log("pool%d: killed with SIGKILL and started again at once (new boot id, same address)" % victim)
        t_heal = time.monotonic()
        time.sleep(self.pool_timeout_ms / 1e3 + 2)
        back = all(self.wait_pools_up(g, [victim], 10) for g in range(2))
        self.check(back, "the restarted pool%d is up in both rolloutds" % victim)
        time.sleep(2)
        summaries, events = self.stop_drivers()
        allc = self.report(summaries, events)
        lost_steps = [e for e in allc if e["kind"] == "exec" and e["status"] == "SANDBOX_LOST"]
        self.check(lost_steps and all(e["pool"] in (victim, -1) for e in lost_steps),
                   "steps in flight on the killed pool completed SANDBOX_LOST (%d), only those" % len(lost_steps))
        # Under pool_timeout_ms: the new boot id, not the silence, ended them (a loaded CI box
        # may take seconds to start the new process, so no tighter bound).
        late = [e for e in lost_steps if e["t_done"] > t_heal + self.pool_timeout_ms / 1e3]
        self.check(not late, "they completed when the new process answered, before pool_timeout_ms "
                   "(%d later; slowest %.1f s after the restart)"
                   % (len(late), max((e["t_done"] - t_heal for e in lost_steps), default=0)))
        nf = [e for e in allc if e["status"] == "NOT_FOUND"]
        self.log("NOT_FOUND completions (steps named a sandbox of the old process): %d" % len(nf))
        used = [e for e in allc if e["kind"] == "exec" and e["pool"] == victim and e["status"] == "OK"
                and e["t_sub"] > t_heal + 1]
        self.check(used, "the new pool%d process serves steps (%d)" % (victim, len(used)))
        for g, ev in events.items():
            lost = [e for e in ev if e.get("mark") == "L"]
            if lost:
                self.result("RESULT fault=restart gpu%d request ids never completed: %s" % (g, " ".join(
                    "%d(%s)" % (e["id"], e["kind"]) for e in lost)))
        m = self.pool_metrics(victim)
        self.log("new pool%d: requests %s" % (victim, {k: v for k, v in m.items() if "requests_total" in k}))
        self.settle(range(POOLS))

    def dns_lines(self, pools):
        return ["%s %s" % (self.cl.addr("pool%d" % i), DNS_NAME) for i in pools]

    def run_dns(self):
        # pool0..pool3 run; the name first resolves to pool0..pool2, then to pool1..pool3.
        self.up(pools=range(4), rd_pools=[0, 1, 2])
        for g in range(2):
            got = self.cl.sh("gpu%d" % g, "getent", "ahostsv4", DNS_NAME, check=False)
            self.log("gpu%d resolves %s to %s" % (g, DNS_NAME, sorted({l.split()[0] for l in got.splitlines()})))
        self.start_drivers()
        time.sleep(3)
        p3 = self.pool_metrics(3)
        req3_0 = sum(v for k, v in p3.items() if k.startswith("rollout_pool_requests_total"))
        for g in range(2):
            self.cl.hosts_file("gpu%d" % g, self.dns_lines([1, 2, 3]))
        t_change = time.monotonic()
        self.log("%s now resolves to pool1, pool2, pool3 (pool3 added, pool0 removed)" % DNS_NAME)
        for g in range(2):
            got = self.cl.sh("gpu%d" % g, "getent", "ahostsv4", DNS_NAME, check=False)
            self.log("gpu%d resolves %s to %s" % (g, DNS_NAME, sorted({l.split()[0] for l in got.splitlines()})))
        limit = 10.0
        used3 = None
        while time.monotonic() - t_change < limit:
            p3 = self.pool_metrics(3)
            if sum(v for k, v in p3.items() if k.startswith("rollout_pool_requests_total")) > req3_0:
                used3 = time.monotonic() - t_change
                break
            time.sleep(0.2)
        time.sleep(2)
        summaries, events = self.stop_drivers()
        allc = self.report(summaries, events)
        self.check(all(e["status"] == "OK" for e in allc),
                   "nothing lost while the name changed (%d not OK)" % sum(e["status"] != "OK" for e in allc))
        self.check(used3 is not None, "the pool added to the name gets requests within %.0f s of the change (%s)"
                   % (limit, "after %.1f s" % used3 if used3 is not None else "never"))
        grace = limit / 2
        opens0 = [e for e in allc if e["kind"] == "open" and e["pool"] == 0 and e["t_sub"] > t_change + grace]
        self.check(not opens0, "no new open goes to the pool removed from the name %.0f s after the change (%d did)"
                   % (grace, len(opens0)))
        self.settle(range(4))

    def run_cut_short(self):
        self.run_cut(True)

    def run_cut_long(self):
        self.run_cut(False)

    def run(self):
        try:
            getattr(self, "run_" + self.fault)()
        finally:
            self.down()
            if not self.failures:
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                print("logs kept in %s" % self.dir)
        self.write_results()
        print("%d failed: %s" % (len(self.failures), "; ".join(self.failures)) if self.failures else "all passed")
        return 1 if self.failures else 0


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    build, fault = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("cluster test needs root (network namespaces, the pool's sandboxes); skipping")
        return 77
    for tool in ("ip",):
        if not shutil.which(tool):
            print("cluster test needs %s (iproute2); skipping" % tool)
            return 77
    probe = "rcprobe%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode:
        print("cannot create network namespaces here; skipping")
        return 77
    ok = all(subprocess.run(["ip", "-n", probe, "link", "add"] + a, capture_output=True).returncode == 0
             for a in (["v0", "type", "veth", "peer", "name", "v1"], ["br0", "type", "bridge"]))
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if not ok or not os.path.exists("/dev/net/tun"):
        print("veth pairs, bridges or /dev/net/tun unavailable; skipping")
        return 77
    return Test(build, fault).run()


if __name__ == "__main__":
    sys.exit(main())
