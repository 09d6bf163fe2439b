#!/usr/bin/python3
"""rolloutd's attach socket against a second daemon and against slow clients (issue 10 #1, #11).

- A second rolloutd given the same socket path is refused and leaves the serving one's
  socket file in place: trainers can still attach.
- A rolloutd whose bind fails removes nothing.
- Silent clients (connected, never sending their request) delay no other attach, and each
  is cut off after about a second.
- The socket file is removed when the daemon that owns it stops.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

RD = sys.argv[1]
MAGIC, VERSION, REQ, RESP = 0x524C4154, 1, 1, 2
REQ_FMT = "<IHHiIIIII32s4Q"
RESP_HEAD = "<IHHiIQQII"


def attach_request(name=b"probe"):
    return struct.pack(REQ_FMT, MAGIC, VERSION, REQ, -1, os.getpid(), 0, 0, 0, 0, name, 0, 0, 0, 0)


def attach(path, timeout=5.0):
    """One attach; returns (status, seconds). Received fds are closed."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    s.connect(path)
    s.send(attach_request())
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for fd in struct.unpack("%di" % (len(data) // 4), data[: len(data) - len(data) % 4]):
                os.close(fd)
    took = time.monotonic() - t0
    magic, _, typ, status = struct.unpack_from("<IHHi", msg)
    assert magic == MAGIC and typ == RESP, msg
    s.close()
    return status, took


def write_cfg(d, sock, metrics_port):
    path = os.path.join(d, "rd.yaml")
    with open(path, "w") as f:
        f.write("rolloutd:\n  socket: %s\n  metrics: 127.0.0.1:%d\n  drain_ms: 100\n"
                "  pools: [{endpoint: tcp://127.0.0.1:1}]\n" % (sock, metrics_port))
    return path


def wait_socket(path, proc, limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise AssertionError("rolloutd exited with %s" % proc.returncode)
        time.sleep(0.02)
    raise AssertionError("no socket at " + path)


def main():
    failures, passes = [], []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        (passes if cond else failures).append(what)

    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "rd.sock")
        port = 20000 + os.getpid() % 20000
        cfg = write_cfg(d, sock, port)
        first = subprocess.Popen([RD, "--config", cfg, "--log-level", "warn"], stderr=subprocess.PIPE)
        try:
            wait_socket(sock, first)
            status, _ = attach(sock)
            check(status == 0, "the first rolloutd serves attaches")
            ino = os.stat(sock).st_ino

            # A second rolloutd on the same path: refused, and the first one's socket stays.
            cfg2 = os.path.join(d, "rd2.yaml")
            with open(cfg2, "w") as f:
                f.write("rolloutd:\n  socket: %s\n  pools: [{endpoint: tcp://127.0.0.1:1}]\n" % sock)
            second = subprocess.run([RD, "--config", cfg2], capture_output=True, text=True, timeout=20)
            check(second.returncode == 1, "a second rolloutd on the same socket exits 1 (got %d)" % second.returncode)
            check("another rolloutd serves" in second.stderr, "it says why: %r" % second.stderr.strip())
            check(os.path.exists(sock) and os.stat(sock).st_ino == ino, "the serving socket file is still there")
            status, _ = attach(sock)
            check(status == 0, "trainers still attach to the first rolloutd")

            # A bind that fails (its directory cannot be made: a file is in the way) removes
            # nothing either.
            cfg3 = os.path.join(d, "rd3.yaml")
            with open(os.path.join(d, "afile"), "w") as f:
                f.write("not a directory\n")
            with open(cfg3, "w") as f:
                f.write("rolloutd:\n  socket: %s/afile/dir.sock\n  pools: [{endpoint: tcp://127.0.0.1:1}]\n" % d)
            third = subprocess.run([RD, "--config", cfg3], capture_output=True, text=True, timeout=20)
            check(third.returncode == 1 and "cannot bind" in third.stderr,
                  "a failed bind exits 1 and names the path: %r" % third.stderr.strip())
            check(os.path.exists(sock), "the serving socket file survives a failed bind elsewhere")

            # Silent clients: connected, never sending. A real attach is not delayed by them.
            silent = []
            for _ in range(5):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(sock)
                silent.append(s)
            time.sleep(0.05)
            status, took = attach(sock)
            check(status == 0 and took < 0.5,
                  "an attach behind 5 silent clients takes %.3f s (< 0.5 s; it was up to 5 s)" % took)
            # Each silent client is cut off after about a second, with a refusal.
            t0 = time.monotonic()
            silent[0].settimeout(5)
            data = silent[0].recv(4096)
            waited = time.monotonic() - t0
            check(len(data) >= 12 and struct.unpack_from("<i", data, 8)[0] != 0,
                  "a silent client gets a refusal (status %d)" % (struct.unpack_from("<i", data, 8)[0] if len(data) >= 12 else 0))
            check(waited < 2.0, "within the 1 s deadline (waited %.2f s more)" % waited)
            for s in silent:
                s.close()
        finally:
            first.terminate()
            try:
                first.wait(15)
            except subprocess.TimeoutExpired:
                first.kill()
                first.wait()
        check(first.returncode == 0, "SIGTERM: rolloutd exits 0 (got %s)" % first.returncode)
        check(not os.path.exists(sock), "its socket file is removed at exit")

        # RELIABILITY 26: a trainer whose uid (SO_PEERCRED) is not allowed is refused.
        for uids, allowed in (("[%d]" % (os.getuid() + 4242), False), ("[%d]" % os.getuid(), True)):
            cfgu = os.path.join(d, "rdu.yaml")
            with open(cfgu, "w") as f:
                f.write("rolloutd:\n  socket: %s\n  trainer_uids: %s\n  drain_ms: 100\n"
                        "  pools: [{endpoint: tcp://127.0.0.1:1}]\n" % (sock, uids))
            rd = subprocess.Popen([RD, "--config", cfgu, "--log-level", "error"])
            try:
                wait_socket(sock, rd)
                status, _ = attach(sock)
                check((status == 0) == allowed, "trainer_uids %s: attach as uid %d %s (status %d)"
                      % (uids, os.getuid(), "allowed" if allowed else "refused", status))
            finally:
                rd.terminate()
                rd.wait(15)
    print("%d passed, %d failed" % (len(passes), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
