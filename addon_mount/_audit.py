"""What cdsw reaches through a link: the content audit of a started workload.

Every directory below a link must be listable and searchable by cdsw, every
file readable, every program (any x bit, or in a ``bin``/``sbin`` directory)
runnable, and a program's ``#!`` interpreter or ELF loader must be in the
workload once every link stands. Decided from the archive index, with
Linux's permission rules (:func:`~addon_mount._linux.permitted_mode`), so
nothing below a link is put in the fake filesystem.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
from typing import TYPE_CHECKING, Final

from ._archive import HARDLINK
from ._linux import MAY_EXEC, MAY_READ, Cred, LinuxError, permitted_mode
from ._metadata import AddonSpec
from ._program import Program
from ._report import Finding
from ._runtime import DIRECTORY, FILE, SYMLINK, Entry
from ._view import archive_entry, is_stray

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._linux import LinuxFS
    from ._view import WorkloadView

#: The PATH a session has (Cloudera's runtime Dockerfiles add the last two).
WORKLOAD_PATH: Final = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/home/cdsw/.local/bin",
    "/opt/conda/bin",
)


class ContentAudit:
    """The audit of one workload's links."""

    def __init__(
        self,
        linux: LinuxFS,
        view: WorkloadView,
        cred: Cred,
        runtime: str,
        add: Callable[[Finding], None],
    ) -> None:
        """Audit as *cred* in one runtime's workload; each finding goes to *add*."""
        self._linux = linux
        self._view = view
        self._cred = cred
        self._runtime = runtime
        self._add = add
        # Programs found below links, checked once every link stands.
        self._programs: list[tuple[AddonSpec, str, Program]] = []

    def _finding(self, code: str, message: str, spec: AddonSpec, path: str) -> None:
        self._add(Finding(code, message, addon=spec.name, runtime=self._runtime, path=path))

    def check_programs(self) -> None:
        """Check the interpreter or loader of every program found so far."""
        for spec, shown, program in self._programs:
            self._check_program(spec, shown, program)

    def audit(self, spec: AddonSpec, path: str) -> None:
        """Everything cdsw reaches through the link at *path*, as cdsw would use it.

        Directories must be listable and searchable, files readable, programs
        runnable. A directory cdsw may not search hides what is below it: it
        is the one finding for that subtree. Decided from the archive index,
        so nothing below the link is put in the fake filesystem.
        """
        try:
            # As cdsw: only cdsw may follow its own link in a sticky directory of another.
            real = self._linux.walk(path, self._cred).path
        except LinuxError:
            return  # reported by the reachability check
        root = self._view.mount_of(real)
        if root is None or real == root:
            return
        archive = self._view.mounts[root].archive
        base = real[len(root) + 1 :]
        names = archive.sorted_names()
        below = base + "/"
        start = bisect.bisect_left(names, below)
        members = archive.members
        programs = archive.programs
        # Most members share a few (type, mode, owner) combinations that need
        # nothing: decided once per combination, not once per member.
        quiet: dict[tuple[str, int, int, int], bool] = {}
        blocked: set[str] = set()
        for name in (base, *names[start:]):
            if name != base and not name.startswith(below):
                break  # sorted: the names below *base* are contiguous
            if blocked and _below_any(name, blocked, base):
                continue  # below a directory cdsw may not search, already reported
            if ("._" in name or "DS_Store" in name or "__MACOSX" in name) and is_stray(name):
                continue  # macOS metadata: AM250
            member = members.get(name)
            if member is None or member.type == HARDLINK:
                entry = archive_entry(name, archive, name)
                if entry is None:  # pragma: no cover - names come from the archive
                    continue
                key = (entry.type, entry.mode, entry.uid, entry.gid)
            else:
                entry = None
                key = (member.type, member.mode, member.uid, member.gid)
            fine = quiet.get(key)
            if fine is None:
                fine = quiet[key] = _needs_nothing(*key, self._cred)
            in_bin = "bin/" in name and name.rpartition("/")[0].rpartition("/")[2] in (
                "bin",
                "sbin",
            )
            if key[0] == SYMLINK and name != base:
                self._audit_symlink(spec, path, path + name[len(base) :], real)
                continue
            if not fine or in_bin or name == base:
                if entry is None:
                    entry = archive_entry(name, archive, name)
                if entry is not None:
                    shown = path + name[len(base) :]
                    if self._audit_entry(spec, path, shown, entry, top=name == base):
                        blocked.add(name)
            program = programs.get(name)
            if program is not None:
                self._programs.append((spec, path + name[len(base) :], program))

    def _check_program(self, spec: AddonSpec, shown: str, program: Program) -> None:
        """The interpreter or loader *program* needs is in the workload, and runnable."""
        if program.kind == "bom":
            self._finding(
                "AM343",
                f"{shown} starts with a UTF-8 byte order mark before #!{program.interpreter}: "
                "the kernel sees no interpreter line and refuses to run it ('Exec format error')",
                spec,
                shown,
            )
            return
        if program.kind == "script" and program.crlf:
            if program.env_name:
                wanted = f"{program.env_name}\r"
                who = f"{program.interpreter} looks for {wanted!r} and fails"
            else:
                who = (
                    f"the kernel looks for {program.interpreter!r} and fails with 'bad interpreter'"
                )
            first = program.interpreter.rstrip("\r")
            if program.env_name:
                first += " " + program.env_name
            self._finding(
                "AM341",
                f"{shown} starts with #!{first} and a carriage return (Windows line "
                f"endings): {who}",
                spec,
                shown,
            )
            return
        if program.env_name:
            if "/" in program.env_name or any(
                self._runnable(f"{d}/{program.env_name}") for d in WORKLOAD_PATH
            ):
                return
            self._add(
                Finding(
                    "AM340",
                    f"{shown} runs {program.env_name!r} through {program.interpreter}, and no "
                    f"directory on the session's PATH has it in this runtime",
                    addon=spec.name,
                    runtime=self._runtime,
                    path=shown,
                    cause=program.env_name,
                )
            )
            return
        if self._runnable(program.interpreter):
            return
        code, what = (
            ("AM342", "an ELF program whose loader")
            if program.kind == "elf"
            else (
                "AM340",
                "a script whose interpreter",
            )
        )
        self._add(
            Finding(
                code,
                f"{shown} is {what} {program.interpreter} is missing from this runtime "
                "(or cdsw may not run it)",
                addon=spec.name,
                runtime=self._runtime,
                path=shown,
                cause=program.interpreter,
            )
        )

    def _audit_symlink(self, spec: AddonSpec, link: str, shown: str, real: str) -> None:
        """A symlink below the link that leads out of what it reaches: cdsw must use its target.

        Its target inside the linked directory is audited as itself; one
        elsewhere in the add-on (``../priv/key``) is followed here, as cdsw.
        """
        try:
            target = self._linux.walk(shown, self._cred)
        except LinuxError as exc:
            if exc.errno != errno.EACCES:
                return  # dangling or looping content is the add-on's own choice
            if exc.need == "follow":  # fs.protected_symlinks: whatever its target
                why = (
                    "it is in a sticky world-writable directory, owned by another uid, "
                    "and fs.protected_symlinks is on"
                )
            elif _within(exc.at, real):
                return  # a directory of the linked tree: reported as itself
            else:
                why = f"{exc.at} is not searchable for it"
            self._finding(
                "AM322",
                f"{shown} (through {link}) is a symlink cdsw (uid {self._cred.uid}) may "
                f"not follow: {why}",
                spec,
                shown,
            )
            return
        if _within(target.path, real) or target.obj is None:
            return
        mode = target.obj.st_mode
        if stat.S_ISREG(mode) and not self._linux.access(shown, os.R_OK, self._cred):
            self._finding(
                "AM322",
                f"{shown} (through {link}) is a symlink to {target.path}, a file cdsw "
                f"(uid {self._cred.uid}) may not read",
                spec,
                shown,
            )
        elif stat.S_ISDIR(mode):
            refused = [
                word
                for word, bit in (("read", os.R_OK), ("search", os.X_OK))
                if not self._linux.access(shown, bit, self._cred)
            ]
            if refused:
                self._finding(
                    "AM322",
                    f"{shown} (through {link}) is a symlink to {target.path}, a directory "
                    f"cdsw (uid {self._cred.uid}) may not {' or '.join(refused)}",
                    spec,
                    shown,
                )

    def _runnable(self, path: str) -> bool:
        if not path.startswith("/"):
            return False
        try:
            obj = self._linux.stat(path, self._cred)
        except LinuxError:
            return False
        return stat.S_ISREG(obj.st_mode) and self._linux.access(path, os.X_OK, self._cred)

    def _audit_entry(
        self, spec: AddonSpec, link: str, shown: str, entry: Entry, *, top: bool
    ) -> bool:
        """Check one entry below a link; True when cdsw may not search it (a directory)."""
        st_mode = entry.st_mode
        uid, gid = entry.uid, entry.gid

        def may(mask: int) -> bool:
            return permitted_mode(st_mode, uid, gid, self._cred, mask)

        owner = f"owner uid {uid}, group {gid}, mode {entry.mode:03o}"
        if entry.type == DIRECTORY:
            if top:  # the link's own target: AM321 covers it
                return not may(MAY_EXEC)
            refused = [w for w, m in (("read", MAY_READ), ("search", MAY_EXEC)) if not may(m)]
            if refused:
                self._finding(
                    "AM322",
                    f"{shown} (through {link}) is a directory cdsw (uid {self._cred.uid}) may not "
                    f"{' or '.join(refused)}: {owner}",
                    spec,
                    shown,
                )
            return "search" in refused
        if entry.type != FILE:
            return False
        x_bits = entry.mode & 0o111
        in_bin = shown.rpartition("/")[0].rpartition("/")[2] in ("bin", "sbin")
        readable = may(MAY_READ)
        if x_bits and not may(MAY_EXEC):
            # One cause, one finding: a program cdsw may not run (nor, often, read).
            self._finding(
                "AM323",
                f"{shown} is a program cdsw (uid {self._cred.uid}) may not run"
                f"{'' if readable else ' or read'}: {owner}",
                spec,
                shown,
            )
            return False
        if not top and not readable:
            self._finding(
                "AM322",
                f"{shown} (through {link}) is a file cdsw (uid {self._cred.uid}) may not "
                f"read: {owner}",
                spec,
                shown,
            )
        if not x_bits and in_bin:
            self._finding(
                "AM324",
                f"{shown} is in a bin directory but has no x bit: {owner}",
                spec,
                shown,
            )
        return False


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _below_any(name: str, directories: set[str], base: str) -> bool:
    """True when a parent of *name*, up to *base*, is one of *directories*.

    Parents, not sort order: 'priv.d' sorts between 'priv' and 'priv/x'.
    """
    parent = name.rpartition("/")[0]
    while len(parent) >= len(base):
        if parent in directories:
            return True
        if not parent:
            return False
        parent = parent.rpartition("/")[0]
    return False


def _needs_nothing(kind: str, mode: int, uid: int, gid: int, cred: Cred) -> bool:
    """True for content cdsw may use as it must (outside bin directories)."""
    st_mode = stat.S_IFDIR | mode if kind == DIRECTORY else stat.S_IFREG | mode
    if kind == DIRECTORY:
        return permitted_mode(st_mode, uid, gid, cred, MAY_READ | MAY_EXEC)
    if kind != FILE:
        return True
    if not permitted_mode(st_mode, uid, gid, cred, MAY_READ):
        return False
    return not mode & 0o111 or permitted_mode(st_mode, uid, gid, cred, MAY_EXEC)
