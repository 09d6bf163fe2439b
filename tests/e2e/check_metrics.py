"""Scrapes a Prometheus endpoint twice and checks what promtool does not: histogram buckets
are cumulative and +Inf equals _count; counters (*_total, _count, _sum) never go backwards
between scrapes; label sets are bounded (no label value that looks like an id).

    check_metrics.py URL [--seconds S] [--busy]

Scrapes every 0.1 s for S seconds (default 0.3). With --busy, the period must have been busy
(some *_total counter grew), so monotonicity was checked while the daemon was working."""
import re
import sys
import time
import urllib.request

url = sys.argv[1]
seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 0.3
busy = "--busy" in sys.argv


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


scrapes = [scrape()]
end = time.monotonic() + seconds
while time.monotonic() < end:
    time.sleep(0.1)
    scrapes.append(scrape())
first, second = scrapes[0], scrapes[-1]
for a, b in zip(scrapes, scrapes[1:]):
    for key, v in a.items():
        name, _ = labels(key)
        if name.endswith(("_total", "_count", "_sum")) and key in b:
            check(b[key] >= v, f"counter {key} went backwards: {v} -> {b[key]}")
if busy:
    grew = [k for k, v in first.items() if labels(k)[0].endswith("_total") and second.get(k, v) > v]
    check(bool(grew), "no counter grew while scraping: the check was not made under load")
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

print(f"{len(second)} samples, {len(buckets)} histograms, {failures} failures")
sys.exit(1 if failures else 0)
