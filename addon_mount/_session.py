"""A session around a started workload: who the code under test is, and what it cannot do.

A Cloudera AI session runs its code as ``cdsw`` (uid and gid 8536) with
``HOME=/home/cdsw``. While a workload is active, :func:`enter` makes the
process answer that way: the environment's ``HOME``, ``USER``, ``LOGNAME``
and ``PATH``; ``pwd`` and ``grp`` lookups, answered from the workload's own
``/etc/passwd`` and ``/etc/group`` (which get the lines for root and cdsw
the runtime image has but its snapshot cannot record); ``os.geteuid``,
``os.getegid`` and ``os.getgroups``, as pyfakefs's ``os.getuid`` already is.
A fake filesystem cannot run programs, so every way of starting one raises
:class:`CannotRunProgramError`. :func:`leave` puts everything back.

Functions are replaced on the modules themselves (``pwd.getpwuid``,
``subprocess.Popen.__init__``), so ``import pwd; pwd.getpwuid(...)`` and
``from subprocess import run`` are covered; a function imported by name
before the workload started (``from os import system``) is not.
"""

from __future__ import annotations

import _io
import _posixsubprocess
import errno
import grp
import importlib.abc
import importlib.util
import io
import os
import posixpath
import pwd
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Final, NoReturn

import attrs
from pyfakefs import fake_open, helpers
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from . import _linux
from ._audit import WORKLOAD_PATH
from ._linux import objects
from ._metadata import PROJECT_VOLUME
from ._workload import CDSW_GID, CDSW_UID, ROOT_UID, running_as

#: The session's user name and the environment it runs with.
CDSW_USER: Final = "cdsw"
#: A session's PATH, as the runtime images set it.
SESSION_PATH: Final = ":".join(WORKLOAD_PATH)
ENVIRONMENT: Final = {
    "HOME": PROJECT_VOLUME,
    "USER": CDSW_USER,
    "LOGNAME": CDSW_USER,
    "PATH": SESSION_PATH,
    "PWD": PROJECT_VOLUME,
}
#: Variables of the host process a session does not have.
HOST_ONLY: Final = ("TMPDIR", "TEMP", "TMP", "OLDPWD")
USERS_FILE: Final = "/etc/passwd"
GROUPS_FILE: Final = "/etc/group"
# What every Cloudera runtime's databases hold for root and cdsw: Debian's root,
# and the Dockerfiles' `adduser --disabled-password --gecos "CDSW User"
# --uid 8536 --gid 8536 cdsw` (home /home/cdsw, adduser's default shell).
PASSWD_LINES: Final = (
    "root:x:0:0:root:/root:/bin/bash",
    f"{CDSW_USER}:x:{CDSW_UID}:{CDSW_GID}:CDSW User:{PROJECT_VOLUME}:/bin/bash",
)
GROUP_LINES: Final = ("root:x:0:", f"{CDSW_USER}:x:{CDSW_GID}:")

# The os functions that start a program or a process; subprocess (and os.popen,
# asyncio's subprocesses) end in subprocess.Popen, multiprocessing in os.fork
# or _posixsubprocess.fork_exec, pty in os.forkpty.
_OS_PROGRAM_CALLS: Final = (
    "system",
    "popen",
    "fork",
    "forkpty",
    *(f"exec{suffix}" for suffix in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    *(f"spawn{suffix}" for suffix in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    "posix_spawn",
    "posix_spawnp",
)


class HarnessError(Exception):
    """The harness was used in a way it cannot honour (the message says how to fix it)."""


class CannotRunProgramError(HarnessError):
    """Code inside a workload tried to start a program, which a fake filesystem cannot run.

    ``call`` is what was called (``subprocess.Popen``, ``os.system``...) and
    ``program`` the program or command line it was given.
    """

    def __init__(self, call: str, program: str) -> None:
        super().__init__(
            f"{call}({program}): a workload's filesystem is simulated in memory (pyfakefs), "
            "so no program can run in it, nor a process start from it. To check that a "
            "program is in place, test its file: os.access(path, os.X_OK). To test code "
            "that runs one, mock the call (unittest.mock.patch('subprocess.run'), or "
            "pytest's monkeypatch) and assert on the arguments it was given."
        )
        self.call = call
        self.program = program


class NotSimulatedError(HarnessError):
    """Code inside a workload called an ``os`` function the fake filesystem does not simulate.

    Left alone, the call would reach the real system (``os.mkfifo`` would
    make a real FIFO, ``os.pwrite`` write to whatever real file has that
    descriptor number), so it is refused. ``call`` names the function.
    """

    def __init__(self, call: str) -> None:
        super().__init__(
            f"{call}: not simulated on a workload's filesystem (pyfakefs), and it would "
            "reach the real system, so it is refused. Mock it where the code under test "
            f"needs it (unittest.mock.patch('{call}'), or pytest's monkeypatch)."
        )
        self.call = call


# All three are documented, and shown in tracebacks, as addon_mount.testing's.
HarnessError.__module__ = "addon_mount.testing"
CannotRunProgramError.__module__ = NotSimulatedError.__module__ = "addon_mount.testing"


# -- the user databases -----------------------------------------------------------


def _file(fs: FakeFilesystem, path: str) -> FakeFile | None:
    """The file at *path* in the workload (symlinks followed), or None.

    Walked as Linux walks it, so only the entries on the way are put in
    place, not every entry of ``/etc``.
    """
    try:
        obj = _linux.LinuxFS(fs, lookup=objects.lookup_child).walk(path, _linux.ROOT).obj
    except OSError:
        return None
    return None if obj is None or isinstance(obj, FakeDirectory) else obj


def _read(fs: FakeFilesystem, path: str) -> str | None:
    """The text of the file at *path* in the workload, or None when there is none."""
    obj = _file(fs, path)
    return None if obj is None else objects.byte_contents(obj).decode("utf-8", "replace")


def _rows(text: str | None, defaults: Sequence[str], fields: int) -> Iterator[list[str]]:
    """The database's well-formed rows, then each default whose name and id are not there."""
    seen_names: set[str] = set()
    seen_ids: set[str] = set()
    for line in [*(text or "").splitlines(), *defaults]:
        row = line.split(":")
        if len(row) != fields or not row[2].isdigit() or line.startswith("#"):
            continue
        if row[0] in seen_names or row[2] in seen_ids:
            continue
        seen_names.add(row[0])
        seen_ids.add(row[2])
        yield row


def complete_databases(fs: FakeFilesystem) -> None:
    """Add root's and cdsw's lines to the workload's /etc/passwd and /etc/group, where they are.

    A runtime snapshot records no contents, so the runtime's files read as
    empty; the lines the image holds for root and cdsw are added to whatever
    is there. Files the runtime does not have are not created.
    """
    with running_as(ROOT_UID, ROOT_UID):
        for path, defaults in ((USERS_FILE, PASSWD_LINES), (GROUPS_FILE, GROUP_LINES)):
            obj = _file(fs, path)
            if obj is None or objects.is_read_only(obj):
                continue
            text = objects.byte_contents(obj).decode("utf-8", "replace")
            names = {line.split(":", 1)[0] for line in text.splitlines()}
            missing = [line for line in defaults if line.split(":", 1)[0] not in names]
            if missing:
                lead = text if not text or text.endswith("\n") else text + "\n"
                obj.set_contents((lead + "".join(f"{line}\n" for line in missing)).encode())


def _passwd_functions(fs: FakeFilesystem) -> dict[str, Callable[..., Any]]:
    def entries() -> list[pwd.struct_passwd]:
        rows = _rows(_read(fs, USERS_FILE), PASSWD_LINES, 7)
        return [pwd.struct_passwd((r[0], r[1], int(r[2]), int(r[3]), *r[4:])) for r in rows]

    def getpwuid(uid: int) -> pwd.struct_passwd:
        found = next((e for e in entries() if e.pw_uid == uid), None)
        if found is None:
            raise KeyError(f"getpwuid(): uid not found: {uid}")
        return found

    def getpwnam(name: str) -> pwd.struct_passwd:
        if not isinstance(name, str):
            raise TypeError(f"getpwnam() argument must be str, not {type(name).__name__}")
        found = next((e for e in entries() if e.pw_name == name), None)
        if found is None:
            raise KeyError(f"getpwnam(): name not found: {name!r}")
        return found

    return {"getpwuid": getpwuid, "getpwnam": getpwnam, "getpwall": entries}


def _group_functions(fs: FakeFilesystem) -> dict[str, Callable[..., Any]]:
    def entries() -> list[grp.struct_group]:
        rows = _rows(_read(fs, GROUPS_FILE), GROUP_LINES, 4)
        return [
            grp.struct_group((r[0], r[1], int(r[2]), [m for m in r[3].split(",") if m]))
            for r in rows
        ]

    def getgrgid(gid: int) -> grp.struct_group:
        found = next((e for e in entries() if e.gr_gid == gid), None)
        if found is None:
            raise KeyError(f"getgrgid(): gid not found: {gid}")
        return found

    def getgrnam(name: str) -> grp.struct_group:
        if not isinstance(name, str):
            raise TypeError(f"getgrnam() argument must be str, not {type(name).__name__}")
        found = next((e for e in entries() if e.gr_name == name), None)
        if found is None:
            raise KeyError(f"getgrnam(): name not found: {name!r}")
        return found

    return {"getgrgid": getgrgid, "getgrnam": getgrnam, "getgrall": entries}


def _id_functions() -> dict[str, Callable[..., Any]]:
    # pyfakefs fakes getuid and getgid; the effective ids follow them.
    return {
        "geteuid": helpers.get_uid,
        "getegid": helpers.get_gid,
        "getgroups": lambda: [helpers.get_gid()],
        "getresuid": lambda: (helpers.get_uid(),) * 3,
        "getresgid": lambda: (helpers.get_gid(),) * 3,
    }


def _set_id(name: str, get: Callable[[], int], put: Callable[[int], None]) -> Callable[..., None]:
    """``os.set*uid``/``set*gid`` on the simulated ids: cdsw may only keep its own.

    The real, effective and saved ids are one id here, as in a session;
    -1 leaves one alone. Root may set any (the simulated id, never the process's).
    """

    def set_ids(*ids: int) -> None:
        for value in ids:
            if not isinstance(value, int):
                raise TypeError(f"{name}: an integer is required, not {type(value).__name__}")
        wanted = {value for value in ids if value != -1}
        if get() != 0 and wanted - {get()}:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        if len(wanted) > 1:
            # Only root gets here: a session's real, effective and saved ids are one.
            raise NotSimulatedError(f"os.{name} with different ids")
        if wanted:
            put(wanted.pop())

    set_ids.__name__ = name
    return set_ids


def _refuse_groups(name: str) -> Callable[..., None]:
    def set_groups(*_: Any) -> None:
        if helpers.get_uid() != 0:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        # Root's: a session's groups stay cdsw's one group.

    set_groups.__name__ = name
    return set_groups


def _set_id_functions() -> dict[str, Callable[..., Any]]:
    uid, gid = (helpers.get_uid, helpers.set_uid), (helpers.get_gid, helpers.set_gid)
    functions: dict[str, Callable[..., Any]] = {}
    for kind, (get, put) in (("uid", uid), ("gid", gid)):
        for prefix in ("set", "sete", "setre", "setres"):
            functions[f"{prefix}{kind}"] = _set_id(f"{prefix}{kind}", get, put)
    functions["setgroups"] = _refuse_groups("setgroups")
    functions["initgroups"] = _refuse_groups("initgroups")
    return functions


# os functions pyfakefs does not fake, which would act on the real system:
# paths of the real disk, or real descriptors with a fake descriptor's number.
_NOT_SIMULATED: Final = (
    "chroot",
    "mkfifo",
    "statvfs",
    "pathconf",
    "fchdir",
    "fstatvfs",
    "fpathconf",
    "pread",
    "pwrite",
    "preadv",
    "pwritev",
    "readv",
    "writev",
    "posix_fallocate",
    "posix_fadvise",
    "lockf",
    "copy_file_range",
    "splice",
)


def _refuse_unsimulated(name: str) -> Callable[..., NoReturn]:
    def refuse(*_: Any, **__: Any) -> NoReturn:
        raise NotSimulatedError(f"os.{name}")

    refuse.__name__ = name
    return refuse


# -- programs ---------------------------------------------------------------------------


def _shown(args: Any) -> str:
    if isinstance(args, str | bytes | os.PathLike):
        return repr(os.fsdecode(args))
    try:
        return repr([os.fsdecode(a) for a in args])
    except TypeError:
        return repr(args)


def _refuse_os(name: str) -> Callable[..., NoReturn]:
    def refuse(*args: Any, **_: Any) -> NoReturn:
        # spawn*(mode, path, ...) name the program second; the rest first.
        if not args:  # fork, forkpty
            raise CannotRunProgramError(f"os.{name}", "")
        program = args[1] if name.startswith("spawn") and len(args) > 1 else args[0]
        raise CannotRunProgramError(f"os.{name}", _shown(program))

    return refuse


def _refuse_popen(self: subprocess.Popen[Any], args: Any, *_: Any, **__: Any) -> NoReturn:
    raise CannotRunProgramError("subprocess.Popen", _shown(args))


def _refuse_fork_exec(args: Any = (), *_: Any, **__: Any) -> NoReturn:
    raise CannotRunProgramError("_posixsubprocess.fork_exec", _shown(args))


_REFUSALS: Final = {name: _refuse_os(name) for name in _OS_PROGRAM_CALLS if hasattr(os, name)}
# What the fake os module gets: stateless, so made once.
_OS_MODULE_FUNCTIONS: Final = {
    **_set_id_functions(),
    **{name: _refuse_unsimulated(name) for name in _NOT_SIMULATED if hasattr(os, name)},
}


# -- entering and leaving ------------------------------------------------------------------


# -- Python modules an add-on ships ---------------------------------------------------------

_IN_A_MOUNT: Final = "/runtime-addons/"


def _addon_file(fs: FakeFilesystem, path: str) -> bool:
    """True when *path* is a file of an add-on's mount in the fake filesystem (as cdsw sees)."""
    try:
        real = fs.resolve_path(path)
    except OSError:
        return False
    return real.startswith(_IN_A_MOUNT) and fs.isfile(path)


class _AddonLoader(importlib.abc.Loader):
    """Runs a module's source read from the fake filesystem; no bytecode is cached."""

    def __init__(self, fs: FakeFilesystem, path: str) -> None:
        self.fs = fs
        self.path = path

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        with fake_open.FakeFileOpen(self.fs)(self.path, "rb") as f:
            source = f.read()
        exec(compile(source, self.path, "exec", dont_inherit=True), module.__dict__)  # noqa: S102


class _AddonFinder(importlib.abc.MetaPathFinder):
    """Finds modules on ``sys.path`` entries inside add-ons' mounts (``/opt/pylib``...).

    Last on ``sys.meta_path``: what Python finds on the real system comes
    first, as the interpreter and its libraries are the host's.
    """

    def __init__(self, fs: FakeFilesystem) -> None:
        self.fs = fs

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> ModuleSpec | None:
        name = fullname.rpartition(".")[2]
        for entry in sys.path if path is None else path:
            if not isinstance(entry, str) or not entry.startswith("/"):
                continue
            base = posixpath.join(entry, name)
            for candidate, package in ((f"{base}/__init__.py", True), (f"{base}.py", False)):
                if _addon_file(self.fs, candidate):
                    loader = _AddonLoader(self.fs, candidate)
                    return importlib.util.spec_from_file_location(
                        fullname,
                        candidate,
                        loader=loader,
                        submodule_search_locations=[base] if package else None,
                    )
        return None


def _open_code(fs: FakeFilesystem, real: Callable[[str], Any]) -> Callable[[str], Any]:
    """``io.open_code`` that reads an add-on's files from the fake filesystem."""

    def open_code(path: str) -> Any:
        if isinstance(path, str) and _addon_file(fs, path):
            return fake_open.FakeFileOpen(fs)(path, "rb")
        return real(path)

    return open_code


@attrs.define
class Saved:
    """What :func:`enter` replaced, to put back."""

    #: The whole environment as it was.
    environ: dict[str, str]
    attributes: list[tuple[object, str, object]]
    #: Functions put on the fake ``os`` module's instance, to remove.
    added: list[tuple[object, str]] = attrs.field(factory=list)
    #: ``tempfile.tempdir`` as it was (the host's, cached).
    tempdir: str | None = None
    #: The finder of add-ons' modules put on ``sys.meta_path``, to remove.
    finder: object | None = None


def enter(
    fs: FakeFilesystem,
    os_module: object | None = None,
    environment: Mapping[str, str] | None = None,
) -> Saved:
    """Give the process the session's identity over *fs*, and refuse programs.

    *os_module* is the fake ``os`` module code under test sees; what the
    session adds to it (set*id on the simulated ids, refusals of calls that
    would reach the real system) affects only that code. *environment* adds
    variables the session has besides :data:`ENVIRONMENT` (SPARK_HOME...).
    """
    saved = Saved(dict(os.environ), [], tempdir=tempfile.tempdir)
    try:
        complete_databases(fs)
        # The host's temporary directory (macOS always sets TMPDIR) is not the
        # session's: tempfile finds /tmp of the workload instead.
        for name in HOST_ONLY:
            os.environ.pop(name, None)
        os.environ.update({**ENVIRONMENT, **(environment or {})})
        tempfile.tempdir = None
        replacements: list[tuple[object, dict[str, Callable[..., Any]]]] = [
            (pwd, _passwd_functions(fs)),
            (grp, _group_functions(fs)),
            (os, _id_functions()),
            (os, _REFUSALS),
            (subprocess.Popen, {"__init__": _refuse_popen}),
            (_posixsubprocess, {"fork_exec": _refuse_fork_exec}),
            (_io, {"open_code": _open_code(fs, _io.open_code)}),
            (io, {"open_code": _open_code(fs, io.open_code)}),
        ]
        # An add-on's modules are imported from the fake filesystem; nothing is
        # written back as bytecode (its __pycache__ would be on the real disk).
        saved.attributes.append((sys, "dont_write_bytecode", sys.dont_write_bytecode))
        sys.dont_write_bytecode = True
        saved.finder = _AddonFinder(fs)
        sys.meta_path.append(saved.finder)
        for owner, functions in replacements:
            for name, function in functions.items():
                saved.attributes.append((owner, name, getattr(owner, name)))
                setattr(owner, name, function)
        if os_module is not None:
            for name, function in _OS_MODULE_FUNCTIONS.items():
                saved.added.append((os_module, name))
                os_module.__dict__[name] = function
    except BaseException:
        leave(saved)
        raise
    return saved


def leave(saved: Saved) -> None:
    """Put back what :func:`enter` replaced: the environment and every function."""
    if saved.finder is not None:
        if saved.finder in sys.meta_path:
            sys.meta_path.remove(saved.finder)
        # Modules an add-on shipped are gone with its filesystem.
        for name, module in list(sys.modules.items()):
            if isinstance(getattr(module, "__loader__", None), _AddonLoader):
                del sys.modules[name]
        saved.finder = None
    while saved.added:
        owner, name = saved.added.pop()
        owner.__dict__.pop(name, None)
    while saved.attributes:
        owner, name, original = saved.attributes.pop()
        setattr(owner, name, original)
    for name in [n for n in os.environ if n not in saved.environ]:
        del os.environ[name]
    for name, value in saved.environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    tempfile.tempdir = saved.tempdir
