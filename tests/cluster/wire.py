#!/usr/bin/python3
"""A network link in user space, for faults the kernel here cannot make (no sch_netem, no tc
classifiers): two TAP devices, one in each namespace, and this process passing Ethernet
frames between them, each direction with its own loss probability and delay.

Usage: wire.py NS_A IF_A NS_B IF_B     (A: the switch side, B: the host side)
Creates the TAPs (they vanish with this process), prints "ready", then reads commands on
stdin, one a line, and answers each with "ok":
    set DIR loss=P delay=S syn=0|1 nodata=0|1
                                     DIR: ab (A to B), ba (B to A) or both; P in 0..1,
                                     S seconds; syn=1 drops TCP SYNs (new connections);
                                     nodata=1 drops TCP segments carrying data (pure ACKs pass)
    stats                            answers "ok ab=F/B ba=F/B": TCP segments carrying data
                                     (F) and their payload bytes (B) passed each way since
                                     the last stats
Frames keep their order within a direction (a delayed frame holds back the ones behind it,
as on a real link with a queue).
"""
import collections
import ctypes
import fcntl
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def tap_in(ns, name):
    fd = os.open("/var/run/netns/" + ns, os.O_RDONLY)
    if _libc.setns(fd, CLONE_NEWNET):
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)
    t = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(t, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return t


def is_syn(f):
    """An IPv4 TCP segment with SYN set and ACK clear: the start of a new connection."""
    if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
        return False
    off = 14 + (f[14] & 0x0F) * 4 + 13
    return len(f) > off and (f[off] & 0x12) == 0x02


def tcp_payload(f):
    """Bytes of TCP payload in an IPv4 frame (0 for anything else)."""
    if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
        return 0
    ihl = (f[14] & 0x0F) * 4
    total = int.from_bytes(f[16:18], "big")
    off = 14 + ihl + 12
    return max(0, total - ihl - (f[off] >> 4) * 4) if len(f) > off else 0


def main():
    ns_a, if_a, ns_b, if_b = sys.argv[1:5]
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    a = tap_in(ns_a, if_a)
    b = tap_in(ns_b, if_b)
    _libc.setns(own, CLONE_NEWNET)
    # direction -> [loss, delay, queue of (due, frame)]
    d = {"ab": [0.0, 0.0, collections.deque(), 0, 0], "ba": [0.0, 0.0, collections.deque(), 0, 0]}
    src = {a: ("ab", b), b: ("ba", a)}
    passed = {"ab": [0, 0], "ba": [0, 0]}  # data segments, payload bytes
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        timeout = None
        for k, (_, _, q, _, _) in d.items():
            out = b if k == "ab" else a
            while q and q[0][0] <= now:
                try:
                    os.write(out, q.popleft()[1])
                except OSError:
                    pass  # interface down: the frame is lost, as on a cable pulled out
            if q:
                timeout = min(timeout or 1e9, q[0][0] - now)
        r, _, _ = select.select([a, b, stdin], [], [], timeout)
        for fd in r:
            if fd == stdin:
                line = sys.stdin.readline()
                if not line:
                    return 0
                p = line.split()
                if p and p[0] == "stats":
                    print("ok ab=%d/%d ba=%d/%d" % (*passed["ab"], *passed["ba"]), flush=True)
                    passed = {"ab": [0, 0], "ba": [0, 0]}
                    continue
                if len(p) >= 2 and p[0] == "set":
                    kv = dict(x.split("=") for x in p[2:])
                    for k in (("ab", "ba") if p[1] == "both" else (p[1],)):
                        d[k][0] = float(kv.get("loss", d[k][0]))
                        d[k][1] = float(kv.get("delay", d[k][1]))
                        d[k][3] = int(kv.get("syn", d[k][3]))
                        d[k][4] = int(kv.get("nodata", d[k][4]))
                print("ok", flush=True)
                continue
            k, out = src[fd]
            loss, delay, q, syn, nodata = d[k]
            for _ in range(64):
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if loss and random.random() < loss:
                    continue
                if syn and is_syn(frame):
                    continue
                n = tcp_payload(frame)
                if n and nodata:
                    continue
                if n:
                    passed[k][0] += 1
                    passed[k][1] += n
                if delay or q:
                    q.append((time.monotonic() + delay, frame))
                else:
                    try:
                        os.write(out, frame)
                    except OSError:
                        pass


if __name__ == "__main__":
    sys.exit(main())
