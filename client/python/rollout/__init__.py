"""Python binding of librollout: sandbox actions through rolloutd, blocking or with asyncio.

Only the standard library is used (ctypes), so it runs wherever librollout is installed.
The library is found through ``ROLLOUT_LIBRARY`` (a path), then where ``make install`` put it,
then the system's library path.

Blocking::

    with rollout.Client() as client:
        sb = client.open("default")
        r = sb.exec("python3 -c 'print(6*7)'")
        print(r.exit_code, r.stdout)
        sb.close()

asyncio (one coroutine per trajectory, thousands on one connection)::

    async with rollout.AsyncClient(socket=...) as client:
        sb = await client.open("default")
        r = await sb.exec(["ls", "-l"])
        await sb.close()

Environments (image profiles): a sandbox's files can be snapshotted and new sandboxes
opened from the snapshot; with ``checkpoint_every`` the pool checkpoints automatically, and
a sandbox lost with its pool can be continued from its checkpoint elsewhere::

    sb = client.open("busybox", checkpoint_every=1)
    ...
    try:
        sb.exec(step)
    except rollout.SandboxLostError as lost:
        sb, redo = client.resume(lost)   # a new sandbox from the checkpoint
        for step in redo: ...            # what ran after it: yours to redo, nothing re-runs
    branches = client.fork(sb, 8)        # 8 sandboxes from one snapshot of sb
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import shlex
import weakref
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["Client", "AsyncClient", "Sandbox", "AsyncSandbox", "Result", "RolloutError", "RolloutConnectionError",
           "SandboxLostError", "Step", "Status", "Err", "Group", "AsyncGroup"]
__version__ = "0.3.0"


class Status:
    """Completion status values of the wire schema (enum Status of wire/rollout.fbs; stable,
    never reused). tests/test_abi.py checks this copy against the schema."""
    OK = 0
    TIMEOUT = 1
    SANDBOX_LOST = 2
    NO_CAPACITY = 3
    BAD_REQUEST = 4
    NOT_FOUND = 5
    MEMORY_LIMIT = 6
    OUTPUT_LIMIT = 7
    CANCELLED = 8
    SHUTTING_DOWN = 9
    INTERNAL = 10
    UNKNOWN_PROFILE = 11
    PERMISSION_DENIED = 12
    FILE_TOO_LARGE = 13
    DUPLICATE_REQUEST = 14
    UNAVAILABLE = 15


class Err:
    """librollout's own error codes (ROLLOUT_ERRNO_MAP of include/rollout/error.h), as
    RolloutError.code holds them; other negative codes are -errno. tests/test_abi.py checks
    this copy against the header."""
    E_VERIFY = -1000
    E_ABI = -1001
    E_PEER_DEAD = -1002
    E_CORRUPT = -1003
    E_CONFIG = -1004
    E_TOPOLOGY = -1005
    E_SCHEMA = -1006
    E_TOO_BIG = -1007
    E_PROTOCOL = -1008
    E_EPOCH = -1009
    E_SHUTDOWN = -1010
    E_NOT_CONNECTED = -1011
    E_STATUS = -1012


_ERR_CODES = frozenset(v for k, v in vars(Err).items() if k.startswith("E_"))


class RolloutError(Exception):
    """A request that did not complete OK, or a client-side error.

    status: a Status value (the completion's, or the one closest to a client-side error);
    infra_failed: the infrastructure failed, not the action; code: librollout's negative
    return code for a client-side error (-errno or an Err value), 0 for a completion status;
    errno: the positive errno when code is -errno, else None."""

    # The sandbox's checkpoint when the completion named one (SandboxLostError sets them).
    checkpoint: Optional[str] = None
    checkpoint_request_id: int = 0

    def __init__(self, message: str, status: int = Status.INTERNAL, infra_failed: bool = False, code: int = 0):
        super().__init__(message)
        self.status = status
        self.infra_failed = infra_failed
        self.code = code
        self.errno = -code if -4096 < code < 0 and code not in _ERR_CODES else None

    def _again(self) -> "RolloutError":
        # A fresh instance for each raise of one stored error, so tracebacks do not pile up
        # on a shared object.
        e = type(self)(str(self), self.status, self.infra_failed, self.code)
        e.__dict__.update(self.__dict__)  # and what a subclass adds (SandboxLostError's checkpoint)
        return e


class RolloutConnectionError(RolloutError, ConnectionError):
    """rolloutd cannot be reached or has gone away (status UNAVAILABLE, code
    Err.E_PEER_DEAD or Err.E_NOT_CONNECTED), or it is shutting down (SHUTTING_DOWN,
    Err.E_SHUTDOWN). Final for the client: every call pending on it and every later call
    fails with it; connect a new client."""


class SandboxLostError(RolloutError):
    """A request completed SANDBOX_LOST: the sandbox (or its pool) is gone, with everything
    in it. status is SANDBOX_LOST and infra_failed is set.

    checkpoint: the sandbox's latest checkpoint (a snapshot id), or None when it had none;
    it holds the effects of every step up to checkpoint_request_id and none after.
    sandbox: the Sandbox (or AsyncSandbox) that was lost, whose ``steps`` list what was
    submitted. ``client.resume(e)`` opens a sandbox from the checkpoint and returns the steps
    to redo; nothing is re-run by rolloutd or the binding."""

    def __init__(self, message: str, status: int = Status.SANDBOX_LOST, infra_failed: bool = True, code: int = 0,
                 checkpoint: Optional[str] = None, checkpoint_request_id: int = 0, sandbox: object = None):
        super().__init__(message, status, infra_failed, code)
        self.checkpoint = checkpoint
        self.checkpoint_request_id = checkpoint_request_id
        self.sandbox = sandbox


# What a librollout return code means to a caller: the Status it is closest to, and whether
# the infrastructure failed (True) or the request itself was refused (False). Codes not
# listed are INTERNAL, infra_failed. Every Err code has a row (tests/test_abi.py).
_CODE_STATUS = {
    Err.E_PEER_DEAD: (Status.UNAVAILABLE, True),
    Err.E_NOT_CONNECTED: (Status.UNAVAILABLE, True),
    Err.E_SHUTDOWN: (Status.SHUTTING_DOWN, True),
    Err.E_EPOCH: (Status.UNAVAILABLE, True),
    Err.E_TOO_BIG: (Status.BAD_REQUEST, False),
    Err.E_VERIFY: (Status.INTERNAL, True),
    Err.E_ABI: (Status.INTERNAL, True),
    Err.E_CORRUPT: (Status.INTERNAL, True),
    Err.E_CONFIG: (Status.INTERNAL, True),
    Err.E_TOPOLOGY: (Status.INTERNAL, True),
    Err.E_SCHEMA: (Status.INTERNAL, True),
    Err.E_PROTOCOL: (Status.INTERNAL, True),
    Err.E_STATUS: (Status.INTERNAL, True),
    -errno.ETIMEDOUT: (Status.TIMEOUT, True),
    -errno.ECONNREFUSED: (Status.UNAVAILABLE, True),
    -errno.ECONNRESET: (Status.UNAVAILABLE, True),
    -errno.ENOENT: (Status.UNAVAILABLE, True),
    -errno.EPIPE: (Status.UNAVAILABLE, True),
    -errno.ENOTCONN: (Status.UNAVAILABLE, True),
    -errno.EACCES: (Status.PERMISSION_DENIED, True),
    -errno.EPERM: (Status.PERMISSION_DENIED, True),
    -errno.EINVAL: (Status.BAD_REQUEST, False),
    -errno.E2BIG: (Status.BAD_REQUEST, False),
    -errno.ENAMETOOLONG: (Status.BAD_REQUEST, False),
    -errno.EMSGSIZE: (Status.BAD_REQUEST, False),
}


def _error(code: int, what: str) -> RolloutError:
    """The RolloutError for a negative librollout return code."""
    status, infra = _CODE_STATUS.get(code, (Status.INTERNAL, True))
    cls = RolloutConnectionError if status in (Status.UNAVAILABLE, Status.SHUTTING_DOWN) else RolloutError
    return cls(f"{what}: {_strerror(code)} ({_err_name(code)})", status, infra, code)


# ---------------------------------------------------------------- the C library

class _ConnectOpts(ctypes.Structure):
    _fields_ = [("socket_path", ctypes.c_char_p), ("gpu", ctypes.c_int), ("name", ctypes.c_char_p),
                ("sq_bytes", ctypes.c_uint32), ("cq_bytes", ctypes.c_uint32), ("timeout_ms", ctypes.c_int)]


class _Env(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class _Exec(ctypes.Structure):
    _fields_ = [("argv", ctypes.POINTER(ctypes.c_char_p)), ("shell", ctypes.c_char_p),
                ("stdin_data", ctypes.c_void_p), ("stdin_len", ctypes.c_size_t),
                ("env", ctypes.POINTER(_Env)), ("env_len", ctypes.c_size_t), ("cwd", ctypes.c_char_p),
                ("timeout_ms", ctypes.c_uint32), ("output_cap", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


EXEC_STREAM = 0x1  # rollout_exec.flags: output arrives while the command runs


class _Completion(ctypes.Structure):
    _fields_ = [("request_id", ctypes.c_uint64), ("status", ctypes.c_int), ("infra_failed", ctypes.c_bool),
                ("message", ctypes.c_char_p), ("sandbox", ctypes.c_uint64), ("exit_code", ctypes.c_int),
                ("signal", ctypes.c_int), ("stdout_data", ctypes.c_void_p), ("stderr_data", ctypes.c_void_p),
                ("file_data", ctypes.c_void_p), ("stdout_len", ctypes.c_size_t), ("stderr_len", ctypes.c_size_t),
                ("file_len", ctypes.c_size_t), ("stdout_truncated", ctypes.c_bool),
                ("stderr_truncated", ctypes.c_bool), ("file_truncated", ctypes.c_bool),
                ("wall_us", ctypes.c_uint64), ("cpu_us", ctypes.c_uint64), ("peak_memory_kib", ctypes.c_uint64),
                ("partial", ctypes.c_bool), ("stdout_offset", ctypes.c_uint64), ("stderr_offset", ctypes.c_uint64),
                ("snapshot", ctypes.c_char_p), ("snapshot_bytes", ctypes.c_uint64),
                ("snapshot_files", ctypes.c_uint64), ("frozen_us", ctypes.c_uint64),
                ("checkpoint", ctypes.c_char_p), ("checkpoint_request_id", ctypes.c_uint64)]


class _OpenOpts(ctypes.Structure):
    _fields_ = [("profile", ctypes.c_char_p), ("snapshot", ctypes.c_char_p), ("group", ctypes.c_char_p),
                ("lease_ms", ctypes.c_uint32), ("checkpoint_every", ctypes.c_uint32)]


def _open_library() -> ctypes.CDLL:
    """librollout: $ROLLOUT_LIBRARY, else the one `make install` installed with this package
    (rollout/_install.py), else the system's library path."""
    env = os.environ.get("ROLLOUT_LIBRARY")
    candidates = [env] if env else []
    if not env:
        try:
            from . import _install  # type: ignore[attr-defined]
            candidates.append(_install.LIBRARY)
        except ImportError:
            pass
        found = ctypes.util.find_library("rollout")
        candidates += [found] if found else []
        candidates.append("librollout.so.0")
    errors = []
    for path in candidates:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise OSError("rollout: cannot load librollout (tried %s): install it with `make install`, or set "
                  "ROLLOUT_LIBRARY=/path/to/librollout.so (%s)" % (", ".join(candidates), "; ".join(errors)))


def _load() -> ctypes.CDLL:
    lib = _open_library()
    p, u64, i32, u32 = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_uint32
    sig = {
        "rollout_connect": (i32, [ctypes.POINTER(_ConnectOpts), ctypes.POINTER(p)]),
        "rollout_disconnect": (None, [p]),
        "rollout_fd": (i32, [p]),
        "rollout_arm": (i32, [p]),
        "rollout_open": (i32, [p, u64, ctypes.c_char_p, u64]),
        "rollout_exec": (i32, [p, u64, u64, ctypes.POINTER(_Exec), u64]),
        "rollout_put_file": (i32, [p, u64, u64, ctypes.c_char_p, p, ctypes.c_size_t, u32]),
        "rollout_get_file": (i32, [p, u64, u64, ctypes.c_char_p, u32]),
        "rollout_close": (i32, [p, u64, u64]),
        "rollout_signal": (i32, [p, u64, u64, u64, i32]),
        "rollout_open_ex": (i32, [p, u64, ctypes.POINTER(_OpenOpts), u64]),
        "rollout_snapshot": (i32, [p, u64, u64, ctypes.c_bool]),
        "rollout_flush": (i32, [p]),
        "rollout_wait_space": (i32, [p, u32, i32]),
        "rollout_next": (i32, [p, ctypes.POINTER(_Completion)]),
        "rollout_wait": (i32, [p, i32]),
        "rollout_status_name": (ctypes.c_char_p, [i32]),
        "rollout_strerror": (ctypes.c_char_p, [i32]),
        "rollout_err_name": (ctypes.c_char_p, [i32]),
        "rollout_peer_fd": (i32, [p]),
        "rollout_check": (i32, [p]),
        "rollout_version": (ctypes.c_uint, []),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _strerror(rc: int) -> str:
    return lib().rollout_strerror(rc).decode()


def _err_name(rc: int) -> str:
    return lib().rollout_err_name(rc).decode()


def status_name(status: int) -> str:
    return lib().rollout_status_name(status).decode()


# ---------------------------------------------------------------- results

@dataclass
class Result:
    """What an action produced. stdout/stderr are bytes (sandbox output may be binary), or
    memoryviews from Sandbox.exec_view()."""
    status: int
    exit_code: int = 0
    signal: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_us: int = 0
    cpu_us: int = 0
    peak_memory_kib: int = 0
    data: bytes = b""
    data_truncated: bool = False
    sandbox: int = 0
    message: str = ""
    infra_failed: bool = False
    # Streamed output (exec with stream=True) arrives as partial results before the real
    # one: stdout/stderr hold the new bytes, which start at these offsets of their stream.
    partial: bool = False
    stdout_offset: int = 0
    stderr_offset: int = 0
    # Snapshot: the id to open from, what it captured and how long the sandbox was frozen.
    snapshot: Optional[str] = None
    snapshot_bytes: int = 0
    snapshot_files: int = 0
    frozen_us: int = 0
    # Set when this step made a checkpoint, and on SANDBOX_LOST of a sandbox that has one:
    # the snapshot holding every step up to checkpoint_request_id.
    checkpoint: Optional[str] = None
    checkpoint_request_id: int = 0

    @property
    def ok(self) -> bool:
        return self.status == Status.OK and self.exit_code == 0 and self.signal == 0


def _result(c: _Completion) -> Result:
    def take(ptr, n):
        return ctypes.string_at(ptr, n) if ptr and n else b""
    return Result(status=c.status, exit_code=c.exit_code, signal=c.signal, stdout=take(c.stdout_data, c.stdout_len),
                  stderr=take(c.stderr_data, c.stderr_len), stdout_truncated=c.stdout_truncated,
                  stderr_truncated=c.stderr_truncated, wall_us=c.wall_us, cpu_us=c.cpu_us,
                  peak_memory_kib=c.peak_memory_kib, data=take(c.file_data, c.file_len),
                  data_truncated=c.file_truncated, sandbox=c.sandbox,
                  message=c.message.decode(errors="replace") if c.message else "", infra_failed=c.infra_failed,
                  partial=c.partial, stdout_offset=c.stdout_offset, stderr_offset=c.stderr_offset,
                  snapshot=c.snapshot.decode() if c.snapshot else None, snapshot_bytes=c.snapshot_bytes,
                  snapshot_files=c.snapshot_files, frozen_us=c.frozen_us,
                  checkpoint=c.checkpoint.decode() if c.checkpoint else None,
                  checkpoint_request_id=c.checkpoint_request_id)


def _raise_for(r: Result, what: str, sandbox: Optional["_SandboxBase"] = None) -> Result:
    """r, or the RolloutError its status means (SandboxLostError for SANDBOX_LOST). The
    sandbox, when given, first takes the checkpoint the completion names."""
    if sandbox is not None:
        sandbox._take(r)
    if r.status == Status.OK:
        return r
    text = f"{what}: {status_name(r.status)}" + (f": {r.message}" if r.message else "")
    if r.status == Status.SANDBOX_LOST:
        ckpt, ckpt_rid = r.checkpoint, r.checkpoint_request_id
        if ckpt is None and sandbox is not None:
            ckpt, ckpt_rid = sandbox.checkpoint, sandbox.checkpoint_request_id
        if ckpt is not None:
            text += f" (checkpoint {ckpt} after request {ckpt_rid})"
        raise SandboxLostError(text, r.status, r.infra_failed, 0, ckpt, ckpt_rid, sandbox)
    raise RolloutError(text, r.status, r.infra_failed)


@dataclass(frozen=True)
class Step:
    """A mutating step submitted on a sandbox (exec or put_file), in submission order:
    request_id (the binding's id for it, rising), action ("exec" or "put_file") and a short
    description (the command, or the path and size). Sandbox.steps lists them so a task
    resumed from a checkpoint knows what ran after it (Client.resume)."""
    request_id: int
    action: str
    description: str


def _describe(cmd: "Command") -> str:
    text = cmd if isinstance(cmd, str) else shlex.join(cmd)
    return text if len(text) <= 200 else text[:197] + "..."


class _SandboxBase:
    """What both sandbox kinds keep: the profile and the snapshot it was opened from, the
    latest checkpoint a completion named, and the mutating steps submitted on it."""

    def __init__(self, client: "_Core", sandbox_id: int, profile: str = "default", origin: Optional[str] = None,
                 checkpoint_every: int = 0):
        self.client = client
        self.id = sandbox_id
        self.closed = False
        self.profile = profile
        self.origin = origin  # the snapshot it was opened from, or None
        self.checkpoint_every = checkpoint_every
        self.checkpoint: Optional[str] = None
        self.checkpoint_request_id = 0
        self.steps: List[Step] = []
        client._sandboxes[sandbox_id] = self

    def _take(self, r: Result) -> None:
        # The newest checkpoint wins: a sandbox's steps run one at a time, in order.
        if r.checkpoint:
            self.checkpoint, self.checkpoint_request_id = r.checkpoint, r.checkpoint_request_id

    def steps_after(self, request_id: int) -> List[Step]:
        """The steps submitted after request_id (those a checkpoint made at request_id
        does not hold)."""
        return [s for s in self.steps if s.request_id > request_id]

    def _resume_point(self, lost: Optional[SandboxLostError] = None) -> Tuple[str, int]:
        """Where a task on this sandbox continues: the lost error's checkpoint, else the
        latest one seen, else the snapshot it was opened from (before every step)."""
        if lost is not None and lost.checkpoint:
            return lost.checkpoint, lost.checkpoint_request_id
        if self.checkpoint:
            return self.checkpoint, self.checkpoint_request_id
        if self.origin:
            return self.origin, 0
        raise RolloutError(f"sandbox {self.id:#x} has no checkpoint to resume from (open it with "
                           "checkpoint_every, or call snapshot(checkpoint=True))", Status.NOT_FOUND)


Command = Union[str, Sequence[str]]


class _Core:
    """The connection and the submission side shared by both clients."""

    def __init__(self, socket: Optional[str], gpu: int, name: str, timeout_ms: int = 5000):
        self._handle = ctypes.c_void_p()
        opts = _ConnectOpts(socket.encode() if socket else None, gpu, name.encode(), 0, 0, timeout_ms)
        rc = lib().rollout_connect(ctypes.byref(opts), ctypes.byref(self._handle))
        if rc:
            e = _error(rc, "cannot connect to rolloutd")
            if not isinstance(e, RolloutConnectionError):  # whatever it is, there is no connection
                e = RolloutConnectionError(str(e), Status.UNAVAILABLE, True, rc)
            raise e
        self._next_id = 1
        self._keep: Dict[int, object] = {}
        # The live sandbox objects by id, so every path that submits a step records it.
        self._sandboxes: "weakref.WeakValueDictionary[int, _SandboxBase]" = weakref.WeakValueDictionary()
        # The error that ended the connection (rolloutd died or closed it); set once, final.
        self._lost: Optional[RolloutError] = None

    def _id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def _fail(self, code: int, what: str, final: bool = False) -> RolloutError:
        """The error for a librollout code. A final one (rolloutd gone or shutting down, a
        corrupt ring, or final=True) also ends the connection: every later call fails at
        once with it (see _connection_lost)."""
        e = _error(code, what)
        if final or isinstance(e, RolloutConnectionError) or code == Err.E_CORRUPT:
            self._end(e)
        return e

    def _end(self, e: RolloutError) -> None:
        if self._lost is None:
            self._lost = e
            self._connection_lost(e)

    def _connection_lost(self, e: RolloutError) -> None:
        """Called once when the connection ends; the asyncio client fails its futures."""

    def _check_lost(self) -> None:
        if self._lost is not None:
            raise self._lost._again()
        if not self._handle:
            raise RolloutConnectionError("client closed", Status.UNAVAILABLE, True, Err.E_NOT_CONNECTED)

    def _submit(self, fn, *args) -> None:
        """Retries while the submission ring is full (backpressure), flushing so rolloutd
        drains it. Only a full ring of a live rolloutd is retried: every other code, among
        them rolloutd's death seen while waiting for room, is raised."""
        self._check_lost()
        while True:
            rc = fn(self._handle, *args)
            if rc != -errno.EAGAIN:
                break
            lib().rollout_flush(self._handle)
            rc = self._on_ring_full()
            if rc not in (0, -errno.ETIMEDOUT):
                break
        if rc:
            raise self._fail(rc, "submit")

    def _on_ring_full(self) -> int:
        # Length 0: room for the very request just refused.
        return lib().rollout_wait_space(self._handle, 0, 1000)

    def _submit_open(self, rid: int, profile: str, snapshot: Optional[str] = None, checkpoint_every: int = 0) -> None:
        o = _OpenOpts(profile.encode(), snapshot.encode() if snapshot else None, None, 0, checkpoint_every)
        self._submit(lib().rollout_open_ex, rid, ctypes.byref(o), 0)

    def _submit_snapshot(self, rid: int, sandbox: int, checkpoint: bool) -> None:
        self._submit(lib().rollout_snapshot, rid, sandbox, checkpoint)

    def _record(self, sandbox: int, rid: int, action: str, description: str) -> None:
        sb = self._sandboxes.get(sandbox)
        if sb is not None:
            sb.steps.append(Step(rid, action, description))

    def _resume_args(self, lost_or_sandbox) -> Tuple["_SandboxBase", str, int]:
        if isinstance(lost_or_sandbox, SandboxLostError):
            sb = lost_or_sandbox.sandbox
            if sb is None:
                if not lost_or_sandbox.checkpoint:
                    raise RolloutError("the lost sandbox had no checkpoint", Status.NOT_FOUND)
                raise RolloutError("the error names no sandbox: open(profile, snapshot=e.checkpoint) "
                                   "instead", Status.BAD_REQUEST)
            ckpt, rid = sb._resume_point(lost_or_sandbox)
        else:
            sb = lost_or_sandbox
            ckpt, rid = sb._resume_point()
        return sb, ckpt, rid

    def _submit_exec(self, rid: int, sandbox: int, cmd: Command, stdin: Optional[bytes],
                     env: Optional[Dict[str, str]], cwd: Optional[str], timeout: Optional[float],
                     output_cap: Optional[int], stream: bool = False) -> None:
        keep: List[object] = []
        e = _Exec()
        if isinstance(cmd, str):
            e.shell = cmd.encode()
        else:
            args = [a.encode() for a in cmd] + [None]
            arr = (ctypes.c_char_p * len(args))(*args)
            keep.append(arr)
            e.argv = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
        if stdin:
            buf = ctypes.create_string_buffer(stdin, len(stdin))
            keep.append(buf)
            e.stdin_data = ctypes.cast(buf, ctypes.c_void_p)
            e.stdin_len = len(stdin)
        if env:
            envs = (_Env * len(env))(*[_Env(k.encode(), v.encode()) for k, v in env.items()])
            keep.append(envs)
            e.env = envs
            e.env_len = len(env)
        if cwd:
            e.cwd = cwd.encode()
        e.timeout_ms = int(timeout * 1000) if timeout else 0
        e.output_cap = output_cap or 0
        e.flags = EXEC_STREAM if stream else 0
        self._submit(lib().rollout_exec, rid, sandbox, ctypes.byref(e), 0)
        self._record(sandbox, rid, "exec", _describe(cmd))

    def _submit_put(self, rid: int, sandbox: int, path: str, data: bytes, mode: int) -> None:
        self._submit(lib().rollout_put_file, rid, sandbox, path.encode(), data, len(data), mode)
        self._record(sandbox, rid, "put_file", f"{path} ({len(data)} bytes, mode {mode:o})")

    def _submit_get(self, rid: int, sandbox: int, path: str, max_bytes: int) -> None:
        self._submit(lib().rollout_get_file, rid, sandbox, path.encode(), max_bytes)

    def _submit_close(self, rid: int, sandbox: int) -> None:
        self._submit(lib().rollout_close, rid, sandbox)

    def _submit_signal(self, rid: int, sandbox: int, target: int, signo: int) -> None:
        self._submit(lib().rollout_signal, rid, sandbox, target, signo)

    def _drain(self) -> List[Result]:
        """Takes every completion waiting in the ring (results copied out)."""
        out = []
        c = _Completion()
        while True:
            n = lib().rollout_next(self._handle, ctypes.byref(c))
            if n < 0:
                raise self._fail(n, "reading completions")
            if n == 0:
                return out
            r = _result(c)
            out.append((c.request_id, r))

    def fileno(self) -> int:
        """The fd that becomes readable when completions may be waiting."""
        return lib().rollout_fd(self._handle)

    def _disconnect(self) -> None:
        if self._handle:
            lib().rollout_disconnect(self._handle)
            self._handle = ctypes.c_void_p()


# ---------------------------------------------------------------- blocking API

class Client(_Core):
    """A blocking client: each call waits for its own completion."""

    def __init__(self, socket: Optional[str] = None, gpu: int = -1, name: str = "python"):
        super().__init__(socket, gpu, name)
        self._done: Dict[int, Result] = {}
        self._on_output: Dict[int, "_Chunks"] = {}

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Detaches; rolloutd closes the sandboxes still open."""
        self._disconnect()

    def _wait(self, rid: int, timeout: Optional[float] = None) -> Result:
        self._check_lost()
        lib().rollout_flush(self._handle)
        while rid not in self._done:
            for k, r in self._drain():
                chunks = self._on_output.get(k)
                if chunks is not None:
                    if r.partial:
                        chunks.feed(r)
                        continue
                    del self._on_output[k]
                    chunks.finish(r)
                if not r.partial:
                    self._done[k] = r
            if rid in self._done:
                break
            rc = lib().rollout_wait(self._handle, int(timeout * 1000) if timeout else -1)
            if rc:
                raise self._fail(rc, "waiting for rolloutd")
        return self._done.pop(rid)

    def _wait_view(self, rid: int) -> Result:
        """Like _wait, but the result's stdout/stderr/data are memoryviews over the completion
        record itself (no copy), valid until the next call on this client."""
        if rid in self._done:
            return self._done.pop(rid)
        self._check_lost()
        lib().rollout_flush(self._handle)
        c = _Completion()
        while True:
            n = lib().rollout_next(self._handle, ctypes.byref(c))
            if n < 0:
                raise self._fail(n, "reading completions")
            if n == 1 and c.partial:
                continue  # exec_view never asks for streamed output
            if n == 1 and c.request_id == rid:
                def view(ptr, size):
                    return memoryview((ctypes.c_char * size).from_address(ptr)).cast("B") if ptr and size \
                        else memoryview(b"")
                r = _result(_Completion())  # an empty shell; fields filled below without copies
                r.status, r.exit_code, r.signal = c.status, c.exit_code, c.signal
                r.stdout, r.stderr, r.data = view(c.stdout_data, c.stdout_len), view(c.stderr_data, c.stderr_len), \
                    view(c.file_data, c.file_len)
                r.stdout_truncated, r.stderr_truncated, r.data_truncated = c.stdout_truncated, c.stderr_truncated, \
                    c.file_truncated
                r.wall_us, r.cpu_us, r.peak_memory_kib, r.sandbox = c.wall_us, c.cpu_us, c.peak_memory_kib, c.sandbox
                r.message = c.message.decode(errors="replace") if c.message else ""
                r.infra_failed = c.infra_failed
                r.checkpoint = c.checkpoint.decode() if c.checkpoint else None
                r.checkpoint_request_id = c.checkpoint_request_id
                return r
            if n == 1:
                self._done[c.request_id] = _result(c)
                continue
            rc = lib().rollout_wait(self._handle, -1)
            if rc:
                raise self._fail(rc, "waiting for rolloutd")

    def open(self, profile: str = "default", snapshot: Optional[str] = None, checkpoint_every: int = 0) -> "Sandbox":
        """A new sandbox of the profile. snapshot: start from that snapshot (an id from
        Sandbox.snapshot() or a checkpoint) instead of the bare image; the profile must be
        the one the snapshot was taken with. checkpoint_every: the pool checkpoints the
        sandbox after every N successful exec/put_file steps (0: only on snapshot(True))."""
        rid = self._id()
        self._submit_open(rid, profile, snapshot, checkpoint_every)
        r = _raise_for(self._wait(rid), f"open {profile}" + (f" from {snapshot}" if snapshot else ""))
        return Sandbox(self, r.sandbox, profile, snapshot, checkpoint_every)

    def group(self, profile: str, n: int, snapshot: Optional[str] = None, checkpoint_every: int = 0) -> "Group":
        """n sandboxes of one profile (a GRPO group), closed together; see Group. With
        snapshot, all n start from it."""
        return Group(self, profile, n, snapshot, checkpoint_every)

    def _open_many(self, profile: str, n: int, snapshot: Optional[str], checkpoint_every: int) -> List["Sandbox"]:
        # Pipelined: all n opens are submitted before the first is waited for. On a failure
        # the ones that opened are closed again and the first error is raised.
        ids = [self._id() for _ in range(n)]
        for rid in ids:
            self._submit_open(rid, profile, snapshot, checkpoint_every)
        out: List[Sandbox] = []
        error: Optional[RolloutError] = None
        for rid in ids:
            r = self._wait(rid)
            if r.status == Status.OK:
                out.append(Sandbox(self, r.sandbox, profile, snapshot, checkpoint_every))
            elif error is None:
                try:
                    _raise_for(r, f"open {profile}" + (f" from {snapshot}" if snapshot else ""))
                except RolloutError as e:
                    error = e
        if error is not None:
            for sb in out:
                try:
                    sb.close()
                except RolloutError:
                    pass
            raise error
        return out

    def fork(self, source: Union["Sandbox", str], n: int, profile: Optional[str] = None,
             checkpoint_every: Optional[int] = None) -> List["Sandbox"]:
        """n new sandboxes with the files of source: a Sandbox (snapshotted once, here) or a
        snapshot id. profile: the source sandbox's, else "default" (a snapshot opens only on
        the profile it was taken with); checkpoint_every: the source sandbox's, else 0. The
        opens are pipelined; if one fails, the others are closed and its error raised."""
        if isinstance(source, Sandbox):
            snap = source.snapshot()
            profile = profile or source.profile
            every = source.checkpoint_every if checkpoint_every is None else checkpoint_every
        else:
            snap, profile, every = source, profile or "default", checkpoint_every or 0
        return self._open_many(profile, n, snap, every)

    def resume(self, lost_or_sandbox: Union[SandboxLostError, "Sandbox"]) -> Tuple["Sandbox", List[Step]]:
        """Continues a lost sandbox's task: opens a sandbox of the same profile (and
        checkpoint_every) from its checkpoint (the SandboxLostError's, else the latest one the
        sandbox saw, else the snapshot it was opened from) and returns it with the steps
        submitted after the checkpoint, in order: they are not in the new sandbox, and
        nothing re-runs them (redo them, or not). The lost sandbox is closed. Raises
        RolloutError (NOT_FOUND) when there is no checkpoint."""
        old, ckpt, rid = self._resume_args(lost_or_sandbox)
        new = self.open(old.profile, snapshot=ckpt, checkpoint_every=old.checkpoint_every)
        if not old.closed:
            try:
                old.close()  # rolloutd keeps a lost sandbox's checkpoint until it is closed
            except RolloutError:
                pass
        return new, old.steps_after(rid)


class Sandbox(_SandboxBase):
    """A sandbox owned by a blocking Client. State (files, cwd) persists across calls.

    profile: its profile; origin: the snapshot it was opened from (or None); steps: the
    exec and put_file steps submitted on it, in order (Step); checkpoint and
    checkpoint_request_id: the latest checkpoint a completion named (or None)."""

    def exec(self, cmd: Command, stdin: Optional[bytes] = None, env: Optional[Dict[str, str]] = None,
             cwd: Optional[str] = None, timeout: Optional[float] = None, output_cap: Optional[int] = None,
             check_status: bool = True, on_output: Optional[Callable[[str, bytes], None]] = None) -> Result:
        """Runs a shell string or an argv list. Raises RolloutError when the status is not OK
        (TIMEOUT, SANDBOX_LOST, ...) unless check_status is False; a non-zero exit code is
        not an error (see Result.exit_code). With on_output, output is streamed while the
        command runs: on_output("stdout" or "stderr", bytes) is called in order with every
        byte the result holds, before exec returns."""
        rid = self.client._id()
        self.client._submit_exec(rid, self.id, cmd, stdin, env, cwd, timeout, output_cap, on_output is not None)
        if on_output is not None:
            self.client._on_output[rid] = _Chunks(lambda item: on_output(*item))
        try:
            r = self.client._wait(rid)
        finally:
            self.client._on_output.pop(rid, None)
        if not check_status:
            self._take(r)
            return r
        return _raise_for(r, "exec", self)

    def exec_view(self, cmd: Command, **kw) -> Result:
        """exec() without copying the output: stdout and stderr are memoryviews over the
        completion record in shared memory, valid until the next call on this client (copy
        them with bytes(...) to keep them)."""
        rid = self.client._id()
        self.client._submit_exec(rid, self.id, cmd, kw.get("stdin"), kw.get("env"), kw.get("cwd"),
                                 kw.get("timeout"), kw.get("output_cap"))
        return _raise_for(self.client._wait_view(rid), "exec", self)

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        rid = self.client._id()
        self.client._submit_put(rid, self.id, path, data, mode)
        _raise_for(self.client._wait(rid), f"put {path}", self)

    def get_file(self, path: str, max_bytes: int = 0) -> bytes:
        rid = self.client._id()
        self.client._submit_get(rid, self.id, path, max_bytes)
        return _raise_for(self.client._wait(rid), f"get {path}", self).data

    def snapshot(self, checkpoint: bool = False) -> str:
        """Captures the sandbox's files (its writable root: files, deletions, modes, links;
        not processes) into the pool's snapshot store, the sandbox frozen meanwhile, and
        returns the snapshot's id: open sandboxes from it with client.open(profile,
        snapshot=id) or client.fork. With checkpoint=True it also becomes this sandbox's
        checkpoint (see Client.resume). Needs an image profile."""
        rid = self.client._id()
        self.client._submit_snapshot(rid, self.id, checkpoint)
        r = _raise_for(self.client._wait(rid), "snapshot", self)
        if not r.snapshot:
            raise RolloutError("snapshot: the answer names no snapshot", Status.INTERNAL, True)
        return r.snapshot

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        rid = self.client._id()
        self.client._submit_close(rid, self.id)
        self.client._wait(rid)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Group:
    """n sandboxes of one profile for a GRPO-style group: the same or different commands run
    across all of them at once; every sandbox is closed on exit, also when one failed. With
    snapshot, every member starts from it (e.g. ``client.group(sb.profile, 8,
    snapshot=sb.snapshot())``)."""

    def __init__(self, client: Client, profile: str, n: int, snapshot: Optional[str] = None,
                 checkpoint_every: int = 0):
        self.client, self.profile, self.n = client, profile, n
        self.snapshot, self.checkpoint_every = snapshot, checkpoint_every
        self.sandboxes: List[Sandbox] = []

    def __enter__(self) -> "Group":
        self.sandboxes = self.client._open_many(self.profile, self.n, self.snapshot, self.checkpoint_every)
        return self

    def exec_all(self, cmd: Command, **kw) -> List[Result]:
        """The same command in every sandbox, pipelined; results in sandbox order. Statuses
        are not raised: look at each Result."""
        return self.exec_each([cmd] * len(self.sandboxes), **kw)

    def exec_each(self, cmds: Sequence[Command], **kw) -> List[Result]:
        """One command per sandbox (len(cmds) == n), pipelined; results in sandbox order."""
        if len(cmds) != len(self.sandboxes):
            raise ValueError(f"{len(cmds)} commands for {len(self.sandboxes)} sandboxes")
        rids = []
        for sb, cmd in zip(self.sandboxes, cmds):
            rid = self.client._id()
            self.client._submit_exec(rid, sb.id, cmd, kw.get("stdin"), kw.get("env"), kw.get("cwd"),
                                     kw.get("timeout"), kw.get("output_cap"))
            rids.append(rid)
        results = [self.client._wait(rid) for rid in rids]
        for sb, r in zip(self.sandboxes, results):
            sb._take(r)
        return results

    def __exit__(self, *exc) -> None:
        for sb in self.sandboxes:
            try:
                sb.close()
            except RolloutError:
                pass
        self.sandboxes = []


# ---------------------------------------------------------------- asyncio API

class AsyncClient(_Core):
    """An asyncio client: completions are read when the client's fd becomes readable in the
    running event loop and resolve the futures of their requests. Many thousands of
    coroutines may share one client.

    rolloutd's liveness is watched too (its attach socket in the loop, and a check every
    LIVENESS_S): when it dies or shuts down, every pending request fails with
    RolloutConnectionError within about a second instead of waiting forever."""

    LIVENESS_S = 0.25

    def __init__(self, socket: Optional[str] = None, gpu: int = -1, name: str = "python-async"):
        super().__init__(socket, gpu, name)
        self._futures: Dict[int, asyncio.Future] = {}
        self._streams: Dict[int, "_Chunks"] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._flush_scheduled = False
        self._readers: List[int] = []
        self._tick: Optional[asyncio.TimerHandle] = None

    async def __aenter__(self) -> "AsyncClient":
        self._attach()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def _attach(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._check_lost()
            fd, peer = self.fileno(), lib().rollout_peer_fd(self._handle)
            self._loop.add_reader(fd, self._on_readable)
            self._readers.append(fd)
            self._loop.add_reader(peer, self._on_peer)
            self._readers.append(peer)
            self._tick = self._loop.call_later(self.LIVENESS_S, self._on_tick)
            self._arm()

    def _unwatch(self) -> None:
        for fd in self._readers:
            self._loop.remove_reader(fd)
        self._readers = []
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def _arm(self) -> None:
        # Announce the sleep; if completions slipped in meanwhile, take them now.
        while self._lost is None:
            rc = lib().rollout_arm(self._handle)
            if rc == 0:
                return
            if rc != -errno.EAGAIN:
                self._fail(rc, "waiting for completions", final=True)
                return
            self._dispatch()

    def _dispatch(self) -> None:
        try:
            done = self._drain()
        except RolloutError as e:
            # Which request a bad record answered is unknown, so its future would wait
            # forever: the connection ends here.
            self._end(e)
            return
        for rid, r in done:
            chunks = self._streams.get(rid)
            if r.partial:
                if chunks is not None:
                    chunks.feed(r)
                continue
            if chunks is not None:
                del self._streams[rid]
                chunks.finish(r)
            fut = self._futures.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(r)

    def _on_readable(self) -> None:
        self._dispatch()
        self._arm()

    def _liveness(self) -> int:
        rc = lib().rollout_check(self._handle)
        if rc:
            self._fail(rc, "rolloutd", final=True)
        return rc

    def _on_peer(self) -> None:
        # The attach socket is readable: rolloutd closed it (died), or, unexpectedly, sent
        # something. In the second case stop watching it (it would stay readable); the
        # periodic check still runs.
        if self._liveness() == 0:
            peer = lib().rollout_peer_fd(self._handle)
            self._loop.remove_reader(peer)
            self._readers.remove(peer)

    def _on_tick(self) -> None:
        self._tick = None
        if self._liveness() == 0:
            self._tick = self._loop.call_later(self.LIVENESS_S, self._on_tick)

    def _connection_lost(self, e: RolloutError) -> None:
        # Completions rolloutd wrote before it went are still delivered; then every request
        # left fails with e (and later ones at once, see _check_lost).
        if self._loop is None:
            return
        self._unwatch()
        self._dispatch()
        futures, self._futures = self._futures, {}
        for fut in futures.values():
            if not fut.done():
                fut.set_exception(e._again())
        streams, self._streams = self._streams, {}
        for chunks in streams.values():
            chunks.fail(e._again())

    def _on_ring_full(self) -> int:
        # The ring is full: completions must be read for rolloutd to make room.
        self._dispatch()
        return lib().rollout_wait_space(self._handle, 0, 100)

    def _schedule_flush(self) -> None:
        # Batch: every request submitted in this turn of the loop becomes visible at once.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._handle and self._lost is None:
            lib().rollout_flush(self._handle)

    def _start(self, submit, *args) -> Tuple[int, "asyncio.Future[Result]"]:
        self._attach()
        self._check_lost()
        rid = self._id()
        fut = self._loop.create_future()
        self._futures[rid] = fut
        try:
            submit(rid, *args)
        except BaseException:
            self._futures.pop(rid, None)
            raise
        self._schedule_flush()
        return rid, fut

    async def _request(self, submit, *args) -> Result:
        rid, fut = self._start(submit, *args)
        try:
            return await fut
        except asyncio.CancelledError:
            # The request still completes at rolloutd; its result is dropped when it arrives.
            self._futures.pop(rid, None)
            raise

    async def open(self, profile: str = "default", snapshot: Optional[str] = None,
                   checkpoint_every: int = 0) -> "AsyncSandbox":
        """See Client.open."""
        r = _raise_for(await self._request(self._submit_open, profile, snapshot, checkpoint_every),
                       f"open {profile}" + (f" from {snapshot}" if snapshot else ""))
        return AsyncSandbox(self, r.sandbox, profile, snapshot, checkpoint_every)

    def group(self, profile: str, n: int, snapshot: Optional[str] = None, checkpoint_every: int = 0) -> "AsyncGroup":
        """See Client.group: ``async with client.group(profile, n) as g:``."""
        return AsyncGroup(self, profile, n, snapshot, checkpoint_every)

    async def _open_many(self, profile: str, n: int, snapshot: Optional[str],
                         checkpoint_every: int) -> List["AsyncSandbox"]:
        # All at once; on a failure the ones that opened are closed and the first error raised.
        results = await asyncio.gather(*[self.open(profile, snapshot, checkpoint_every) for _ in range(n)],
                                       return_exceptions=True)
        opened = [r for r in results if isinstance(r, AsyncSandbox)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await asyncio.gather(*[sb.close() for sb in opened], return_exceptions=True)
            raise errors[0]
        return opened

    async def fork(self, source: Union["AsyncSandbox", str], n: int, profile: Optional[str] = None,
                   checkpoint_every: Optional[int] = None) -> List["AsyncSandbox"]:
        """See Client.fork; the n opens run concurrently."""
        if isinstance(source, AsyncSandbox):
            snap = await source.snapshot()
            profile = profile or source.profile
            every = source.checkpoint_every if checkpoint_every is None else checkpoint_every
        else:
            snap, profile, every = source, profile or "default", checkpoint_every or 0
        return await self._open_many(profile, n, snap, every)

    async def resume(self, lost_or_sandbox: Union[SandboxLostError, "AsyncSandbox"]
                     ) -> Tuple["AsyncSandbox", List[Step]]:
        """See Client.resume."""
        old, ckpt, rid = self._resume_args(lost_or_sandbox)
        new = await self.open(old.profile, snapshot=ckpt, checkpoint_every=old.checkpoint_every)
        if not old.closed:
            try:
                await old.close()
            except RolloutError:
                pass
        return new, old.steps_after(rid)

    async def aclose(self) -> None:
        if self._loop is not None:
            self._unwatch()
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(RolloutError("client closed", Status.CANCELLED))
        self._futures.clear()
        self._disconnect()


class AsyncSandbox(_SandboxBase):
    """A sandbox owned by an AsyncClient (attributes as Sandbox's)."""

    def exec(self, cmd: Command, stdin: Optional[bytes] = None, env: Optional[Dict[str, str]] = None,
             cwd: Optional[str] = None, timeout: Optional[float] = None, output_cap: Optional[int] = None,
             check_status: bool = True, stream: bool = False):
        """Runs a command: ``await sb.exec(...)`` gives its Result. With stream=True the
        command is submitted at once and an ExecStream comes back, both awaitable (it gives
        itself) and async-iterable: ``async for name, data in sb.exec(cmd, stream=True)``
        yields ("stdout" | "stderr", bytes) chunks while the command runs; then
        ``await it.wait()`` (or ``it.result`` once iterated) is the Result."""
        if stream:
            c = self.client
            rid, fut = c._start(c._submit_exec, self.id, cmd, stdin, env, cwd, timeout, output_cap, True)
            it = ExecStream(self, rid, fut, check_status)
            c._streams[rid] = it._chunks
            return it
        return self._exec(cmd, stdin, env, cwd, timeout, output_cap, check_status)

    async def _exec(self, cmd, stdin, env, cwd, timeout, output_cap, check_status) -> Result:
        r = await self.client._request(self.client._submit_exec, self.id, cmd, stdin, env, cwd, timeout, output_cap)
        if not check_status:
            self._take(r)
            return r
        return _raise_for(r, "exec", self)

    async def signal(self, request_id: int = 0, signo: int = 9) -> bool:
        """Sends signo (SIGKILL by default) to the exec submitted as request_id (0: the one
        running now); a target still queued is cancelled. False when it had already ended."""
        r = await self.client._request(self.client._submit_signal, self.id, request_id, signo)
        if r.status == Status.NOT_FOUND:
            return False
        _raise_for(r, "signal", self)
        return True

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        _raise_for(await self.client._request(self.client._submit_put, self.id, path, data, mode), f"put {path}",
                   self)

    async def get_file(self, path: str, max_bytes: int = 0) -> bytes:
        r = await self.client._request(self.client._submit_get, self.id, path, max_bytes)
        return _raise_for(r, f"get {path}", self).data

    async def snapshot(self, checkpoint: bool = False) -> str:
        """See Sandbox.snapshot."""
        r = _raise_for(await self.client._request(self.client._submit_snapshot, self.id, checkpoint), "snapshot",
                       self)
        if not r.snapshot:
            raise RolloutError("snapshot: the answer names no snapshot", Status.INTERNAL, True)
        return r.snapshot

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.client._request(self.client._submit_close, self.id)

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncGroup:
    """asyncio version of Group: ``async with client.group("default", 8) as g:``."""

    def __init__(self, client: AsyncClient, profile: str, n: int, snapshot: Optional[str] = None,
                 checkpoint_every: int = 0):
        self.client, self.profile, self.n = client, profile, n
        self.snapshot, self.checkpoint_every = snapshot, checkpoint_every
        self.sandboxes: List[AsyncSandbox] = []

    async def __aenter__(self) -> "AsyncGroup":
        self.sandboxes = await self.client._open_many(self.profile, self.n, self.snapshot, self.checkpoint_every)
        return self

    async def exec_all(self, cmd: Command, **kw) -> List[Union[Result, RolloutError]]:
        """The same command in every sandbox. A member that fails gives its RolloutError in
        its place; the others still complete."""
        return await self.exec_each([cmd] * len(self.sandboxes), **kw)

    async def exec_each(self, cmds: Sequence[Command], **kw) -> List[Union[Result, RolloutError]]:
        """One command per sandbox (len(cmds) == n), all at once."""
        if len(cmds) != len(self.sandboxes):
            raise ValueError(f"{len(cmds)} commands for {len(self.sandboxes)} sandboxes")
        return await asyncio.gather(*[sb.exec(c, **kw) for sb, c in zip(self.sandboxes, cmds)],
                                    return_exceptions=True)

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*[sb.close() for sb in self.sandboxes], return_exceptions=True)
        self.sandboxes = []


class _Chunks:
    """Streamed output put in order: partial results are taken when they continue their
    stream where the last one ended; after a gap (a record dropped because the trainer was
    behind) the rest comes from the final result, which holds everything."""

    def __init__(self, put: Callable[[object], None]):
        self._put = put
        self._got = {"stdout": 0, "stderr": 0}
        self.done = False

    def feed(self, r: Result) -> None:
        for name, off, data in (("stdout", r.stdout_offset, r.stdout), ("stderr", r.stderr_offset, r.stderr)):
            if data and off == self._got[name]:
                self._got[name] += len(data)
                self._put((name, bytes(data)))

    def finish(self, r: Result) -> None:
        for name, full in (("stdout", r.stdout), ("stderr", r.stderr)):
            if len(full) > self._got[name]:
                self._put((name, bytes(full[self._got[name]:])))
                self._got[name] = len(full)
        self.done = True

    def fail(self, e: BaseException) -> None:
        self.done = True


class ExecStream:
    """A running exec whose output is streamed (AsyncSandbox.exec(..., stream=True)).
    ``async for name, data in it`` yields ("stdout" | "stderr", bytes) in order until the
    command ends; ``await it.wait()`` gives its Result; ``await it.kill()`` stops it."""

    def __init__(self, sandbox: "AsyncSandbox", request_id: int, fut: "asyncio.Future[Result]",
                 check_status: bool):
        self.sandbox, self.request_id = sandbox, request_id
        self._fut, self._check = fut, check_status
        self._queue: "asyncio.Queue[object]" = asyncio.Queue()
        self._chunks = _Chunks(self._queue.put_nowait)
        self._ended = False
        self.result: Optional[Result] = None

    def __aiter__(self) -> "ExecStream":
        return self

    def __await__(self):
        # ``it = await sb.exec(cmd, stream=True)``: the stream itself.
        if False:
            yield
        return self

    async def __anext__(self) -> Tuple[str, bytes]:
        while True:
            if not self._queue.empty():
                return self._queue.get_nowait()
            if self._ended:
                raise StopAsyncIteration
            getter = asyncio.ensure_future(self._queue.get())
            await asyncio.wait([getter, self._fut], return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                return getter.result()
            getter.cancel()
            self._ended = True  # the completion came: what is queued is the rest
            if self._fut.exception() is not None and self._queue.empty():
                raise self._fut.exception()
            if self._fut.exception() is None:
                self.result = self._fut.result()

    async def wait(self) -> Result:
        r = await asyncio.shield(self._fut)
        self.result = r
        if not self._check:
            self.sandbox._take(r)
            return r
        return _raise_for(r, "exec", self.sandbox)

    async def signal(self, signo: int) -> bool:
        """Sends signo to the command; False when it had already ended."""
        return await self.sandbox.signal(self.request_id, signo)

    async def kill(self) -> bool:
        return await self.signal(9)
