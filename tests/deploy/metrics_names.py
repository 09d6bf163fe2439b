#!/usr/bin/python3
"""The Grafana dashboard (deploy/grafana/rolloutd.json) and the alert rules
(deploy/prometheus/*.rules.yml) query only what the daemons export: this starts rolloutd and
rollout-pool on loopback, scrapes both /metrics, and checks every metric name in every query
(histogram series included), every label a selector matches on and every label a query
aggregates by. Prometheus's own `up`, `instance` and `job` are allowed; so is `le`.
Usage: metrics_names.py SOURCE_DIR BUILD_DIR. Exit 77 when not root (the pool).
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

SRC, BUILD = sys.argv[1], sys.argv[2]
TARGET_LABELS = {"instance", "job"}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def scrape(url, limit=10):
    end = time.monotonic() + limit
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def families(text):
    """{series name: set of label names} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if m:
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
            out.setdefault(m.group(1), set()).update(labels)
    return out


def check_expr(where, expr, live):
    names = set(re.findall(r"\b(rolloutd_[a-z0-9_]+|rollout_pool_[a-z0-9_]+|up)\b(?!\s*\()", expr))
    # `up` as a word also appears in label values and text; only count it as a selector.
    if "up" in names and not re.search(r"\bup\s*\{", expr):
        names.discard("up")
    for n in sorted(names):
        check(n in live or n == "up", "%s: metric %s is exported" % (where, n))
    known = set(TARGET_LABELS) | {"le"}
    for n in names:
        known |= live.get(n, set())
    for n, sel in re.findall(r"\b(rolloutd_[a-z0-9_]+|rollout_pool_[a-z0-9_]+|up)\{([^}]*)\}", expr):
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", sel):
            ok = label in live.get(n, set()) | TARGET_LABELS
            check(ok, "%s: %s{%s=...} is a label it has" % (where, n, label))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for label in [l.strip() for l in group.split(",") if l.strip()]:
            check(label in known, "%s: aggregates by label %s that its metrics have" % (where, label))
    return names


def main():
    if os.geteuid() != 0:
        print("metrics names: needs root to start rollout-pool; skipping")
        return 77
    port = 21000 + os.getpid() % 20000
    d = tempfile.mkdtemp(prefix="rollout-metrics-names-")
    cfg = os.path.join(d, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write("rolloutd:\n  socket: %s/rd.sock\n  metrics: 127.0.0.1:%d\n  pools: [{endpoint: tcp://127.0.0.1:%d}]\n"
                "pool:\n  listen: tcp://127.0.0.1:%d\n  metrics: 127.0.0.1:%d\n  cgroup: rollout-names-%d\n"
                "  profiles:\n    - {name: default, warm: 1, max: 4}\n    - {name: noop, type: noop, max: 100}\n"
                % (d, port + 1, port, port, port + 2, os.getpid()))
    procs = [subprocess.Popen([os.path.join(BUILD, b), "--config", cfg, "--log-level", "error"])
             for b in ("pool/rollout-pool", "coordinator/rolloutd")]
    try:
        # Per-pool series appear once the pool link is up.
        end = time.monotonic() + 15
        while True:
            text = scrape("http://127.0.0.1:%d/metrics" % (port + 1))
            if 'rolloutd_pool_up{' in text or time.monotonic() > end:
                break
            time.sleep(0.1)
        live = families(text)
        pool_live = families(scrape("http://127.0.0.1:%d/metrics" % (port + 2)))
        live.update(pool_live)
        check(any(n.startswith("rolloutd_") for n in live) and any(n.startswith("rollout_pool_") for n in live),
              "scraped %d series names from live rolloutd and rollout-pool" % len(live))

        with open(os.path.join(SRC, "deploy/grafana/rolloutd.json")) as f:
            dash = json.load(f)
        used = set()
        for p in dash["panels"]:
            for t in p.get("targets", []):
                used |= check_expr("panel '%s'" % p["title"], t["expr"], live)
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            if isinstance(q, dict):
                used |= check_expr("variable %s" % v["name"], q["query"], live)
        fams = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        print("dashboard queries %d metrics: %s" % (len(fams), ", ".join(sorted(fams))))
        for want in ("rolloutd_completions_total", "rolloutd_latency_seconds", "rolloutd_pool_free_sandboxes",
                     "rollout_pool_warm_sandboxes", "rollout_pool_leases_expired_total",
                     "rollout_pool_create_failures_total", "rolloutd_ring_pending_bytes"):
            check(want in fams, "dashboard shows %s" % want)

        for rf in sorted(glob.glob(os.path.join(SRC, "deploy/prometheus/*.rules.yml"))):
            with open(rf) as f:
                doc = yaml.safe_load(f)
            for g in doc["groups"]:
                for r in g["rules"]:
                    check_expr("%s alert %s" % (os.path.basename(rf), r.get("alert", r.get("record"))), r["expr"], live)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(20)
        subprocess.run(["rm", "-rf", d])
        for c in glob.glob("/sys/fs/cgroup/*/rollout-names-%d" % os.getpid()):
            try:
                os.rmdir(c)
            except OSError:
                pass
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
