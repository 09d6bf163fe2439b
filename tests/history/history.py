#!/usr/bin/python3
"""History checker (issue 10): exactly one completion for every request, proven under faults.

Starts rollout-pool and rolloutd with a private config (random ports, own socket and cgroup
name, short heartbeat/pool timeout), runs trainer processes -- C (history_trainer), blocking
Python and asyncio Python (trainer.py) -- and fires faults on a schedule. Every trainer logs
each submit (S), completion (C), connection error (E) and each step id read back from its
sandbox (X) to an append-only file; afterwards the logs are checked:

  - every request completed exactly once, or its trainer saw a connection error (or was the
    trainer killed on purpose);
  - no completion for a request that was never sent;
  - no step executed twice (steps append their id to /tmp/steps in the sandbox, read back at
    the end of the episode); a step that completed OK was executed;
  - SANDBOX_LOST with infra_failed only for requests in flight at a pool fault (and other
    infra failures only around a fault);
  - malformed records: exactly one BAD_REQUEST each, or the trainer was disconnected;
  - afterwards: no lease, no session, no sandbox cgroup or process left.

    history.py [--build BUILD] [--trainer history_trainer] [--faults a,b|all|none] [--long]
               [--requests N] [--warm N] [--spacing S] [--self-test] [--keep] [--check DIR]

Faults: pool_kill_fast pool_kill_slow burst pool_stop rolloutd_kill trainer_kill malformed
bigout. The last line is the summary:
    N requests, N completed once, N lost, N duplicated, N executed twice
Exit 0 when no invariant is violated (with --self-test: when the injected violations were all
found), 1 otherwise."""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_FAULTS = ["pool_kill_fast", "pool_kill_slow", "burst", "pool_stop", "rolloutd_kill", "trainer_kill",
              "malformed", "bigout"]
POOL_FAULTS = {"pool_kill_fast", "pool_kill_slow", "pool_stop"}
HEARTBEAT_MS, POOL_TIMEOUT_MS, LEASE_MS = 200, 1000, 3000
WARM = 32  # --warm
MAX_RECORD = 256 << 10
BIG_BYTES = 2 << 20
ID_SHIFT = 40


def now_ms():
    return int(time.monotonic() * 1000)


def say(msg):
    print(msg, flush=True)


def free_port_block(n):
    for _ in range(200):
        base = random.randint(20000, 60000 - n)
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise SystemExit("history: no free ports")


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------- the cluster under test

class Cluster:
    def __init__(self, a, d):
        self.a, self.d = a, d
        self.port = free_port_block(3)
        self.sock = os.path.join(d, "rolloutd.sock")
        self.cfg = os.path.join(d, "cfg.yaml")
        self.group = f"rollout-history-{os.getpid()}"
        self.pool = self.rd = None
        self.npool = self.nrd = 0
        with open(self.cfg, "w") as f:
            f.write(f"""rolloutd:
  socket: {self.sock}
  metrics: 127.0.0.1:{self.port + 1}
  heartbeat_ms: {HEARTBEAT_MS}
  pool_timeout_ms: {POOL_TIMEOUT_MS}
  lease_ms: {LEASE_MS}
  ring_bytes: 1048576
  max_record: {MAX_RECORD}
  pools: [{{endpoint: "tcp://127.0.0.1:{self.port}"}}]
pool:
  listen: tcp://127.0.0.1:{self.port}
  metrics: 127.0.0.1:{self.port + 2}
  cgroup: {self.group}
  profiles:
    - {{name: default, warm: {WARM}, max: {max(256, 12 * WARM + 64)}, memory_mb: 256, pids: 64, max_output_cap: 4194304}}
    - {{name: noop, type: noop, max: 100000}}
""")

    def _spawn(self, exe, tag):
        log = open(os.path.join(self.d, f"{tag}.log"), "a")
        return subprocess.Popen([os.path.join(self.a.build, exe), "--config", self.cfg, "--log-level", "warn"],
                                stdout=log, stderr=subprocess.STDOUT)

    def start_pool(self):
        self.npool += 1
        self.pool = self._spawn("pool/rollout-pool", "pool")

    def start_rd(self):
        self.nrd += 1
        self.rd = self._spawn("coordinator/rolloutd", "rolloutd")

    def pool_up(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = metrics(self.port + 1)
            if m and any(k.startswith("rolloutd_pool_up") and v == 1 for k, v in m.items()):
                return True
            time.sleep(0.05)
        return False

    def kill(self, p, sig=signal.SIGKILL):
        if p and p.poll() is None:
            p.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def sbx_cgroups(self):
        n = []
        for ctl in ("pids", "memory", "cpu", "unified"):
            d = f"/sys/fs/cgroup/{ctl}/{self.group}"
            if ctl == "unified":
                d = f"/sys/fs/cgroup/{self.group}"
            if os.path.isdir(d):
                n += [f"{d}/{e}" for e in os.listdir(d) if e.startswith("sbx-")]
        return n

    def sbx_processes(self):
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cgroup") as f:
                    if f"/{self.group}/sbx-" in f.read():
                        pids.append(int(p))
            except OSError:
                pass
        return pids


# ---------------------------------------------------------------- trainers

class Trainer:
    def __init__(self, name, argv, log, env=None):
        self.name, self.log = name, log
        self.out = open(log + ".out", "w")
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        self.killed = False  # killed on purpose (the trainer_kill fault)
        self.hung = False    # did not stop when asked


def start_trainers(a, cl, d, rate):
    env = dict(os.environ, PYTHONPATH=os.path.join(a.source, "client/python"),
               ROLLOUT_LIBRARY=os.path.join(a.build, "client/librollout.so"))
    ts = {}

    def c(name, k, *extra):
        log = os.path.join(d, f"{name}.hist")
        ts[name] = Trainer(name, [a.trainer, "--socket", cl.sock, "--log", log, "--name", name,
                                  "--id-base", str(k << ID_SHIFT), *extra], log)

    def py(name, k, *extra):
        log = os.path.join(d, f"{name}.hist")
        ts[name] = Trainer(name, ["/usr/bin/python3", os.path.join(HERE, "trainer.py"), "--socket", cl.sock,
                                  "--log", log, "--id-base", str(k << ID_SHIFT), *extra], log, env)

    c("c-main", 1, "--noop", "32", "--real", "4", "--rate", str(rate))
    c("c-victim", 2, "--noop", "8", "--real", "2", "--rate", str(rate / 10))
    c("c-big", 3, "--noop", "4", "--real", "1", "--rate", "200", "--big-bytes", str(BIG_BYTES))
    py("py-blocking", 4)
    py("py-async", 5, "--async")
    return ts, env


def count_submits(ts):
    n = 0
    for t in ts.values():
        try:
            with open(t.log, "rb") as f:
                n += sum(1 for line in f if line.startswith(b"S "))
        except OSError:
            pass
    return n


# ---------------------------------------------------------------- faults

class Faults:
    """Runs the schedule; each fault leaves a window [t0, t1] (monotonic ms) and notes."""

    def __init__(self, a, cl, d, ts):
        self.a, self.cl, self.d, self.ts = a, cl, d, ts
        self.windows = []  # dicts: name, t0, t1, notes, pool (bool)
        self.extra = {}    # name -> Trainer started by a fault (burst, raw)

    def _w(self, name, t0, t1, notes):
        self.windows.append({"name": name, "t0": t0, "t1": t1, "notes": notes, "pool": name in POOL_FAULTS})
        say(f"fault {name}: {notes}")

    def pool_kill(self, name, down_ms):
        t0 = now_ms()
        self.cl.kill(self.cl.pool, signal.SIGKILL)
        time.sleep(down_ms / 1000)
        self.cl.start_pool()
        up = self.cl.pool_up(30)
        t1 = now_ms()
        self._w(name, t0, t1 + POOL_TIMEOUT_MS + 500,
                f"pool kill -9, restarted after {down_ms} ms (pool_timeout_ms {POOL_TIMEOUT_MS}); "
                f"link {'up again' if up else 'NOT up'} after {t1 - t0} ms")

    def pool_kill_fast(self):
        self.pool_kill("pool_kill_fast", POOL_TIMEOUT_MS // 10)

    def pool_kill_slow(self):
        self.pool_kill("pool_kill_slow", POOL_TIMEOUT_MS * 5 // 2)

    def pool_stop(self):
        t0 = now_ms()
        self.cl.pool.send_signal(signal.SIGSTOP)
        time.sleep(POOL_TIMEOUT_MS * 5 / 2 / 1000)
        self.cl.pool.send_signal(signal.SIGCONT)
        tc = now_ms()
        up = self.cl.pool_up(30)
        t1 = now_ms()
        self._w("pool_stop", t0, t1 + POOL_TIMEOUT_MS + 500,
                f"pool SIGSTOP for {tc - t0} ms then SIGCONT; link {'up again' if up else 'NOT up'} "
                f"{t1 - tc} ms after SIGCONT")

    def rolloutd_kill(self):
        t0 = now_ms()
        self.cl.kill(self.cl.rd, signal.SIGKILL)
        time.sleep(0.5)
        self.cl.start_rd()
        up = self.cl.pool_up(30)
        t1 = now_ms()
        self._w("rolloutd_kill", t0, t1 + 1000,
                f"rolloutd kill -9, restarted after 500 ms; pool link {'up' if up else 'NOT up'} after {t1 - t0} ms")

    def trainer_kill(self):
        # Kill it while it waits for an open (a sandbox granted to a dead trainer must
        # still be reclaimed), or after 5 s whatever it is doing.
        t = self.ts["c-victim"]
        end, why = time.monotonic() + 5, "while it had no open in flight"
        while time.monotonic() < end:
            pend = set()
            with open(t.log) as f:
                for line in f:
                    if line.startswith("S ") and " open:default " in line:
                        pend.add(line.split()[1])
                    elif line.startswith("C "):
                        pend.discard(line.split()[1])
            if pend:
                why = f"with {len(pend)} open(s) of a real sandbox in flight"
                break
            time.sleep(0.05)
        t0 = now_ms()
        t.killed = True
        t.p.send_signal(signal.SIGKILL)
        t.p.wait()
        self._w("trainer_kill", t0, t0 + 2000, f"trainer c-victim (pid {t.p.pid}) kill -9 {why}")

    def _extra(self, name, k, *args):
        log = os.path.join(self.d, f"{name}.hist")
        t = Trainer(name, [self.a.trainer, "--socket", self.cl.sock, "--log", log, "--name", name,
                           "--id-base", str(k << ID_SHIFT), *args], log)
        self.extra[name] = t
        return t

    def burst(self):
        # Each burst is its own trainer (log and request ids), --long repeats it.
        t0 = now_ms()
        n = sum(1 for k in self.extra if k.startswith("c-burst"))
        t = self._extra(f"c-burst-{n + 1}", 8 + n, "--mode", "burst", "--count", str(10 * WARM))
        try:
            t.p.wait(timeout=45)
            note = f"{10 * WARM} opens at once (warm {WARM}), held until all answered, then closed; trainer exited {t.p.returncode}"
        except subprocess.TimeoutExpired:
            note = f"{10 * WARM} opens at once (warm {WARM}): burst trainer still waiting after 45 s"
        self._w("burst", t0, now_ms() + 1000, note)

    def malformed(self):
        t0 = now_ms()
        t = self._extra("c-raw", 7, "--mode", "raw", "--count", "3")
        try:
            t.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._w("malformed", t0, now_ms(), "raw trainer wrote 3 x 7 malformed records between 3 valid opens")

    def bigout(self):
        t0 = now_ms()
        self.ts["c-big"].p.send_signal(signal.SIGUSR1)
        time.sleep(5)
        self._w("bigout", t0, now_ms(), f"c-big: one exec with {BIG_BYTES} bytes of stdout (output_cap raised), "
                                         f"rolloutd max_record {MAX_RECORD}")


# ---------------------------------------------------------------- the checker

Req = collections.namedtuple("Req", "rid action sb t")


class Check:
    def __init__(self, windows):
        self.windows = windows
        self.v = collections.defaultdict(list)  # violation kind -> [(trainer, rid, detail)]
        self.total = self.once = self.excused_conn = self.excused_kill = self.abandoned = 0
        self.status = collections.Counter()
        self.executed = 0
        self.per = {}

    def add(self, kind, trainer, rid, detail=""):
        self.v[kind].append((trainer, rid, detail))

    def blame_lost(self, t):
        """A request never answered: the fault around its submit, else the first one that
        fired while it waited (within 10 s), else the last one before it."""
        hit = [w["name"] for w in self.windows if w["t0"] <= t <= w["t1"]]
        nxt = [w for w in self.windows if t < w["t0"] <= t + 10000]
        return hit or ([nxt[0]["name"]] if nxt else self.faults_at(t, t))

    def faults_at(self, t0, t1):
        """Faults whose window overlaps [t0, t1]; else the last one that fired before t0."""
        hit = [w["name"] for w in self.windows if t0 <= w["t1"] and t1 >= w["t0"]]
        before = [w for w in self.windows if w["t0"] <= t0]
        return hit or ([f"after {before[-1]['name']}"] if before else ["none"])

    def trainer(self, name, path, killed=False, hung=False):
        sent, comps, pending, excused = {}, collections.defaultdict(list), {}, set()
        abandoned = set()  # pending when the trainer itself gave up and disconnected (Q N>0)
        execs = collections.defaultdict(list)
        reads = []  # (read rid, sandbox)
        anon_bad = []
        quit_ = False
        with open(path) as f:
            for ln, line in enumerate(f, 1):
                p = line.split()
                if not p:
                    continue
                try:
                    if p[0] == "S":
                        r = Req(int(p[1]), p[2], int(p[3]), int(p[4]))
                        if r.rid in sent:
                            self.add("request id reused by the trainer", name, r.rid)
                        sent[r.rid] = r
                        pending[r.rid] = r
                    elif p[0] == "C":
                        rid, st, infra, t = int(p[1]), p[2], p[3] == "1", int(p[4])
                        if rid not in sent:
                            if st == "BAD_REQUEST":
                                anon_bad.append((rid, t))
                            else:
                                self.add("completion for a request never sent", name, rid, f"{st} infra={infra:d}")
                            continue
                        comps[rid].append((st, infra, t))
                        pending.pop(rid, None)
                        if rid in excused:
                            self.add("completion after the trainer's connection error", name, rid, st)
                    elif p[0] == "E":
                        excused.update(pending)
                        pending.clear()
                    elif p[0] == "X":
                        execs[int(p[1])].append(int(p[2]))
                    elif p[0] == "R":
                        reads.append((int(p[1]), int(p[2])))
                    elif p[0] == "Q":
                        quit_ = True
                        if len(p) > 2 and int(p[2]) > 0:
                            abandoned.update(pending)
                            pending.clear()
                except (IndexError, ValueError):
                    if ln < sum(1 for _ in open(path)):  # only a torn last line is expected
                        self.add("malformed log line", name, 0, line.strip()[:80])
        st = collections.Counter()
        # Malformed records: BAD_REQUEST with their id, or an anonymous one, or a connection error.
        for rid, r in sent.items():
            if r.action.startswith("bad:"):
                c = comps.get(rid)
                if c and c[0][0] != "BAD_REQUEST":
                    self.add("malformed record answered with a status other than BAD_REQUEST", name, rid,
                             f"{r.action}: {c[0][0]}")
                if not c and rid in pending and anon_bad:
                    anon_bad.pop()
                    pending.pop(rid)
                    comps[rid].append(("BAD_REQUEST", False, r.t))
        for rid, t in anon_bad:
            self.add("completion for a request never sent", name, rid, "BAD_REQUEST")
        for rid, r in sent.items():
            c = comps.get(rid, [])
            self.total += 1
            if len(c) == 1:
                self.once += 1
            if len(c) > 1:
                self.add("duplicated", name, rid, f"{r.action} sb={r.sb} completions={[x[0] for x in c]} "
                                                  f"faults={self.faults_at(r.t, c[-1][2])}")
            if c:
                s0, infra, tc = c[0]
                st[s0] += 1
                if s0 == "SANDBOX_LOST" and infra:
                    if not any(w["pool"] and r.t <= w["t1"] and tc >= w["t0"] for w in self.windows):
                        self.add("SANDBOX_LOST+infra_failed outside a pool fault", name, rid,
                                 f"{r.action} submitted {r.t} completed {tc} faults={self.faults_at(r.t, tc)}")
                elif infra and not any(r.t <= w["t1"] and tc >= w["t0"] for w in self.windows):
                    self.add("infra failure outside any fault", name, rid,
                             f"{r.action} {s0} faults={self.faults_at(r.t, tc)}")
            elif rid in excused:
                self.excused_conn += 1
            elif rid in abandoned:
                self.abandoned += 1
            elif killed and not quit_:
                self.excused_kill += 1
            else:
                self.add("lost", name, rid, f"{r.action} sb={r.sb} submitted {r.t} "
                                            f"faults={self.blame_lost(r.t)}{' (trainer hung)' if hung else ''}")
        # Steps: executed at most once, only when sent, in their own sandbox; OK means executed.
        for rid, sbs in execs.items():
            self.executed += 1
            r = sent.get(rid)
            if len(sbs) > 1:
                self.add("executed twice", name, rid, f"sandboxes {sbs}")
            if not r or r.action != "step":
                self.add("executed but never sent as a step", name, rid)
            elif r.sb != sbs[0]:
                self.add("executed in another sandbox", name, rid, f"sent to {r.sb}, found in {sbs[0]}")
            elif comps.get(rid) and comps[rid][0][0] == "SANDBOX_LOST":
                self.add("reported SANDBOX_LOST but executed", name, rid)
        read_sb = collections.defaultdict(int)
        for read_rid, sb in reads:
            read_sb[sb] = max(read_sb[sb], read_rid)
        for rid, r in sent.items():
            if r.action == "step" and r.sb in read_sb and rid < read_sb[r.sb]:
                c = comps.get(rid)
                if c and c[0][0] == "OK" and rid not in execs:
                    self.add("completed OK but not executed", name, rid, f"sb={r.sb}")
        self.status.update(st)
        self.per[name] = {"sent": len(sent), "status": st, "quit": quit_, "killed": killed, "hung": hung,
                          "sent_list": sent, "comps": comps}

    def report(self, faults_run):
        lost = len(self.v.get("lost", []))
        dup = len(self.v.get("duplicated", []))
        twice = len(self.v.get("executed twice", []))
        for name, p in self.per.items():
            say(f"trainer {name}: {p['sent']} requests, {dict(p['status'])}"
                f"{', killed' if p['killed'] else ''}{', HUNG' if p['hung'] else ''}"
                f"{'' if p['quit'] or p['killed'] else ', no clean end'}")
        say(f"completions by status: {dict(self.status)}")
        say(f"excused: {self.excused_conn} pending at a connection error, {self.excused_kill} of the killed trainer, "
            f"{self.abandoned} abandoned by a trainer that gave up waiting and detached")
        say(f"steps read back from sandboxes: {self.executed}")
        for kind, items in sorted(self.v.items()):
            by_fault = collections.Counter()
            for _, _, detail in items:
                m = re.search(r"faults=\[([^\]]*)\]", detail)
                by_fault[m.group(1) if m else "-"] += 1
            by_action = collections.Counter(d.split()[0].split(":")[0] if d else "-" for _, _, d in items)
            by_trainer = collections.Counter(tr for tr, _, _ in items)
            say(f"VIOLATION {kind}: {len(items)} (by fault: {dict(by_fault)}; by action: {dict(by_action)}; "
                f"by trainer: {dict(by_trainer)})")
            for tr, rid, detail in items[:12]:
                say(f"  {tr} rid {rid} ({rid & ((1 << ID_SHIFT) - 1)}): {detail}")
            if len(items) > 12:
                say(f"  ... {len(items) - 12} more")
        return lost, dup, twice

    def violations(self):
        return sum(len(x) for x in self.v.values())


def fault_details(ck, windows, trainers):
    """What each fault did to the requests in flight around it."""
    for w in windows:
        stat, errs = collections.Counter(), 0
        for name, p in ck.per.items():
            for rid, r in p["sent_list"].items():
                c = p["comps"].get(rid)
                if r.t <= w["t1"] and (not c or c[0][2] >= w["t0"]) and r.t >= w["t0"] - 5000:
                    stat[c[0][0] if c else "none"] += 1
        for t in trainers.values():
            try:
                with open(t.log) as f:
                    errs += sum(1 for line in f if line.startswith("E ") and
                                w["t0"] <= int(line.split()[-1]) <= w["t1"] + 5000)
            except (OSError, ValueError):
                pass
        say(f"  {w['name']}: [{w['t0']}, {w['t1']}] in flight: {dict(stat)}; connection errors: {errs}")
        if w["name"] == "malformed" and "c-raw" in ck.per:
            p = ck.per["c-raw"]
            by = collections.defaultdict(list)
            for rid, r in p["sent_list"].items():
                c = p["comps"].get(rid)
                by[r.action].append(c[0][0] if c else "none")
            for k, v in sorted(by.items()):
                say(f"    {k}: {dict(collections.Counter(v))}")
        if w["name"] == "bigout" and "c-big" in ck.per:
            p = ck.per["c-big"]
            big = [(rid, r) for rid, r in p["sent_list"].items() if r.action == "big"]
            for rid, r in big:
                c = p["comps"].get(rid)
                later = [k for k, x in p["sent_list"].items() if k > rid]
                after = sum(1 for k in later if p["comps"].get(k))
                nafter = len(later)
                say(f"    big exec rid {rid}: {[x[0] for x in c] if c else 'NO completion'}; "
                    f"{after} of {nafter} later requests of c-big completed")
        if w["name"] == "burst":
            bursts = [n for n in ck.per if n.startswith("c-burst")]
            p = ck.per[bursts[sum(1 for x in windows[:windows.index(w)] if x["name"] == "burst")]]
            opens = [p["comps"].get(rid) for rid, r in p["sent_list"].items() if r.action.startswith("open")]
            say(f"    burst opens: {dict(collections.Counter(c[0][0] if c else 'none' for c in opens))}")


def after_checks(cl, ck, clean):
    """No lease, session, sandbox cgroup or process left."""
    end = time.monotonic() + 10
    leased = sessions = None
    while time.monotonic() < end:
        pm, rm = metrics(cl.port + 2), metrics(cl.port + 1)
        leased = pm.get("rollout_pool_leased_sandboxes") if pm else None
        sessions = rm.get("rolloutd_sessions") if rm else None
        sessions = sum(v for k, v in rm.items() if k.startswith("rolloutd_sessions")) if rm else None
        if leased == 0 and sessions == 0:
            break
        time.sleep(0.2)
    say(f"afterwards: pool leased sandboxes {leased}, rolloutd sessions {sessions}")
    if pm and rm:
        say("  (last daemons) pool: duplicate dispatches {:.0f}, refused {:.0f}, leases expired {:.0f}; "
            "rolloutd: refused records {:.0f}".format(pm.get("rollout_pool_duplicate_dispatches_total", -1),
                                                     pm.get("rollout_pool_refused_total", -1),
                                                     pm.get("rollout_pool_leases_expired_total", -1),
                                                     rm.get("rolloutd_refused_records_total", -1)))
    if pm is None:
        ck.add("pool not serving at the end", "pool", 0, f"no /metrics (exit status {cl.pool.poll()})")
    elif leased != 0:
        ck.add("lease left after the trainers detached", "pool", 0, f"gauge rollout_pool_leased_sandboxes {leased}")
    if rm is None:
        ck.add("rolloutd not serving at the end", "rolloutd", 0, f"no /metrics (exit status {cl.rd.poll()})")
    elif sessions != 0:
        ck.add("session left after the trainers detached", "rolloutd", 0, f"gauge rolloutd_sessions {sessions}")
    t0 = time.monotonic()
    cl.kill(cl.rd, signal.SIGTERM)
    cl.kill(cl.pool, signal.SIGTERM)
    say(f"daemons stopped (SIGTERM) in {time.monotonic() - t0:.1f} s: rolloutd exit {cl.rd.returncode}, "
        f"pool exit {cl.pool.returncode}")
    end = time.monotonic() + 10
    while time.monotonic() < end and (cl.sbx_cgroups() or cl.sbx_processes()):
        time.sleep(0.2)
    cg, procs = cl.sbx_cgroups(), cl.sbx_processes()
    say(f"afterwards: {len(cg)} sandbox cgroups, {len(procs)} sandbox processes left")
    for c in cg:
        ck.add("sandbox cgroup left", "pool", 0, f"cgroup {c}")
    for p in procs:
        ck.add("sandbox process left", "pool", p, "process")
    # Reported above; now removed (they are empty) so a failed run leaves nothing behind.
    for c in cg:
        try:
            os.rmdir(c)
        except OSError:
            pass
    for ctl in ("pids", "memory", "cpu", "cpu,cpuacct"):
        try:
            os.rmdir(f"/sys/fs/cgroup/{ctl}/{cl.group}")
        except OSError:
            pass


def check_logs(d, windows, trainers, faults_run):
    ck = Check(windows)
    for name, t in sorted(trainers.items()):
        if os.path.exists(t.log):
            ck.trainer(name, t.log, killed=t.killed, hung=t.hung)
    return ck


def summary(ck, faults_run):
    lost, dup, twice = ck.report(faults_run)
    say(f"{ck.total} requests, {ck.once} completed once, {lost} lost, {dup} duplicated, {twice} executed twice")
    return lost, dup, twice


class FakeT:
    def __init__(self, name, log, killed=False, hung=False):
        self.name, self.log, self.killed, self.hung = name, log, killed, hung


def self_test(d, trainers, windows):
    """Injects one duplicate completion, one lost completion, one completion never sent and one
    step executed twice into copies of the logs; the checker must find exactly those."""
    say("self-test: injecting 1 duplicated, 1 lost, 1 never sent, 1 executed twice")
    sd = os.path.join(d, "self-test")
    os.makedirs(sd, exist_ok=True)
    fakes = {}
    for name, t in trainers.items():
        dst = os.path.join(sd, os.path.basename(t.log))
        shutil.copy(t.log, dst)
        fakes[name] = FakeT(name, dst, t.killed, t.hung)
    target = next((f for n, f in sorted(fakes.items()) if n == "c-main"), None) or next(iter(fakes.values()))
    lines = open(target.log).read().splitlines()
    oks = [i for i, line in enumerate(lines) if line.startswith("C ") and " OK " in line]
    xs = [i for i, line in enumerate(lines) if line.startswith("X ")]
    if len(oks) < 2 or not xs:
        say("self-test: not enough history in the logs to inject into")
        return False
    dup_line, lost_line = lines[oks[0]], lines[oks[-1]]
    lines.append(dup_line)                                   # duplicated
    del lines[oks[-1]]                                       # lost
    lines.append(f"C {(1 << 62) + 12345} OK 0 {now_ms()}")   # never sent
    lines.append(lines[xs[0]])                               # executed twice
    with open(target.log, "w") as f:
        f.write("\n".join(lines) + "\n")
    ck = check_logs(sd, windows, fakes, [])
    lost, dup, twice = summary(ck, [])
    never = len(ck.v.get("completion for a request never sent", []))
    base = check_logs(d, windows, trainers, [])
    b_lost, b_dup, b_twice = (len(base.v.get(k, [])) for k in ("lost", "duplicated", "executed twice"))
    b_never = len(base.v.get("completion for a request never sent", []))
    ok = (lost - b_lost, dup - b_dup, twice - b_twice, never - b_never) == (1, 1, 1, 1)
    say(f"self-test: the checker found {lost - b_lost} lost (rid {lost_line.split()[1]}), {dup - b_dup} duplicated "
        f"(rid {dup_line.split()[1]}), {never - b_never} never sent, {twice - b_twice} executed twice beyond the "
        f"real run: {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    global WARM
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("ROLLOUT_BINARY_DIR", "build"))
    ap.add_argument("--source", default=os.path.dirname(os.path.dirname(HERE)))
    ap.add_argument("--trainer", help="history_trainer binary (default BUILD/tests/history/history_trainer)")
    ap.add_argument("--faults", default="all", help="comma list of " + ",".join(ALL_FAULTS) + ", all or none")
    ap.add_argument("--long", action="store_true", help="a million requests (faults repeat)")
    ap.add_argument("--requests", type=int, help="requests to reach before stopping (100000; --long 1000000)")
    ap.add_argument("--self-test", action="store_true", help="inject violations into the logs; they must be found")
    ap.add_argument("--keep", action="store_true", help="keep the logs directory")
    ap.add_argument("--check", metavar="DIR", help="only check the logs an earlier run kept in DIR")
    ap.add_argument("--warm", type=int, default=WARM, help="warm sandboxes of the default profile (burst: 10x)")
    ap.add_argument("--spacing", type=float, default=8.0, help="seconds between faults")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    WARM = a.warm
    a.trainer = a.trainer or os.path.join(a.build, "tests/history/history_trainer")
    faults = ALL_FAULTS if a.faults == "all" else [] if a.faults == "none" else a.faults.split(",")
    for f in faults:
        if f not in ALL_FAULTS:
            ap.error(f"unknown fault {f}")
    if a.check:
        # Check the logs of an earlier run again (kept with --keep or after a failure).
        with open(os.path.join(a.check, "run.json")) as f:
            run = json.load(f)
        ts = {n: FakeT(n, os.path.join(a.check, os.path.basename(t["log"])), t["killed"], t["hung"])
              for n, t in run["trainers"].items()}
        ck = check_logs(a.check, run["windows"], ts, run["faults"])
        fault_details(ck, run["windows"], ts)
        summary(ck, run["faults"])
        return 1 if ck.violations() else 0
    target = a.requests or (1000000 if a.long else 100000)
    if os.geteuid() != 0:
        say("history: rollout-pool needs root (namespaces, cgroups); skipping")
        return 77
    t_begin = time.monotonic()
    d = tempfile.mkdtemp(prefix="rollout-history-")
    say(f"history: logs in {d}; faults: {','.join(faults) or 'none'}; target {target} requests")
    cl = Cluster(a, d)
    cl.start_pool()
    cl.start_rd()
    if not cl.pool_up(30):
        say("history: daemons did not come up")
        return 1
    # Volume: the C trainer's noop rate is sized so the target is reached by the end of the
    # fault schedule (about --spacing x faults + 15 s).
    load_s = max(25.0, a.spacing * (len(faults) + 1) + 10) if not a.long else 420.0
    rate = target / load_s * 1.1
    ts, env = start_trainers(a, cl, d, rate)
    fl = Faults(a, cl, d, ts)
    t_load = time.monotonic()
    rounds = 1 if not a.long else 6
    for rnd in range(rounds):
        for f in faults:
            time.sleep(a.spacing)
            if rnd > 0 and f in ("trainer_kill", "malformed", "bigout"):
                continue  # once is enough: the victim is gone, the others are deterministic
            getattr(fl, f)()
    t_last_fault = time.monotonic()
    # Keep the load on until the volume is reached (bounded).
    stop_by = t_load + load_s + (600 if a.long else 40)
    while time.monotonic() < stop_by:
        n = count_submits(ts)
        if n >= target and time.monotonic() - t_load >= min(load_s, 20) and \
                time.monotonic() - t_last_fault >= min(a.spacing, 8):
            break
        time.sleep(2)
    say(f"load phase: {time.monotonic() - t_load:.0f} s; stopping trainers")
    alive = {**ts, **fl.extra}
    for t in alive.values():
        if t.p.poll() is None:
            t.p.send_signal(signal.SIGTERM)
    for t in alive.values():
        try:
            t.p.wait(timeout=35)
        except subprocess.TimeoutExpired:
            t.hung = True
            t.p.kill()
            t.p.wait()
            say(f"trainer {t.name} did not stop within 35 s of SIGTERM: killed (its pending requests count as lost)")
    for t in alive.values():
        if t.p.returncode not in (0, None) and not t.killed:
            say(f"trainer {t.name} exited with {t.p.returncode}: {open(t.log + '.out').read()[-400:]}")
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"windows": fl.windows, "faults": faults,
                   "trainers": {n: {"log": t.log, "killed": t.killed, "hung": t.hung} for n, t in alive.items()}}, f)
    ck = check_logs(d, fl.windows, alive, faults)
    after_checks(cl, ck, True)
    say("faults:")
    fault_details(ck, fl.windows, alive)
    say(f"elapsed {time.monotonic() - t_begin:.0f} s")
    rc = 0
    if a.self_test:
        ok = self_test(d, alive, fl.windows)
        rc = 0 if ok else 1
        say("the run itself:")
    lost, dup, twice = summary(ck, faults)
    if not a.self_test:
        rc = 1 if ck.violations() else 0
    if a.keep or rc:
        say(f"history: logs kept in {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
