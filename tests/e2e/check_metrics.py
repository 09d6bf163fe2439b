"""Scrapes a Prometheus endpoint twice and checks what promtool does not: histogram buckets
are cumulative and +Inf equals _count; counters (*_total, _count, _sum) never go backwards
between scrapes; label sets are bounded (no label value that looks like an id)."""
import re
import sys
import time
import urllib.request

url = sys.argv[1]


def scrape():
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        samples[name_labels] = float(value)
    return samples


def labels(key):
    m = re.match(r"([^{]+)(\{(.*)\})?$", key)
    return m.group(1), dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))


failures = 0


def check(cond, what):
    global failures
    if not cond:
        print("FAIL", what)
        failures += 1


first = scrape()
time.sleep(0.3)
second = scrape()
buckets = {}
for key, v in second.items():
    name, lab = labels(key)
    if name.endswith("_bucket"):
        base = name[: -len("_bucket")]
        le = lab.pop("le")
        buckets.setdefault((base, tuple(sorted(lab.items()))), []).append((float("inf") if le == "+Inf" else float(le), v))
    for k, val in lab.items():
        check(not re.fullmatch(r"[0-9a-f]{12,}|\d{6,}", val), f"unbounded-looking label {k}={val} in {key}")
for (base, lab), series in buckets.items():
    series.sort()
    values = [v for _, v in series]
    check(values == sorted(values), f"{base}{dict(lab)} buckets not cumulative: {values}")
    check(series[-1][0] == float("inf"), f"{base}{dict(lab)} has no +Inf bucket")
    count_key = base + "_count" + ("{" + ",".join(f'{k}="{v}"' for k, v in lab) + "}" if lab else "")
    check(second.get(count_key) == series[-1][1], f"{base}{dict(lab)}: +Inf {series[-1][1]} != _count {second.get(count_key)}")
for key, v in first.items():
    name, _ = labels(key)
    if name.endswith(("_total", "_count", "_sum")) and key in second:
        check(second[key] >= v, f"counter {key} went backwards: {v} -> {second[key]}")
print(f"{len(second)} samples, {len(buckets)} histograms, {failures} failures")
sys.exit(1 if failures else 0)
