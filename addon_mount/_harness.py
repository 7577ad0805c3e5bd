"""The test harness's machinery: a started workload's whole filesystem on pyfakefs.

``addon_mount.testing`` is the public side; this module builds the filesystem.
It holds the runtime image, each add-on's archive mounted read-only under its
staging root, and what the simulated start-up created (links, directories).
Three pieces keep it cheap and faithful:

- Directories are lazy. A directory's children are put in place the first
  time anything lists or walks it, from an index of the runtime built once
  per process, by cloning prototype objects (about 1.5 µs an entry, where
  pyfakefs's constructors take about 10). A test pays for the directories it
  touches, not for the runtime's size.
- The staging areas are read-only subclasses of pyfakefs's file and directory
  objects: every change (a new entry, a removal, contents, mode, owner, times)
  raises EROFS whoever asks, as the kernel does for a read-only mount. Each
  staging root is its own device, so renames and hard links across it fail
  with EXDEV first, as on Linux.
- The start-up is the check's own :class:`~addon_mount._workload.Workload`,
  started in that filesystem, so the verdicts are the check's.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, AnyStr, Final, NoReturn

import attrs
from pyfakefs import helpers
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_filesystem_unittest import Patcher, Pause

from ._archive import ArchiveIndex
from ._check import Bundle, addon_collisions, read_bundle, unused_entries
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import ADDON_MOUNT_ROOT, PROJECT_VOLUME
from ._report import Report, RuntimeSummary
from ._runtime import (
    BUILTIN_PREFIX,
    DIRECTORY,
    FILE,
    Entry,
    RuntimeImage,
    builtin_names,
    parent_of,
)
from ._workload import CDSW_GID, CDSW_UID, ROOT_UID, WORKLOAD_UMASK, StagedAddon, Workload

# What a workload needs even when a runtime snapshot lacks it: a shared
# temporary directory and the cdsw user's home (the project volume).
TMP_DIR: Final = "/tmp"  # noqa: S108 - the fake workload's /tmp, never the host's
TMP_MODE: Final = 0o1777
HOME_DIR: Final = "/home"

# A read-only mount refuses these attributes' changes (chmod, chown, utime, truncate)...
_SEALED: Final = frozenset(FakeFile.stat_types) - {"st_atime", "st_atime_ns"}
# ...and never records an access time.
_ACCESS_TIMES: Final = frozenset({"st_atime", "st_atime_ns"})


class HarnessError(Exception):
    """The harness was used in a way it cannot honour (the message says how to fix it)."""


def _read_only(obj: FakeFile, path: str | None = None) -> NoReturn:
    obj.filesystem.raise_os_error(errno.EROFS, path if path is not None else obj.path)


# -- the pyfakefs objects -----------------------------------------------------------


class LazyDirectory(FakeDirectory):
    """A directory whose children are put in place when something first looks inside."""

    # Instances set these; the class defaults serve directories grafted from an
    # existing filesystem and those already loaded.
    _harness_tree: _Tree | None = None
    _harness_path: str = ""

    @property
    def loaded(self) -> bool:
        return self._harness_tree is None

    @property
    def entries(self) -> dict[str, FakeFile]:
        tree = self._harness_tree
        if tree is not None:
            self._harness_tree = None
            tree.load(self)
        return self._entries

    @property
    def ordered_dirs(self) -> list[str]:
        self.entries  # noqa: B018 - loads the children
        return super().ordered_dirs

    @property
    def size(self) -> int:
        # pyfakefs sums the whole subtree; an unloaded directory holds nothing yet.
        return 0 if self._harness_tree is not None else super().size

    @size.setter
    def size(self, st_size: int) -> None:
        self.filesystem.raise_os_error(errno.EISDIR, self.path)


class ReadOnlyDirectory(LazyDirectory):
    """A directory of a read-only mount: no entry can be added, removed or changed."""

    def add_entry(self, path_object: FakeFile) -> None:
        name = helpers.to_string(path_object.name)
        path = posixpath.join(helpers.to_string(self.path), name)
        if name in self.entries:
            # Linux checks existence first: mkdir of an existing directory is EEXIST.
            self.filesystem.raise_os_error(errno.EEXIST, path)
        _read_only(self, path)

    def remove_entry(self, pathname_name: str, recursive: bool = True) -> None:
        directory = helpers.to_string(self.path)
        _read_only(self, posixpath.join(directory, helpers.to_string(pathname_name)))

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _ACCESS_TIMES:
            return
        if key in _SEALED:
            _read_only(self)
        super().__setattr__(key, value)


class ReadOnlyFile(FakeFile):
    """A file or symlink of a read-only mount: readable, never changed."""

    def has_permission(self, permission_bits: int) -> bool:
        # The kernel refuses write access on a read-only mount before it looks
        # at the mode bits: EROFS, not EACCES.
        if permission_bits & helpers.PERM_WRITE:
            _read_only(self)
        return super().has_permission(permission_bits)

    def set_initial_contents(self, contents: AnyStr) -> bool:
        _read_only(self)

    def set_contents(self, contents: AnyStr, encoding: str | None = None) -> bool:
        _read_only(self)

    def set_large_file_size(self, st_size: int) -> None:
        _read_only(self)

    @property
    def size(self) -> int:
        return self.st_size

    @size.setter
    def size(self, st_size: int) -> None:
        _read_only(self)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _ACCESS_TIMES:
            return
        if key in _SEALED:
            _read_only(self)
        super().__setattr__(key, value)


class ReadOnlyXattrs(dict[str, bytes]):
    """Extended attributes on a read-only mount: readable, never set or removed."""

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse


_NO_XATTRS: Final = ReadOnlyXattrs()


class _Prototype:
    """Clones one kind of pyfakefs object without running its constructor.

    The prototype is built by pyfakefs's own constructor, so a clone carries
    whatever attributes the installed pyfakefs sets; only the per-object ones
    are replaced.
    """

    def __init__(self, fs: FakeFilesystem, cls: type[FakeFile], is_dir: bool) -> None:
        proto: FakeFile
        if is_dir:
            proto = FakeDirectory("prototype", 0o755, filesystem=fs)
        else:
            proto = FakeFile("prototype", stat.S_IFREG | 0o644, contents=b"", filesystem=fs)  # type: ignore[type-var]
        self.cls = cls
        self.attrs = dict(proto.__dict__)
        self.stat_cls = type(proto.stat_result)
        self.stat_attrs = dict(proto.stat_result.__dict__)
        # Containers are per object; every other attribute is immutable and shared.
        self.fresh = tuple(k for k, v in self.attrs.items() if isinstance(v, dict | list | set))
        self.readonly = issubclass(cls, ReadOnlyDirectory | ReadOnlyFile)

    def clone(self, name: str, st_mode: int, uid: int, gid: int) -> FakeFile:
        st = object.__new__(self.stat_cls)
        st.__dict__.update(self.stat_attrs)
        st.__dict__.update(st_mode=st_mode, st_uid=uid, st_gid=gid)
        obj = object.__new__(self.cls)
        attributes = obj.__dict__
        attributes.update(self.attrs)
        for key in self.fresh:
            attributes[key] = {} if key != "xattr" or not self.readonly else _NO_XATTRS
        attributes["name"] = name
        attributes["stat_result"] = st
        return obj


# -- what the filesystem shows ------------------------------------------------------


@attrs.frozen
class RuntimeIndex:
    """A runtime's entries by directory, built once per runtime per process."""

    image: RuntimeImage
    root: Entry
    children: Mapping[str, tuple[Entry, ...]]

    @classmethod
    def build(cls, image: RuntimeImage) -> RuntimeIndex:
        children: dict[str, list[Entry]] = {}
        root = Entry("/", DIRECTORY, 0o755)
        for entry in image:
            if entry.path == "/":
                root = entry
            else:
                children.setdefault(parent_of(entry.path), []).append(entry)
        return cls(image, root, {k: tuple(v) for k, v in children.items()})


def archive_children(archive: ArchiveIndex) -> dict[str, tuple[str, ...]]:
    """Each archive directory's child names ('' is the archive root)."""
    children: dict[str, list[str]] = {}
    for name in archive.members.keys() | archive.directories:
        if name:
            children.setdefault(posixpath.dirname(name), []).append(posixpath.basename(name))
    return {k: tuple(sorted(v)) for k, v in children.items()}


@attrs.frozen
class StagedBundle:
    """A bundle as read for the harness (archive contents kept), with its archive's tree."""

    bundle: Bundle
    children: Mapping[str, tuple[str, ...]]


class _Tree:
    """The source of a lazy directory's children: the runtime and the mounted add-ons."""

    def __init__(
        self,
        fs: FakeFilesystem,
        index: RuntimeIndex,
        workload: Workload,
        staged: Sequence[StagedBundle],
    ) -> None:
        self.fs = fs
        self.index = index
        self.workload = workload
        self.mounts: dict[str, tuple[ArchiveIndex, Mapping[str, tuple[str, ...]]]] = {}
        for item in staged:
            spec, archive = item.bundle.spec, item.bundle.archive
            if spec is not None and archive is not None:
                self.mounts[spec.staging_root] = (archive, item.children)
        self._protos = {
            (is_dir, readonly): _Prototype(fs, self._class_for(is_dir, readonly), is_dir)
            for is_dir in (False, True)
            for readonly in (False, True)
        }

    @staticmethod
    def _class_for(is_dir: bool, readonly: bool) -> type[FakeFile]:
        if is_dir:
            return ReadOnlyDirectory if readonly else LazyDirectory
        return ReadOnlyFile if readonly else FakeFile

    # -- the model ---------------------------------------------------------------

    def _mount_of(self, path: str) -> str | None:
        for root in self.mounts:
            if path == root or path.startswith(root + "/"):
                return root
        return None

    def _mount_root_entry(self, root: str) -> Entry:
        # As Workload.lookup: the mount root takes the archive's own '.' entry.
        top = self.mounts[root][0].members.get("")
        if top is not None:
            return Entry(root, DIRECTORY, top.mode, top.uid, top.gid)
        return Entry(root, DIRECTORY, 0o755)

    def children(self, path: str) -> Iterator[tuple[str, Entry, bool]]:
        """(name, entry, read-only) for each child of directory *path*."""
        root = self._mount_of(path)
        if root is not None:
            archive, tree = self.mounts[root]
            relative = path[len(root) + 1 :]
            for name in tree.get(relative, ()):
                member = posixpath.join(relative, name) if relative else name
                entry = Workload._archive_entry(f"{path}/{name}", archive, member)
                if entry is not None:
                    yield name, entry, True
            return
        shown: set[str] = set()
        for entry in self.index.children.get(path, ()):
            name = posixpath.basename(entry.path)
            if self._mount_of(entry.path) is not None:
                continue  # the mount hides what the runtime has there
            shown.add(name)
            yield name, entry, False
        if self.mounts and path == "/" and "runtime-addons" not in shown:
            # The platform creates the mount point with the first add-on.
            yield "runtime-addons", Entry(ADDON_MOUNT_ROOT, DIRECTORY, 0o755), False
        if path == ADDON_MOUNT_ROOT:
            for root in self.mounts:
                yield posixpath.basename(root), self._mount_root_entry(root), True

    # -- building objects ----------------------------------------------------------

    def load(self, directory: LazyDirectory) -> None:
        """Put *directory*'s children in place; entries already there win."""
        path = directory._harness_path
        existing = directory._entries
        for name, entry, readonly in self.children(path):
            child_path = posixpath.join(path, name)
            present = existing.get(name)
            if present is None:
                self.insert(directory, self.make(name, entry, child_path, readonly=readonly))
            elif entry.is_dir and type(present) is FakeDirectory:
                self.graft(present, entry, child_path, readonly=readonly)

    def make(self, name: str, entry: Entry, path: str, *, readonly: bool) -> FakeFile:
        """A new object for *entry*, not yet in any directory."""
        uid, gid = entry.uid, entry.gid
        if entry.is_dir:
            obj = self._protos[True, readonly].clone(name, stat.S_IFDIR | entry.mode, uid, gid)
            obj.__dict__.update(_harness_tree=self, _harness_path=path)
            return obj
        proto = self._protos[False, readonly]
        contents = b""
        if entry.is_symlink:
            obj = proto.clone(name, stat.S_IFLNK | 0o777, uid, gid)
            contents = (entry.target or "").encode("utf-8", "surrogateescape")
            obj.__dict__.update(encoding="utf-8", errors="surrogateescape")
        else:
            obj = proto.clone(name, entry.st_mode, uid, gid)
            if readonly and entry.type == FILE:
                contents = self.workload.contents_of(path) or b""
        # Runtime snapshots hold no contents: a runtime file reads as empty.
        obj.__dict__["_byte_contents"] = contents
        obj.stat_result.st_size = len(contents)
        return obj

    def insert(self, directory: FakeDirectory, obj: FakeFile) -> None:
        """What FakeDirectory.add_entry does, less the checks (the model decided)."""
        directory._entries[helpers.to_string(obj.name)] = obj
        obj.__dict__["parent_dir"] = weakref.ref(directory)
        self.fs.last_ino += 1
        st = obj.stat_result
        st.st_ino = self.fs.last_ino
        st.st_nlink += 1
        st.st_dev = directory.stat_result.st_dev
        directory.stat_result.st_nlink += 1
        if obj.__dict__.get("_harness_path") in self.mounts:
            # Each add-on is its own (read-only) mount: its own device.
            self.fs.last_dev += 1
            st.st_dev = self.fs.last_dev
            self.fs.mount_points[obj.__dict__["_harness_path"]] = {
                "idev": st.st_dev,
                "total_size": None,
                "used_size": 0,
            }

    def graft(self, directory: FakeDirectory, entry: Entry, path: str, *, readonly: bool) -> None:
        """Make an existing plain directory show *entry*'s attributes and children too."""
        directory.__class__ = ReadOnlyDirectory if readonly else LazyDirectory
        directory.__dict__.update(_harness_tree=self, _harness_path=path)
        st = directory.stat_result
        st.st_mode = stat.S_IFDIR | entry.mode
        st.st_uid, st.st_gid = entry.uid, entry.gid

    def add_directory(self, path: str, mode: int, uid: int, gid: int) -> None:
        """Create *path* (and missing parents, root's, 755) unless something is there."""
        parent = self.fs.root
        current = "/"
        for part in path.strip("/").split("/"):
            current = posixpath.join(current, part)
            child = parent.entries.get(part)
            if child is None:
                owner = (uid, gid) if current == path else (ROOT_UID, ROOT_UID)
                entry = Entry(current, DIRECTORY, mode if current == path else 0o755, *owner)
                child = self.make(part, entry, current, readonly=False)
                child.__dict__["_harness_tree"] = None  # nothing to load
                self.insert(parent, child)
            if not isinstance(child, FakeDirectory):
                return
            parent = child


# -- the caches ------------------------------------------------------------------

# Bundles read with their contents, by directory and the identity of its files.
_BUNDLES: dict[tuple[object, ...], StagedBundle] = {}
_BUNDLES_MAX: Final = 512
# Runtimes named by a string or a path, by what names them.
_RUNTIMES: dict[tuple[object, ...], RuntimeImage] = {}
# Indexes, by runtime image (a RuntimeImage given by a test has its own).
_INDEXES: weakref.WeakKeyDictionary[RuntimeImage, RuntimeIndex] = weakref.WeakKeyDictionary()


def clear_caches() -> None:
    """Forget every runtime, index and bundle read so far."""
    _BUNDLES.clear()
    _RUNTIMES.clear()
    _INDEXES.clear()


def _bundle_key(directory: Path, limits: Limits) -> tuple[object, ...] | None:
    try:
        files = sorted(
            (e.name, e.stat().st_mtime_ns, e.stat().st_size, e.inode())
            for e in os.scandir(directory)
            if e.is_file()
        )
    except OSError:
        return None
    return (str(directory.resolve()), tuple(files), limits)


def _stage(directory: Path, limits: Limits, *, cache: bool) -> StagedBundle:
    key = _bundle_key(directory, limits) if cache else None
    cached = _BUNDLES.get(key) if key is not None else None
    if cached is not None:
        return cached
    bundle = read_bundle(directory, limits=limits, keep_contents=True)
    staged = StagedBundle(bundle, archive_children(bundle.archive) if bundle.archive else {})
    if key is not None:
        if len(_BUNDLES) >= _BUNDLES_MAX:
            _BUNDLES.pop(next(iter(_BUNDLES)))
        _BUNDLES[key] = staged
    return staged


def stage_bundle(directory: str | Path, limits: Limits = DEFAULT_LIMITS) -> StagedBundle:
    """Read a bundle with its archive's contents; cached while its files are unchanged."""
    return _stage(Path(directory), limits, cache=True)


def _runtime_key(spec: str | Path) -> tuple[object, ...]:
    # The same precedence as load_runtime: a string naming a built-in runtime is one.
    if isinstance(spec, str):
        name = spec.removeprefix(BUILTIN_PREFIX)
        if spec.startswith(BUILTIN_PREFIX) or name in builtin_names():
            return ("builtin", name)
    path = Path(spec)
    try:
        st = path.stat()
    except OSError:
        return ("missing", str(spec))  # load_runtime raises; nothing is cached
    return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


def load_runtime_image(spec: str | Path | RuntimeImage | None) -> RuntimeImage:
    """The runtime *spec* names, loaded once per process."""
    from ._check import load_runtimes  # noqa: PLC0415 - only this path needs the loaders
    from ._runtime import DEFAULT_RUNTIME  # noqa: PLC0415

    if isinstance(spec, RuntimeImage):
        return spec
    if spec is None:
        spec = DEFAULT_RUNTIME
    if not isinstance(spec, str | Path):
        raise HarnessError(
            f"runtime={spec!r}: a workload runs in one runtime; give a built-in name, a "
            "snapshot, a docker-export tarball, a root directory or a RuntimeImage"
        )
    if str(spec) == "all":
        raise HarnessError(
            "runtime='all': a workload runs in one runtime; start one workload per runtime, "
            "or use addon_mount.check() to compare runtimes"
        )
    key = _runtime_key(spec)
    image = _RUNTIMES.get(key)
    if image is None:
        (image,) = load_runtimes(spec)
        _RUNTIMES[key] = image
    return image


def runtime_index(image: RuntimeImage) -> RuntimeIndex:
    """The index of *image*, built once per image."""
    index = _INDEXES.get(image)
    if index is None:
        index = RuntimeIndex.build(image)
        _INDEXES[image] = index
    return index


# -- patching ---------------------------------------------------------------------


def active_patcher() -> Patcher | None:
    """The pyfakefs Patcher patching this process (the ``fs`` fixture's), if any."""
    patcher = Patcher.PATCHER
    if patcher is None or Patcher.REF_COUNT < 1 or getattr(patcher, "fs", None) is None:
        return None
    return patcher


@contextmanager
def real_filesystem() -> Iterator[None]:
    """Run the block against the real filesystem, pausing pyfakefs if it is patching."""
    patcher = active_patcher()
    if patcher is None or not patcher.is_patching:
        yield
        return
    with Pause(patcher):
        yield


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


# -- one workload -------------------------------------------------------------------

_ACTIVE: list[object] = []


def _read_inputs(
    bundles: Iterable[str | Path], runtime: str | Path | RuntimeImage | None, limits: Limits
) -> tuple[list[StagedBundle], RuntimeImage]:
    """Load the runtime and read the bundles from the real filesystem (pyfakefs paused)."""
    read: list[StagedBundle | Path] = []
    with real_filesystem():
        image = load_runtime_image(runtime)
        runtime_index(image)
        for directory in bundles:
            path = Path(directory)
            if not path.exists() and active_patcher() is not None:
                read.append(path)  # perhaps made in the fake filesystem (the fs fixture)
            else:
                read.append(stage_bundle(path, limits))
    staged = [
        item if isinstance(item, StagedBundle) else _stage(item, limits, cache=False)
        for item in read
    ]
    return staged, image


def start(
    fs: FakeFilesystem,
    staged: Sequence[StagedBundle],
    image: RuntimeImage,
    *,
    fresh: bool,
) -> tuple[Workload, Report]:
    """Show *image* in *fs*, mount the add-ons and run the start-up; return its report.

    *fresh* says *fs* holds nothing of the caller's: its contents (pyfakefs's
    temporary directory) are dropped so the filesystem is the runtime's.
    """
    read = [s.bundle for s in staged]
    findings = [f for b in read for f in b.findings]
    collisions, skip = addon_collisions(read)
    findings.extend(collisions)
    for bundle in read:
        findings.extend(unused_entries(bundle))
    addons = [
        StagedAddon(b.spec, b.archive) for b in read if b.spec is not None and b.archive is not None
    ]
    index = runtime_index(image)
    with running_as(ROOT_UID, ROOT_UID):
        if fresh:
            for name in list(fs.root.entries):
                fs.root.remove_entry(name)
        fs.umask = WORKLOAD_UMASK
        workload = Workload(image, addons, fs=fs)
        tree = _Tree(fs, index, workload, staged)
        tree.graft(fs.root, index.root, "/", readonly=False)
    workload.start(skip=frozenset(skip))
    findings.extend(workload.findings)
    with running_as(ROOT_UID, ROOT_UID):
        # What a workload always has, when the snapshot lacks it.
        tree.add_directory(TMP_DIR, TMP_MODE, ROOT_UID, ROOT_UID)
        tree.add_directory(PROJECT_VOLUME, 0o755, CDSW_UID, CDSW_GID)
    report = Report(
        addons=tuple(b.summary for b in read),
        runtimes=(RuntimeSummary(image.name, image.description, len(image)),),
        links=tuple(workload.links),
        findings=tuple(findings),
    )
    return workload, report


@attrs.define
class Session:
    """What :func:`activate` changed, to put back on exit."""

    fs: FakeFilesystem
    patcher: Patcher | None
    ids: tuple[int, int]
    cwd: str
    umask: int


def activate(
    bundles: Iterable[str | Path],
    runtime: str | Path | RuntimeImage | None,
    limits: Limits,
) -> tuple[Session, Workload, Report]:
    """Start a workload and patch it in for the caller, as cdsw; undo with :func:`deactivate`."""
    if _ACTIVE:
        raise HarnessError(
            "a workload is already active in this process: one workload at a time "
            "(leave the first one's context, or use a second test)"
        )
    staged, image = _read_inputs(bundles, runtime, limits)
    ids = helpers.get_uid(), helpers.get_gid()
    existing = active_patcher()
    patcher: Patcher | None = None
    if existing is None:
        patcher = Patcher()
        patcher.setUp()
        fs = patcher.fs
    else:
        fs = existing.fs
    if fs is None:  # pragma: no cover - a Patcher that is set up has a filesystem
        raise AssertionError("pyfakefs Patcher without a filesystem")
    session = Session(fs, patcher, ids, fs.cwd, fs.umask)
    _ACTIVE.append(session)
    try:
        workload, report = start(fs, staged, image, fresh=patcher is not None)
        fs.cwd = PROJECT_VOLUME
        helpers.set_uid(CDSW_UID)
        helpers.set_gid(CDSW_GID)
    except BaseException:
        deactivate(session)
        raise
    return session, workload, report


def deactivate(session: Session) -> None:
    """Put back what :func:`activate` changed: patching, ids, and the fs's cwd and umask."""
    try:
        if session.patcher is not None:
            session.patcher.tearDown()
        else:
            # The fs fixture's filesystem keeps the workload; give back its settings.
            session.fs.cwd = session.cwd
            session.fs.umask = session.umask
    finally:
        helpers.set_uid(session.ids[0])
        helpers.set_gid(session.ids[1])
        if session in _ACTIVE:
            _ACTIVE.remove(session)
