"""The binding's hand-written mirrors against their one source: the ctypes structs against
the layout the compiler gives include/rollout/rollout.h (printed by rollout_abi_dump), the
Status values against enum Status of wire/rollout.fbs, and Err against ROLLOUT_ERRNO_MAP of
include/rollout/error.h. A drift fails here instead of corrupting memory or mislabelling an
error. Needs no daemons."""
import ctypes
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import rollout

SOURCE = Path(os.environ.get("ROLLOUT_SOURCE_DIR", Path(__file__).resolve().parents[3]))

MIRRORS = {
    "rollout_connect_opts": rollout._ConnectOpts,
    "rollout_env": rollout._Env,
    "rollout_exec": rollout._Exec,
    "rollout_open_opts": rollout._OpenOpts,
    "rollout_completion": rollout._Completion,
}


def _dump_path() -> str:
    explicit = os.environ.get("ROLLOUT_ABI_DUMP")
    if explicit:
        return explicit
    lib = os.environ.get("ROLLOUT_LIBRARY")
    guess = Path(lib).parent / "rollout_abi_dump" if lib else \
        Path(os.environ.get("ROLLOUT_BINARY_DIR", "build")) / "client" / "rollout_abi_dump"
    if not guess.exists():
        pytest.skip("rollout_abi_dump not built (set ROLLOUT_ABI_DUMP)")
    return str(guess)


@pytest.fixture(scope="module")
def abi():
    return json.loads(subprocess.run([_dump_path()], check=True, capture_output=True, text=True).stdout)


def _header_fields(struct: str) -> list:
    """Field names of `struct NAME { ... };` in rollout.h, in order."""
    text = (SOURCE / "include" / "rollout" / "rollout.h").read_text()
    body = re.search(r"struct %s \{(.*?)\};" % struct, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = []
    for decl in filter(None, (d.strip() for d in body.split(";"))):
        # "const char *name, *value" -> name, value: the identifier ending each declarator.
        for declarator in decl.split(","):
            names.append(re.findall(r"[A-Za-z_]\w*", declarator)[-1])
    return names


@pytest.mark.parametrize("struct", sorted(MIRRORS))
def test_struct_layout_matches_header(abi, struct):
    mirror, c = MIRRORS[struct], abi["structs"][struct]
    # The dump lists every field the header declares, the mirror every field the dump lists.
    assert list(c["fields"]) == _header_fields(struct)
    assert [f for f, _ in mirror._fields_] == list(c["fields"])
    got = {f: [getattr(mirror, f).offset, getattr(mirror, f).size] for f, _ in mirror._fields_}
    assert got == c["fields"]
    assert ctypes.sizeof(mirror) == c["size"]


def test_status_matches_schema():
    text = (SOURCE / "wire" / "rollout.fbs").read_text()
    body = re.search(r"enum Status\s*:\s*\w+\s*\{(.*?)\}", text, re.S).group(1)
    body = re.sub(r"//[^\n]*", "", body)
    schema = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+)\s*=\s*(\d+)", body)}
    assert len(schema) >= 16
    mirror = {k: v for k, v in vars(rollout.Status).items() if k.isupper()}
    assert mirror == schema
    for name, value in schema.items():  # and the library's generated names agree
        assert rollout.status_name(value) == name


def test_error_codes_match_header(abi):
    mirror = {k: v for k, v in vars(rollout.Err).items() if k.startswith("E_")}
    assert mirror == abi["errors"]
    text = (SOURCE / "include" / "rollout" / "error.h").read_text()
    assert {m.group(1): int(m.group(2)) for m in re.finditer(r"X\((E_\w+),\s*(-\d+),", text)} == mirror
    # Each code is classified on purpose, and librollout names it the same way.
    for name, code in mirror.items():
        assert code in rollout._CODE_STATUS, name
        assert rollout._err_name(code) == "ROLLOUT_" + name


def test_errors_map_to_status():
    e = rollout._error(rollout.Err.E_PEER_DEAD, "x")
    assert isinstance(e, rollout.RolloutConnectionError) and isinstance(e, ConnectionError)
    assert (e.status, e.infra_failed, e.code, e.errno) == (rollout.Status.UNAVAILABLE, True, -1002, None)
    e = rollout._error(rollout.Err.E_SHUTDOWN, "x")
    assert isinstance(e, rollout.RolloutConnectionError) and e.status == rollout.Status.SHUTTING_DOWN
    e = rollout._error(rollout.Err.E_TOO_BIG, "x")
    assert type(e) is rollout.RolloutError and e.status == rollout.Status.BAD_REQUEST and not e.infra_failed
    e = rollout._error(-110, "x")  # ETIMEDOUT
    assert e.status == rollout.Status.TIMEOUT and e.errno == 110 and "ETIMEDOUT" in str(e)
    e = rollout._error(-12, "x")  # ENOMEM
    assert e.status == rollout.Status.INTERNAL and e.infra_failed and e.errno == 12
