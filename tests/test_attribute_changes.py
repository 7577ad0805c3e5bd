"""chmod, chown, utime, truncate and os.open inside a workload, held against the kernel.

Each case is one file, directory or symlink below ``/opt`` and one call made
on it as cdsw. The same tree is built twice: for real, under a temporary
directory the test removes, where a forked child chroots into it and drops
to uid/gid 8536 with no supplementary groups; and as a runtime image a
workload starts in. Each call's outcome (``ok`` or its errno) and every
entry's mode, owner, group, size and whether its mtime was set must agree.
"""

# The calls under test are os.* on purpose.
# ruff: noqa: PTH101, S103, PLW0108 - os.* looked up at call time, inside the workload

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from addon_mount import RuntimeImage, testing
from addon_mount._builders import write_bundle
from addon_mount._runtime import Entry

from .conftest import needs_root

CDSW = 8536
ANCHOR = "/opt/anchor"  # root's file the symlink cases point at
Spec = tuple[Any, ...]  # (type, mode, uid, gid[, symlink target])


def _ftruncate_read_only(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _create(path: str) -> None:
    os.close(os.open(f"{path}/new", os.O_CREAT | os.O_WRONLY, 0o666))


CASES: dict[str, tuple[Spec, Callable[[str], object]]] = {
    "chmod another's file": (("f", 0o644, 0, 0), lambda p: os.chmod(p, 0o777)),
    "chmod own file": (("f", 0o644, CDSW, CDSW), lambda p: os.chmod(p, 0o600)),
    "chmod own file setgid, own group": (("f", 0o644, CDSW, CDSW), lambda p: os.chmod(p, 0o2755)),
    "chmod own file setgid, root's group": (("f", 0o644, CDSW, 0), lambda p: os.chmod(p, 0o2755)),
    "chmod own directory setgid, root's group": (
        ("d", 0o755, CDSW, 0),
        lambda p: os.chmod(p, 0o2775),
    ),
    "chmod through own symlink": (("l", 0o777, CDSW, CDSW, ANCHOR), lambda p: os.chmod(p, 0o600)),
    "chown -1 -1, another's file": (("f", 0o644, 0, 0), lambda p: os.chown(p, -1, -1)),
    "chown -1 -1, another's setuid file": (("f", 0o4755, 0, 0), lambda p: os.chown(p, -1, -1)),
    "chown another's file to cdsw": (("f", 0o644, 0, 0), lambda p: os.chown(p, CDSW, -1)),
    "chown own file to root": (("f", 0o644, CDSW, CDSW), lambda p: os.chown(p, 0, -1)),
    "chgrp own file to root": (("f", 0o644, CDSW, CDSW), lambda p: os.chown(p, -1, 0)),
    "chown own file to itself": (("f", 0o644, CDSW, CDSW), lambda p: os.chown(p, CDSW, CDSW)),
    "chgrp own file back to cdsw": (("f", 0o644, CDSW, 0), lambda p: os.chown(p, -1, CDSW)),
    "chown own setuid setgid file": (
        ("f", 0o6755, CDSW, CDSW),
        lambda p: os.chown(p, CDSW, CDSW),
    ),
    "chown own setgid file without group x": (
        ("f", 0o2644, CDSW, 0),
        lambda p: os.chown(p, -1, -1),
    ),
    "chgrp own setgid directory": (("d", 0o2755, CDSW, CDSW), lambda p: os.chown(p, -1, CDSW)),
    "lchown own symlink": (("l", 0o777, CDSW, 0, ANCHOR), lambda p: os.lchown(p, -1, CDSW)),
    "lchown another's symlink": (("l", 0o777, 0, 0, ANCHOR), lambda p: os.lchown(p, -1, CDSW)),
    "chown through own symlink": (
        ("l", 0o777, CDSW, CDSW, ANCHOR),
        lambda p: os.chown(p, CDSW, -1),
    ),
    "utime given times, another's writable file": (
        ("f", 0o666, 0, 0),
        lambda p: os.utime(p, (1, 1)),
    ),
    "utime now, another's writable file": (("f", 0o666, 0, 0), lambda p: os.utime(p)),
    "utime now, another's read-only file": (("f", 0o644, 0, 0), lambda p: os.utime(p)),
    "utime given times, own read-only file": (
        ("f", 0o444, CDSW, CDSW),
        lambda p: os.utime(p, (1, 1)),
    ),
    "truncate another's read-only file": (("f", 0o644, 0, 0), lambda p: os.truncate(p, 1)),
    "truncate another's writable file": (("f", 0o666, 0, 0), lambda p: os.truncate(p, 1)),
    "truncate another's writable setuid file": (("f", 0o6777, 0, 0), lambda p: os.truncate(p, 1)),
    "truncate a directory": (("d", 0o777, CDSW, CDSW), lambda p: os.truncate(p, 0)),
    "truncate to a negative length": (("f", 0o666, CDSW, CDSW), lambda p: os.truncate(p, -1)),
    "ftruncate a file open for reading": (("f", 0o644, CDSW, CDSW), _ftruncate_read_only),
    "os.open of another's file leaves its mode": (
        ("f", 0o644, 0, 0),
        lambda p: os.close(os.open(p, os.O_RDONLY)),
    ),
    "os.open creates with the umask": (("d", 0o755, CDSW, CDSW), _create),
}
NAMES = {case: f"/opt/c{i}" for i, case in enumerate(CASES)}
UMASK = 0o022


def _paths() -> list[str]:
    """Every path whose state is compared: the anchor, each case's, and what one creates."""
    return [ANCHOR, *NAMES.values(), f"{NAMES['os.open creates with the umask']}/new"]


def _outcome(call: Callable[[str], object], path: str) -> str:
    try:
        call(path)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _state(path: str) -> list[int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return [st.st_mode, st.st_uid, st.st_gid, size, int(st.st_mtime == 1)]


def _replay() -> dict[str, str]:
    os.umask(UMASK)
    return {case: _outcome(call, NAMES[case]) for case, (_, call) in CASES.items()}


# -- the kernel -------------------------------------------------------------------------


def _build_real(root: Path) -> None:
    def make(path: str, spec: Spec) -> None:
        real = root / path.lstrip("/")
        kind, mode, uid, gid = spec[:4]
        if kind == "d":
            real.mkdir()
        elif kind == "f":
            real.write_bytes(b"")
        else:
            real.symlink_to(spec[4])
        os.lchown(real, uid, gid)
        if kind != "l":
            os.chmod(real, mode)

    root.chmod(0o755)
    make("/opt", ("d", 0o755, 0, 0))
    make(ANCHOR, ("f", 0o644, 0, 0))
    for case, (spec, _) in CASES.items():
        make(NAMES[case], spec)


def _kernel() -> tuple[dict[str, str], dict[str, list[int] | None]]:
    root = Path(tempfile.mkdtemp(prefix="addon-mount-attributes-"))
    try:
        _build_real(root)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(read)
                os.chroot(root)
                os.chdir("/")
                os.setgroups([])
                os.setgid(CDSW)
                os.setuid(CDSW)
                os.write(write, json.dumps(_replay()).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read()
        os.waitpid(pid, 0)
        states = {path: _state(str(root / path.lstrip("/"))) for path in _paths()}
        return json.loads(answer), states
    finally:
        shutil.rmtree(root)


# -- the workload -----------------------------------------------------------------------


def _image() -> RuntimeImage:
    entries = [
        Entry("/", "d", 0o755),
        Entry("/opt", "d", 0o755),
        Entry("/tmp", "d", 0o1777),
        Entry("/home", "d", 0o755),
        Entry("/home/cdsw", "d", 0o755, CDSW, CDSW),
        Entry(ANCHOR, "f", 0o644),
    ]
    for case, (spec, _) in CASES.items():
        kind, mode, uid, gid = spec[:4]
        target = spec[4] if kind == "l" else None
        entries.append(Entry(NAMES[case], kind, mode, uid, gid, target=target))
    return RuntimeImage.from_entries(entries, name="attributes")


def _workload(tmp_path: Path) -> tuple[dict[str, str], dict[str, list[int] | None]]:
    bundle = write_bundle(tmp_path / "b", "b", ["/tmp/b"], [("tmp/b", "f", 0o644, "b\n")])
    with testing.workload([bundle], _image()):
        outcomes = _replay()
        states = {path: _state(path) for path in _paths()}
    return outcomes, states


def test_attribute_changes_agree_with_the_kernel(tmp_path: Path) -> None:
    """Who may chmod, chown, utime, truncate, and what each clears, as Linux decides it."""
    needs_root("building a tree with root's and cdsw's files, then chroot and setuid")
    real_outcomes, real_states = _kernel()
    fake_outcomes, fake_states = _workload(tmp_path)
    outcome_diff = {
        case: (real_outcomes[case], fake_outcomes[case])
        for case in CASES
        if real_outcomes[case] != fake_outcomes[case]
    }
    assert outcome_diff == {}, "(kernel, workload) outcomes"
    state_diff = {
        path: (real_states[path], fake_states[path])
        for path in _paths()
        if real_states[path] != fake_states[path]
    }
    assert state_diff == {}, "(kernel, workload) [mode, uid, gid, size, mtime set]"


def test_what_the_kernel_refuses_cdsw(tmp_path: Path) -> None:
    """The workload's own verdicts on the cases that matter most, without the kernel."""
    outcomes, states = _workload(tmp_path)
    assert outcomes["chmod another's file"] == "EPERM"
    assert outcomes["chown own file to root"] == "EPERM"
    assert outcomes["utime now, another's read-only file"] == "EACCES"
    assert outcomes["truncate another's read-only file"] == "EACCES"
    assert outcomes["lchown own symlink"] == "ok"
    assert states[NAMES["truncate another's writable file"]] == [0o100666, 0, 0, 1, 0]
    assert states[NAMES["chown own setuid setgid file"]] == [0o100755, CDSW, CDSW, 0, 0]
    assert states[f"{NAMES['os.open creates with the umask']}/new"] == [0o100644, CDSW, CDSW, 0, 0]
    assert states[NAMES["os.open of another's file leaves its mode"]] == [0o100644, 0, 0, 0, 0]
