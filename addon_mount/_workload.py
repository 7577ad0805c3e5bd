"""The workload: a simulated start-up on pyfakefs, run as the cdsw user.

For one runtime, the workload mounts each add-on's archive read-only under
``/runtime-addons/custom-addon-<name>/`` and then, as uid 8536, symlinks each
requested path to it, exactly as a Cloudera AI workload does at start-up.
Verdicts come from the fake OS calls and their errno.

The runtime and the archives are indexes; an entry is put in the fake
filesystem only when a path being resolved reaches it (``ensure``), so the
cost of a check does not depend on the runtime's size.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
from pyfakefs import helpers
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_open import FakeFileOpen
from pyfakefs.fake_os import FakeOsModule

from ._archive import HARDLINK, ArchiveIndex
from ._log import get_logger
from ._metadata import ADDON_MOUNT_ROOT, AddonSpec
from ._report import Finding, Link
from ._runtime import DIRECTORY, FILE, SYMLINK, Entry, RuntimeImage, parent_of

CDSW_UID = 8536
CDSW_GID = 8536
ROOT_UID = 0
# Linux gives up resolving a path after this many symlinks (ELOOP).
MAX_SYMLINKS = 40
# A workload's umask: cdsw creates directories 755.
WORKLOAD_UMASK = 0o022


@attrs.frozen
class StagedAddon:
    """An add-on ready to mount: its validated spec and its archive index."""

    spec: AddonSpec
    archive: ArchiveIndex


@contextmanager
def running_as(uid: int, gid: int) -> Iterator[None]:
    """Run the block as *uid*/*gid* in pyfakefs, restoring the previous ids after."""
    previous = helpers.get_uid(), helpers.get_gid()
    helpers.set_uid(uid)
    helpers.set_gid(gid)
    try:
        yield
    finally:
        helpers.set_uid(previous[0])
        helpers.set_gid(previous[1])


def describe_entry(entry: Entry) -> str:
    """'a file', 'a directory', 'a symlink to X', with owner and mode."""
    what = {DIRECTORY: "a directory", FILE: "a file", SYMLINK: "a symlink"}.get(
        entry.type, "a special file"
    )
    if entry.is_symlink:
        what += f" to {entry.target!r}"
    return f"{what} (owner uid {entry.uid}, mode {entry.mode:03o})"


class Workload:
    """One runtime's filesystem with the given add-ons mounted, on pyfakefs."""

    def __init__(
        self,
        runtime: RuntimeImage,
        addons: Sequence[StagedAddon],
        *,
        fs: FakeFilesystem | None = None,
    ) -> None:
        """Prepare the workload; *fs* is a fake filesystem to start up in (default: a new one).

        A given *fs* is used as it is (the test harness passes one that already
        shows the whole runtime): it must behave like Linux, with umask
        ``WORKLOAD_UMASK``. Entries it already holds are taken as they are.
        """
        self.runtime = runtime
        self.addons = tuple(addons)
        self._staged = {a.spec.staging_root: a for a in self.addons}
        if fs is None:
            fs = FakeFilesystem(path_separator="/")
            # Behave like Linux whatever the host is.
            fs.is_windows_fs = False
            fs.is_macos = False
            fs.umask = WORKLOAD_UMASK
        self.fs = fs
        self.os = FakeOsModule(fs)
        self._open = FakeFileOpen(fs)
        self.findings: list[Finding] = []
        self.links: list[Link] = []
        # What each path is in the simulated filesystem, once looked up (None: absent).
        self._known: dict[str, Entry | None] = {}
        self._objects: dict[str, FakeDirectory] = {"/": fs.root}
        root = runtime.get("/") or Entry("/", DIRECTORY, 0o755)
        self._known["/"] = root
        self._apply_attrs(fs.root, root)
        self._log = get_logger().bind(runtime=runtime.name)

    # -- the model: what is at a path ------------------------------------------

    def lookup(self, path: str) -> Entry | None:
        """What the workload has at *path* before start-up (no symlinks followed)."""
        if path in self._known:
            return self._known[path]
        entry = self._lookup_uncached(path)
        self._known[path] = entry
        return entry

    def _lookup_uncached(self, path: str) -> Entry | None:
        for root, addon in self._staged.items():
            if path == root:
                top = addon.archive.members.get("")
                # The mount root takes the archive's own '.' entry when it has one.
                if top is not None:
                    return Entry(path, DIRECTORY, top.mode, top.uid, top.gid)
                return Entry(path, DIRECTORY, 0o755)
            if path.startswith(root + "/"):
                return self._archive_entry(path, addon.archive, path[len(root) + 1 :])
        entry = self.runtime.get(path)
        if entry is None and path == ADDON_MOUNT_ROOT:
            # The platform creates the mount point when it mounts the first add-on.
            return Entry(path, DIRECTORY, 0o755)
        return entry

    @staticmethod
    def _archive_entry(path: str, archive: ArchiveIndex, name: str) -> Entry | None:
        member = archive.get(name)
        if member is None:
            return None
        if member.type == HARDLINK:
            # A hard link is the file it names, under a second name.
            original = archive.members[member.linkname]
            return Entry(path, FILE, original.mode, original.uid, original.gid, original.size)
        if member.type == SYMLINK:
            return Entry(path, SYMLINK, 0o777, member.uid, member.gid, 0, member.linkname)
        return Entry(path, member.type, member.mode, member.uid, member.gid, member.size)

    def contents_of(self, path: str) -> bytes | None:
        """The archive bytes of a staged file, when the archive kept contents."""
        for root, addon in self._staged.items():
            if path.startswith(root + "/") and addon.archive.contents is not None:
                name = path[len(root) + 1 :]
                member = addon.archive.members.get(name)
                if member is not None and member.type == HARDLINK:
                    name = member.linkname
                return addon.archive.contents.get(name)
        return None

    # -- materializing only what a decision needs -----------------------------

    def ensure(self, path: str) -> None:
        """Put in the fake filesystem every entry needed to resolve *path*.

        Walks the path as the kernel does, following symlinks (at most
        MAX_SYMLINKS) and materializing each entry it meets; stops at the first
        component that does not exist.
        """
        with running_as(ROOT_UID, ROOT_UID):
            self._ensure(path)

    def _ensure(self, path: str) -> None:
        todo = deque(path.split("/"))
        current = "/"
        hops = 0
        while todo:
            part = todo.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                current = parent_of(current)
                continue
            child = posixpath.join(current, part)
            entry = self._materialize(child)
            if entry is None:
                return
            if entry.is_symlink and entry.target is not None:
                hops += 1
                if hops > MAX_SYMLINKS:
                    return
                if entry.target.startswith("/"):
                    current = "/"
                todo.extendleft(reversed(entry.target.split("/")))
                continue
            if not entry.is_dir:
                return
            current = child

    def _materialize(self, path: str) -> Entry | None:
        entry = self.lookup(path)
        if entry is None or self._in_fake_fs(path):
            return entry
        parent = self._objects.get(parent_of(path))
        if parent is None:  # pragma: no cover - _ensure walks parents first
            raise AssertionError(f"parent of {path!r} not materialized")
        name = posixpath.basename(path)
        obj: FakeFile
        if entry.is_dir:
            obj = FakeDirectory(name, entry.mode, filesystem=self.fs)
            self._objects[path] = obj
        elif entry.is_symlink:
            # Targets that are not UTF-8 reach here as surrogate escapes (tar's bytes).
            obj = FakeFile(
                name,
                stat.S_IFLNK | 0o777,
                contents=entry.target or "",
                filesystem=self.fs,
                encoding="utf-8",
                errors="surrogateescape",
            )
        else:
            contents = self.contents_of(path)
            if contents is None:
                obj = FakeFile(name, entry.st_mode, filesystem=self.fs)
            else:
                obj = FakeFile(name, entry.st_mode, contents=contents, filesystem=self.fs)  # type: ignore[type-var]
        self._apply_attrs(obj, entry)
        parent.add_entry(obj)
        return entry

    def _in_fake_fs(self, path: str) -> bool:
        parent = self._objects.get(parent_of(path))
        if parent is None:
            return False
        existing = parent.entries.get(posixpath.basename(path))
        if isinstance(existing, FakeDirectory):
            # A filesystem given to __init__ may already hold the directory: it
            # must be known to materialize entries below it.
            self._objects.setdefault(path, existing)
        return existing is not None

    @staticmethod
    def _apply_attrs(obj: FakeFile, entry: Entry) -> None:
        obj.st_uid = entry.uid
        obj.st_gid = entry.gid
        if entry.is_dir:
            obj.st_mode = stat.S_IFDIR | entry.mode

    def _record_created(self, path: str) -> None:
        """Note what start-up created at *path*, so later walks see it."""
        with running_as(ROOT_UID, ROOT_UID):
            obj = self.fs.lresolve(path)
        st_mode = obj.st_mode
        if isinstance(obj, FakeDirectory):
            self._objects[path] = obj
            entry = Entry(path, DIRECTORY, stat.S_IMODE(st_mode), obj.st_uid, obj.st_gid)
        else:
            entry = Entry(path, SYMLINK, 0o777, obj.st_uid, obj.st_gid, 0, obj.contents)
        self._known[path] = entry

    # -- the simulated start-up -------------------------------------------------

    def mount(self) -> None:
        """Stage every add-on's mount root (the platform does this as root)."""
        for addon in self.addons:
            root = addon.spec.staging_root
            existing = self.runtime.get(root)
            if existing is not None:
                self._add(
                    Finding(
                        "AM311",
                        f"the runtime already has {root}: an add-on named "
                        f"{addon.spec.name!r} is mounted there, so this name is taken",
                        addon=addon.spec.name,
                        runtime=self.runtime.name,
                        path=root,
                    )
                )
            self.ensure(root)
            self._log.info(
                "staged", addon=addon.spec.name, root=root, members=len(addon.archive.members)
            )

    def start(self, skip: frozenset[tuple[str, str]] = frozenset()) -> None:
        """Mount the add-ons, then link each requested path as cdsw.

        *skip* holds (add-on, path) pairs not to link (those already reported as
        colliding with another add-on).
        """
        self.mount()
        for addon in self.addons:
            for path in addon.spec.paths:
                if (addon.spec.name, path) not in skip:
                    self.link(addon.spec, path)

    def link(self, spec: AddonSpec, path: str) -> bool:
        """Create one link as cdsw and check what it reaches; True if it was created."""
        target = spec.target_of(path)
        self.ensure(parent_of(path))
        self.ensure(path)
        error = self._symlink(target, path)
        if error is not None and error.errno == errno.ENOENT:
            if not self._make_parents(spec, path):
                return False
            error = self._symlink(target, path)
        if error is not None:
            self._link_failed(spec, path, error)
            return False
        self._record_created(path)
        self.links.append(Link(path, target, spec.name, self.runtime.name))
        self._log.info("linked", addon=spec.name, path=path, target=target)
        self._check_reachable(spec, path, target)
        return True

    def _symlink(self, target: str, path: str) -> OSError | None:
        with running_as(CDSW_UID, CDSW_GID):
            try:
                self.os.symlink(target, path)
            except OSError as exc:
                return exc
        return None

    def _make_parents(self, spec: AddonSpec, path: str) -> bool:
        """``mkdir -p`` the link's parent as cdsw; report and return False if it fails."""
        parent = parent_of(path)
        with running_as(ROOT_UID, ROOT_UID):
            # Symlinks in the existing part (/lib -> usr/lib) decide where mkdir lands.
            real = self.fs.resolve_path(parent)
            first_missing = real
            while parent_of(first_missing) != "/" and not self.fs.exists(parent_of(first_missing)):
                first_missing = parent_of(first_missing)
        with running_as(CDSW_UID, CDSW_GID):
            try:
                self.os.makedirs(parent, 0o755, exist_ok=True)
            except OSError as exc:
                self._log.info(
                    "link_failed",
                    addon=spec.name,
                    path=path,
                    errno=errno.errorcode.get(exc.errno or 0, "?"),
                )
                if exc.errno == errno.ENOTDIR:
                    self._not_a_directory(spec, path)
                    return False
                where = self._blocking_directory(parent_of(first_missing))
                self._finding(
                    "AM320",
                    f"cannot link {path}: its parent {parent} does not exist and cdsw "
                    f"(uid {CDSW_UID}) cannot create {first_missing}; it {where}",
                    spec,
                    path,
                )
                return False
        created = [first_missing]
        for part in real[len(first_missing) + 1 :].split("/"):
            if part:
                created.append(f"{created[-1]}/{part}")
        for directory in created:
            self._record_created(directory)
        shown = parent if parent == real else f"{parent} ({real})"
        self._finding(
            "AM330",
            f"{shown} does not exist in the runtime; cdsw created {first_missing} "
            f"(mode {0o777 & ~WORKLOAD_UMASK:03o}) to link {path}",
            spec,
            path,
        )
        self._log.info("parent_created", addon=spec.name, path=path, created=created)
        return True

    def _link_failed(self, spec: AddonSpec, path: str, error: OSError) -> None:
        code = error.errno or 0
        self._log.info(
            "link_failed", addon=spec.name, path=path, errno=errno.errorcode.get(code, str(code))
        )
        if code == errno.EEXIST:
            existing = self.lookup(path)
            what = describe_entry(existing) if existing else "an entry"
            self._finding(
                "AM301",
                f"cannot link {path}: the runtime already has {what} there",
                spec,
                path,
            )
        elif code == errno.ENOTDIR:
            self._not_a_directory(spec, path)
        elif code in (errno.EACCES, errno.EPERM):
            where = self._blocking_directory(parent_of(path))
            self._finding(
                "AM320",
                f"cannot link {path}: cdsw (uid {CDSW_UID}) {where}",
                spec,
                path,
            )
        else:
            self._finding(
                "AM320",
                f"cannot link {path}: {os.strerror(code)} ({errno.errorcode.get(code, code)})",
                spec,
                path,
            )

    def _not_a_directory(self, spec: AddonSpec, path: str) -> None:
        blocker = parent_of(path)
        step = "/"
        for part in parent_of(path).split("/")[1:]:
            step = posixpath.join(step, part)
            entry = self.lookup(step)
            if entry is not None and not entry.is_dir and not entry.is_symlink:
                blocker = step
                break
        entry = self.lookup(blocker)
        what = describe_entry(entry) if entry else "not a directory"
        self._finding(
            "AM302",
            f"cannot link {path}: {blocker} is {what}, not a directory",
            spec,
            path,
        )

    def _blocking_directory(self, directory: str, *, write: bool = True) -> str:
        """Say which directory stops cdsw, and why: from creating an entry in *directory*
        (*write*), or from reaching it at all."""
        with running_as(ROOT_UID, ROOT_UID):
            try:
                real = self.fs.resolve_path(directory)
            except OSError:
                real = directory
        step = "/"
        parts = [p for p in real.split("/") if p]
        with running_as(CDSW_UID, CDSW_GID):
            for i in range(len(parts) + 1):
                step = "/" + "/".join(parts[:i])
                obj = self._object_at(step)
                if obj is None:
                    break
                is_last = i == len(parts)
                needs_write = is_last and write
                needed = helpers.PERM_WRITE | helpers.PERM_EXE if needs_write else helpers.PERM_EXE
                if not obj.has_permission(needed):
                    verb = "may not write in" if needs_write else "may not search"
                    shown = step if step == directory else f"{step} (reached from {directory})"
                    return (
                        f"{verb} {shown}: owner uid {obj.st_uid}, group {obj.st_gid}, "
                        f"mode {stat.S_IMODE(obj.st_mode):03o}"
                    )
        return f"may not write in {directory}" if write else f"may not reach {directory}"

    def _object_at(self, path: str) -> FakeFile | None:
        with running_as(ROOT_UID, ROOT_UID):
            try:
                return self.fs.resolve(path)
            except OSError:
                return None

    def _check_reachable(self, spec: AddonSpec, path: str, target: str) -> None:
        self.ensure(target)
        with running_as(CDSW_UID, CDSW_GID):
            try:
                st = self.os.stat(path)
            except OSError as exc:
                self._unreachable(spec, path, target, exc)
                return
            is_dir = stat.S_ISDIR(st.st_mode)
            # What a workload does with the link: open the file, or list and enter the
            # directory. (pyfakefs's os.access reads only the owner bits, so it is not used.)
            try:
                if is_dir:
                    self.os.listdir(path)
                    allowed = self.fs.resolve(path).has_permission(helpers.PERM_EXE)
                else:
                    self._open(path, "rb").close()
                    allowed = True
            except OSError:
                allowed = False
        if not allowed:
            kind = "directory" if is_dir else "file"
            need = "read and search" if is_dir else "read"
            self._finding(
                "AM321",
                f"{path} links to a {kind} that cdsw (uid {CDSW_UID}) may not {need}: "
                f"the archive gives it owner uid {st.st_uid}, group {st.st_gid}, "
                f"mode {stat.S_IMODE(st.st_mode):03o}",
                spec,
                path,
            )

    def _unreachable(self, spec: AddonSpec, path: str, target: str, exc: OSError) -> None:
        addon = self._staged[spec.staging_root]
        name = path[1:]
        if exc.errno == errno.EACCES:
            blocker = self._blocking_directory(parent_of(target), write=False)
            self._finding(
                "AM321",
                f"{path} links into the add-on, but cdsw (uid {CDSW_UID}) may not reach "
                f"{target}: it {blocker}",
                spec,
                path,
            )
            return
        member = addon.archive.members.get(name)
        if member is None and not addon.archive.complete:
            # The archive could not be read to the end (already reported): its absence
            # here says nothing about the add-on.
            return
        if member is not None and member.type == SYMLINK and self._loops(target):
            message = (
                f"{path} would not resolve: archive member {name!r} is a symlink to "
                f"{member.linkname!r}, and following it leads back to itself"
            )
        elif member is not None and member.type == SYMLINK:
            message = (
                f"{path} would dangle: archive member {name!r} is a symlink to "
                f"{member.linkname!r}, which does not exist in the workload"
            )
        elif exc.errno == errno.ELOOP:
            message = f"{path} would not resolve: too many levels of symbolic links"
        else:
            message = f"{path} would dangle: the archive has no member {name!r}" + _suggest(
                addon.archive, name
            )
        self._add(Finding("AM300", message, addon=spec.name, runtime=self.runtime.name, path=path))

    def _loops(self, path: str) -> bool:
        """True when following the symlinks at *path* comes back to a link already seen."""
        seen: set[str] = set()
        for _ in range(MAX_SYMLINKS):
            entry = self.lookup(path)
            if entry is None or not entry.is_symlink or entry.target is None:
                return False
            if path in seen:
                return True
            seen.add(path)
            path = posixpath.normpath(posixpath.join(parent_of(path), entry.target))
        return True

    def _finding(self, code: str, message: str, spec: AddonSpec, path: str) -> None:
        """Record a start-up finding about *path* of *spec*, in this runtime."""
        self._add(Finding(code, message, addon=spec.name, runtime=self.runtime.name, path=path))

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)


def _suggest(archive: ArchiveIndex, name: str) -> str:
    """'; it has X' for archive names that end like *name*: the usual layout slip."""
    base = posixpath.basename(name)
    close = sorted(
        n
        for n in archive.members.keys() | archive.directories
        if n and (n == base or n.endswith("/" + base)) and n != name
    )
    if not close:
        if not archive.members:
            return " (the archive is empty)"
        return ""
    shown = ", ".join(repr(n) for n in close[:3])
    return f"; it has {shown} (the layout must mirror the absolute path: {name!r})"
