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
  started in that filesystem, so the verdicts are the check's. In a fresh
  filesystem the outcome depends only on the runtime and the bundles: later
  start-ups with the same inputs replay what the first one created (its links
  and their parents) and reuse its report.
"""

from __future__ import annotations

import errno
import functools
import os
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
from ._check import Bundle, read_bundle, staged_addons, start_workloads
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import ADDON_MOUNT_ROOT, PROJECT_VOLUME
from ._report import Report
from ._runtime import (
    BUILTIN_PREFIX,
    DIRECTORY,
    Entry,
    RuntimeImage,
    builtin_names,
)
from ._workload import (
    CDSW_GID,
    CDSW_UID,
    ROOT_UID,
    WORKLOAD_UMASK,
    Workload,
    running_as,
)

# What a workload needs even when a runtime snapshot lacks it: a shared
# temporary directory and the cdsw user's home (the project volume).
TMP_DIR: Final = "/tmp"  # noqa: S108 - the fake workload's /tmp, never the host's
TMP_MODE: Final = 0o1777

# A read-only mount refuses these attributes' changes (chmod, chown, utime, truncate)...
_SEALED: Final = frozenset(FakeFile.stat_types) - {"st_atime", "st_atime_ns"}
# ...and never records an access time.
_ACCESS_TIMES: Final = frozenset({"st_atime", "st_atime_ns"})


class HarnessError(Exception):
    """The harness was used in a way it cannot honour (the message says how to fix it)."""


# String operations, not posixpath: while pyfakefs patches, posixpath in this
# module is its fake one, ten times slower, and these run once per entry.
def _join(directory: str, name: str) -> str:
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


def _split(path: str) -> tuple[str, str]:
    """(parent, name): '' is the parent of a top-level name (or of '/x', '/' is meant)."""
    parent, _, name = path.rpartition("/")
    return parent, name


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


class _Sealed:
    """Attribute writes of a read-only mount's objects: access times ignored, the rest EROFS."""

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _ACCESS_TIMES:
            return  # reading never updates access times on a read-only mount
        if key in _SEALED:
            _read_only(self)  # type: ignore[arg-type]
        super().__setattr__(key, value)


class ReadOnlyDirectory(_Sealed, LazyDirectory):
    """A directory of a read-only mount: no entry can be added, removed or changed."""

    def add_entry(self, path_object: FakeFile) -> None:
        name = helpers.to_string(path_object.name)
        path = _join(helpers.to_string(self.path), name)
        if name in self.entries:
            # Linux checks existence first: mkdir of an existing directory is EEXIST.
            self.filesystem.raise_os_error(errno.EEXIST, path)
        _read_only(self, path)

    def remove_entry(self, pathname_name: str, recursive: bool = True) -> None:
        directory = helpers.to_string(self.path)
        _read_only(self, _join(directory, helpers.to_string(pathname_name)))


class ReadOnlyFile(_Sealed, FakeFile):
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


class ReadOnlyXattrs(dict[str, bytes]):
    """Extended attributes on a read-only mount: readable, never set or removed."""

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


_NO_XATTRS: Final = ReadOnlyXattrs()


class _Prototype:
    """Clones one kind of pyfakefs object without running its constructor.

    The prototype is built by pyfakefs's own constructor, so a clone carries
    whatever attributes the installed pyfakefs sets; only the per-object ones
    are replaced.
    """

    def __init__(self, cls: type[FakeFile], is_dir: bool) -> None:
        fs = _scratch_filesystem()
        proto: FakeFile
        if is_dir:
            proto = FakeDirectory("prototype", 0o755, filesystem=fs)
        else:
            proto = FakeFile("prototype", stat.S_IFREG | 0o644, contents=b"", filesystem=fs)  # type: ignore[type-var]
        self.cls = cls
        # _harness_made tells what the tree made from what the start-up created.
        self.attrs = {**proto.__dict__, "_harness_made": True}
        self.stat_cls = type(proto.stat_result)
        self.stat_attrs = dict(proto.stat_result.__dict__)
        # Containers are per object; every other attribute is immutable and shared.
        self.fresh = tuple(k for k, v in self.attrs.items() if isinstance(v, dict | list | set))
        self.readonly = issubclass(cls, ReadOnlyDirectory | ReadOnlyFile)

    def clone(
        self, fs: weakref.ReferenceType[FakeFilesystem], name: str, st_mode: int, uid: int, gid: int
    ) -> FakeFile:
        st = object.__new__(self.stat_cls)
        st.__dict__.update(self.stat_attrs)
        st.__dict__.update(st_mode=st_mode, st_uid=uid, st_gid=gid)
        obj = object.__new__(self.cls)
        attributes = obj.__dict__
        attributes.update(self.attrs)
        for key in self.fresh:
            attributes[key] = {} if key != "xattr" or not self.readonly else _NO_XATTRS
        attributes["_filesystem"] = fs
        attributes["name"] = name
        attributes["stat_result"] = st
        return obj


@functools.cache
def _scratch_filesystem() -> FakeFilesystem:
    """The filesystem the prototypes are built in (a clone is moved to its own)."""
    fs = FakeFilesystem(path_separator="/")
    fs.is_windows_fs = False
    fs.is_macos = False
    return fs


@functools.cache
def _prototype(is_dir: bool, readonly: bool) -> _Prototype:
    if is_dir:
        return _Prototype(ReadOnlyDirectory if readonly else LazyDirectory, is_dir)
    return _Prototype(ReadOnlyFile if readonly else FakeFile, is_dir)


# -- what the filesystem shows ------------------------------------------------------


@attrs.frozen
class RuntimeIndex:
    """A runtime's entries by directory, built once per runtime per process."""

    root: Entry
    #: Entries by path, and the child names of each directory.
    entries: Mapping[str, Entry]
    children: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, image: RuntimeImage) -> RuntimeIndex:
        entries: dict[str, Entry] = {}
        children: dict[str, list[str]] = {}
        root = Entry("/", DIRECTORY, 0o755)
        for entry in image:
            if entry.path == "/":
                root = entry
            else:
                entries[entry.path] = entry
                parent, name = _split(entry.path)
                children.setdefault(parent or "/", []).append(name)
        return cls(root, entries, {k: tuple(v) for k, v in children.items()})


def archive_children(archive: ArchiveIndex) -> dict[str, tuple[str, ...]]:
    """Each archive directory's child names ('' is the archive root)."""
    children: dict[str, list[str]] = {}
    for name in archive.members.keys() | archive.directories:
        if name:
            parent, base = _split(name)
            children.setdefault(parent, []).append(base)
    return {k: tuple(sorted(v)) for k, v in children.items()}


@attrs.frozen
class StagedBundle:
    """A bundle as read for the harness (archive contents kept), with its archive's tree."""

    bundle: Bundle
    children: Mapping[str, tuple[str, ...]]


@attrs.frozen
class Created:
    """An entry the start-up created (a link, a directory cdsw made for one)."""

    path: str
    is_dir: bool
    st_mode: int
    uid: int
    gid: int
    contents: bytes


class _Tree:
    """The source of lazy directories' children: the runtime and the mounted add-ons."""

    def __init__(
        self,
        fs: FakeFilesystem,
        index: RuntimeIndex,
        workload: Workload,
        staged: Sequence[StagedBundle],
    ) -> None:
        self.fs = fs
        self.fs_ref = weakref.ref(fs)
        self.index = index
        self.workload = workload
        self.mounts: dict[str, tuple[ArchiveIndex, Mapping[str, tuple[str, ...]]]] = {}
        for item in staged:
            spec, archive = item.bundle.spec, item.bundle.archive
            if spec is not None and archive is not None:
                self.mounts[spec.staging_root] = (archive, item.children)

    # -- the model: what a directory holds -------------------------------------------

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

    def entry(self, path: str) -> tuple[Entry, bool] | None:
        """What is at *path* and whether it is in a read-only mount: Workload.lookup's model."""
        root = self._mount_of(path)
        if root is not None:
            if path == root:
                return self._mount_root_entry(root), True
            archive = self.mounts[root][0]
            found = Workload._archive_entry(path, archive, path[len(root) + 1 :])
            return None if found is None else (found, True)
        found = self.index.entries.get(path)
        if found is None and path == ADDON_MOUNT_ROOT and self.mounts:
            # The platform creates the mount point with the first add-on.
            found = Entry(ADDON_MOUNT_ROOT, DIRECTORY, 0o755)
        return None if found is None else (found, False)

    def names(self, path: str) -> Iterator[str]:
        """The names in directory *path* (a mount hides what the runtime has there)."""
        root = self._mount_of(path)
        if root is not None:
            yield from self.mounts[root][1].get(path[len(root) + 1 :], ())
            return
        runtime = self.index.children.get(path, ())
        yield from runtime
        if path == "/" and self.mounts and "runtime-addons" not in runtime:
            yield "runtime-addons"
        if path == ADDON_MOUNT_ROOT:
            yield from (_split(r)[1] for r in self.mounts if _split(r)[1] not in runtime)

    def children(self, path: str) -> Iterator[tuple[str, Entry, bool]]:
        """(name, entry, read-only) for each child of directory *path*."""
        for name in self.names(path):
            found = self.entry(_join(path, name))
            if found is not None:
                yield name, *found

    # -- objects ---------------------------------------------------------------------

    def load(self, directory: LazyDirectory) -> None:
        """Put *directory*'s children in place; entries already there win."""
        path = directory._harness_path
        existing = directory._entries
        for name, entry, readonly in self.children(path):
            present = existing.get(name)
            if present is None:
                self.insert(directory, self.make(name, entry, _join(path, name), readonly))
            elif entry.is_dir and type(present) is FakeDirectory:
                self.graft(present, entry, _join(path, name), readonly)

    def child(self, directory: FakeDirectory, name: str) -> FakeFile | None:
        """The child *name* of *directory*, put in place alone if the directory is not loaded."""
        present = directory._entries.get(name)
        if present is not None or not isinstance(directory, LazyDirectory) or directory.loaded:
            return present
        path = _join(directory._harness_path, name)
        found = self.entry(path)
        if found is None:
            return None
        obj = self.make(name, found[0], path, found[1])
        self.insert(directory, obj)
        return obj

    def make(self, name: str, entry: Entry, path: str, readonly: bool) -> FakeFile:
        """A new object for *entry*, not yet in any directory."""
        uid, gid = entry.uid, entry.gid
        if entry.is_dir:
            obj = _prototype(True, readonly).clone(
                self.fs_ref, name, stat.S_IFDIR | entry.mode, uid, gid
            )
            obj.__dict__.update(_harness_tree=self, _harness_path=path)
            return obj
        proto = _prototype(False, readonly)
        if entry.is_symlink:
            obj = proto.clone(self.fs_ref, name, stat.S_IFLNK | 0o777, uid, gid)
            contents = (entry.target or "").encode("utf-8", "surrogateescape")
            obj.__dict__.update(encoding="utf-8", errors="surrogateescape")
        else:
            obj = proto.clone(self.fs_ref, name, entry.st_mode, uid, gid)
            # Runtime snapshots hold no contents: a runtime file reads as empty.
            contents = (readonly and self.workload.contents_of(path)) or b""
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
        path = obj.__dict__.get("_harness_path")
        if path in self.mounts:
            # Each add-on is its own (read-only) mount, so its own device.
            self.fs.last_dev += 1
            st.st_dev = self.fs.last_dev
            self.fs.mount_points[path] = {"idev": st.st_dev, "total_size": None, "used_size": 0}

    def graft(self, directory: FakeDirectory, entry: Entry, path: str, readonly: bool) -> None:
        """Make an existing plain directory show *entry*'s attributes and children too."""
        directory.__class__ = ReadOnlyDirectory if readonly else LazyDirectory
        directory.__dict__.update(_harness_tree=self, _harness_path=path)
        st = directory.stat_result
        st.st_mode = stat.S_IFDIR | entry.mode
        st.st_uid, st.st_gid = entry.uid, entry.gid

    def add_directory(self, path: str, mode: int, uid: int, gid: int) -> None:
        """Create directory *path* (missing parents root's, 755) unless something is there."""
        parent = self.fs.root
        current = "/"
        for part in path.strip("/").split("/"):
            current = _join(current, part)
            obj = self.child(parent, part)
            if obj is None:
                last = current == path
                entry = Entry(
                    current, DIRECTORY, mode if last else 0o755, *((uid, gid) if last else (0, 0))
                )
                obj = self.make(part, entry, current, readonly=False)
                obj.__dict__["_harness_tree"] = None  # nothing to load
                self.insert(parent, obj)
            if not isinstance(obj, FakeDirectory):
                return
            parent = obj

    # -- what the start-up created -------------------------------------------------------

    def created(self) -> list[Created]:
        """Every entry not made from the model, parents first (the start-up's work)."""
        found: list[Created] = []

        def visit(directory: FakeDirectory, path: str) -> None:
            # _entries, not entries: an unloaded directory holds nothing created.
            for name, obj in directory._entries.items():
                child_path = _join(path, name)
                is_dir = isinstance(obj, FakeDirectory)
                if not obj.__dict__.get("_harness_made"):
                    contents = b"" if is_dir else obj.byte_contents or b""
                    st = obj.stat_result
                    found.append(
                        Created(child_path, is_dir, st.st_mode, st.st_uid, st.st_gid, contents)
                    )
                if isinstance(obj, FakeDirectory):
                    visit(obj, child_path)

        visit(self.fs.root, "/")
        return found

    def replay(self, created: Iterable[Created]) -> None:
        """Create *created* again: the start-up's work, without running it."""
        for item in created:
            parent_path, name = _split(item.path)
            parent = self.fs.root
            for part in parent_path.split("/"):
                if part:
                    obj = self.child(parent, part)
                    if not isinstance(obj, FakeDirectory):  # pragma: no cover - same model
                        raise AssertionError(f"cannot replay {item.path!r}: no {part!r}")
                    parent = obj
            proto = _prototype(item.is_dir, False)
            new = proto.clone(self.fs_ref, name, item.st_mode, item.uid, item.gid)
            if not item.is_dir:
                new.__dict__.update(
                    _byte_contents=item.contents, encoding="utf-8", errors="surrogateescape"
                )
                new.stat_result.st_size = len(item.contents)
            self.insert(parent, new)


# -- errno order: EROFS before what pyfakefs checks first ----------------------------

_GUARDED: Final = ("remove", "rmdir", "rename", "link", "add_open_file", "chmod")
_OPENED: Final = "_harness_opened"


def _parent_object(fs: FakeFilesystem, path: Any) -> FakeFile | None:
    """The directory holding *path*'s last component (symlinks before it followed)."""
    try:
        text = fs.absnormpath(helpers.to_string(helpers.make_string_path(path)))
        parent, name = _split(text)
        if name in ("", ".", ".."):
            return None
        obj: FakeFile = fs.resolve(parent or "/")
    except (OSError, TypeError):
        return None  # the original call reports it
    return obj


def _guard(fs: FakeFilesystem) -> None:
    """Make removals, renames and hard links in a read-only mount fail with EROFS first.

    The kernel asks for write access to the mount before it looks the last
    component up: ``rmdir`` of a non-empty directory, ``unlink`` of a missing
    file, a hard link into the mount from elsewhere are EROFS there, where
    pyfakefs would say ENOTEMPTY, ENOENT or EXDEV. Installed on the instance;
    :func:`_unguard` removes it.
    """
    cls = type(fs)

    def refuse(path: Any, parent: FakeFile | None = None) -> None:
        if isinstance(parent or _parent_object(fs, path), ReadOnlyDirectory):
            fs.raise_os_error(errno.EROFS, helpers.to_string(helpers.make_string_path(path)))

    def remove(path: Any) -> None:
        refuse(path)
        cls.remove(fs, path)

    def rmdir(target_directory: Any, allow_symlink: bool = False) -> None:
        refuse(target_directory)
        cls.rmdir(fs, target_directory, allow_symlink)

    def rename(old_file_path: Any, new_file_path: Any, force_replace: bool = False) -> None:
        # Linux: both parents looked up, then EXDEV across mounts, then EROFS.
        old, new = _parent_object(fs, old_file_path), _parent_object(fs, new_file_path)
        if old is not None and new is not None:
            if old.st_dev != new.st_dev:
                fs.raise_os_error(errno.EXDEV, helpers.to_string(old_file_path))
            refuse(old_file_path, old)
            refuse(new_file_path, new)
        cls.rename(fs, old_file_path, new_file_path, force_replace)

    def link(old_path: Any, new_path: Any, follow_symlinks: bool = True) -> FakeFile:
        # Linux: the source looked up, then EEXIST, then EROFS, and only then EXDEV.
        if fs.exists(old_path, check_link=True) and not fs.exists(new_path, check_link=True):
            refuse(new_path)
        result: FakeFile = cls.link(fs, old_path, new_path, follow_symlinks)
        return result

    # Every open ends here. pyfakefs lets root open any file for writing and
    # fails only on the first write; the kernel refuses the open itself.
    # And pyfakefs's os.open ends with a chmod of what it opened (its mode
    # argument): harmless elsewhere, it would make every os.open in a mount
    # fail, so the open is remembered and that one chmod, only it, is skipped.
    def add_open_file(file_obj: Any, new_fd: int = -1) -> int:
        opened = getattr(file_obj, "file_object", None)
        if isinstance(opened, ReadOnlyFile) and getattr(file_obj, "allow_update", False):
            _read_only(opened)
        fd: int = cls.add_open_file(fs, file_obj, new_fd)
        if getattr(file_obj, "raw_io", False) and isinstance(opened, ReadOnlyFile):
            fs.__dict__[_OPENED] = opened
        return fd

    def chmod(
        path: Any, mode: int, follow_symlinks: bool = True, force_unix_mode: bool = False
    ) -> None:
        opened = fs.__dict__.pop(_OPENED, None)
        if opened is not None:
            try:
                target = fs.resolve(path, follow_symlinks, allow_fd=True)
            except OSError:
                target = None
            if target is opened:
                return
        cls.chmod(fs, path, mode, follow_symlinks, force_unix_mode)

    fs.__dict__.update(
        remove=remove,
        rmdir=rmdir,
        rename=rename,
        link=link,
        add_open_file=add_open_file,
        chmod=chmod,
    )


def _unguard(fs: FakeFilesystem) -> None:
    for name in (*_GUARDED, _OPENED):
        fs.__dict__.pop(name, None)


# -- the caches ------------------------------------------------------------------

# Bundles read with their contents, by directory and the identity of its files.
_BUNDLES: dict[tuple[object, ...], StagedBundle] = {}
# Runtimes named by a string or a path, by what names them.
_RUNTIMES: dict[tuple[object, ...], RuntimeImage] = {}
# Indexes, by runtime image (a RuntimeImage given by a test has its own).
_INDEXES: weakref.WeakKeyDictionary[RuntimeImage, RuntimeIndex] = weakref.WeakKeyDictionary()
# Start-ups in a fresh filesystem, by runtime and bundles (ids, kept alive by the value).
_OUTCOMES: dict[tuple[int, ...], tuple[object, Report, tuple[Created, ...]]] = {}
_CACHE_MAX: Final = 256


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.pop(next(iter(cache)))
    cache[key] = value


def clear_caches() -> None:
    """Forget every runtime, index, bundle and start-up seen so far."""
    _BUNDLES.clear()
    _RUNTIMES.clear()
    _INDEXES.clear()
    _OUTCOMES.clear()
    _builtin_key.cache_clear()


def _bundle_key(directory: Path, limits: Limits) -> tuple[object, ...] | None:
    try:
        with os.scandir(directory) as scan:
            files = []
            for item in scan:
                if item.is_file():
                    st = item.stat()
                    files.append((item.name, st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        return None
    # The files' identities tell a changed bundle; abspath is enough to tell
    # directories apart (resolving symlinks would cost a syscall per component).
    return (str(directory.absolute()), tuple(sorted(files)), limits)


def _stage(directory: Path, limits: Limits, *, cache: bool) -> StagedBundle:
    key = _bundle_key(directory, limits) if cache else None
    cached = _BUNDLES.get(key) if key is not None else None
    if cached is not None:
        return cached
    bundle = read_bundle(directory, limits=limits, keep_contents=True)
    staged = StagedBundle(bundle, archive_children(bundle.archive) if bundle.archive else {})
    if key is not None:
        _remember(_BUNDLES, key, staged)
    return staged


def stage_bundle(directory: str | Path, limits: Limits = DEFAULT_LIMITS) -> StagedBundle:
    """Read a bundle with its archive's contents; cached while its files are unchanged."""
    return _stage(Path(directory), limits, cache=True)


@functools.cache
def _builtin_key(spec: str) -> tuple[object, ...] | None:
    # The same precedence as load_runtime: a string naming a built-in runtime is one.
    name = spec.removeprefix(BUILTIN_PREFIX)
    if spec.startswith(BUILTIN_PREFIX) or name in builtin_names():
        return ("builtin", name)
    return None


def _runtime_key(spec: str | Path) -> tuple[object, ...]:
    if isinstance(spec, str):
        key = _builtin_key(spec)
        if key is not None:
            return key
    path = Path(spec)
    try:
        st = path.stat()
    except OSError:
        return ("missing", str(spec))  # load_runtime raises; nothing is cached
    return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


def load_runtime_image(spec: str | os.PathLike[str] | RuntimeImage | None) -> RuntimeImage:
    """The runtime *spec* names, loaded once per process."""
    from ._check import load_runtimes  # noqa: PLC0415 - only this path needs the loaders
    from ._runtime import DEFAULT_RUNTIME  # noqa: PLC0415

    if isinstance(spec, RuntimeImage):
        return spec
    if spec is None:
        spec = DEFAULT_RUNTIME
    elif isinstance(spec, os.PathLike) and not isinstance(spec, Path):
        spec = Path(os.fspath(spec))  # a path made while pyfakefs patches
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
        _remember(_RUNTIMES, key, image)
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


# -- one workload -------------------------------------------------------------------


def _read_inputs(
    bundles: Iterable[str | os.PathLike[str]],
    runtime: str | os.PathLike[str] | RuntimeImage | None,
    limits: Limits,
) -> tuple[list[StagedBundle], RuntimeImage]:
    """Load the runtime and read the bundles from the real filesystem (pyfakefs paused)."""
    read: list[StagedBundle | Path] = []
    with real_filesystem():
        image = load_runtime_image(runtime)
        runtime_index(image)
        for directory in bundles:
            path = Path(directory)
            if active_patcher() is not None and not path.exists():
                read.append(path)  # perhaps made in the fake filesystem (the fs fixture)
            else:
                read.append(stage_bundle(path, limits))
    staged = [
        item if isinstance(item, StagedBundle) else _stage(item, limits, cache=False)
        for item in read
    ]
    return staged, image


def start(
    fs: FakeFilesystem, staged: Sequence[StagedBundle], image: RuntimeImage, *, fresh: bool
) -> Report:
    """Show *image* in *fs*, mount the add-ons and run the start-up; return its report.

    *fresh* says *fs* holds nothing of the caller's: pyfakefs's temporary
    directory is dropped so the filesystem is the runtime's, and the outcome
    depends only on the runtime and the bundles. The first such start-up runs
    the Workload; later ones with the same runtime and bundles replay what it
    created and reuse its report.
    """
    read = [s.bundle for s in staged]
    if isinstance(fs.root, LazyDirectory):
        raise HarnessError(
            "this fake filesystem already holds a workload (a module- or session-scoped "
            "fs?): one workload per fake filesystem"
        )
    key = (id(image), *(id(s) for s in staged))
    outcome = _OUTCOMES.get(key) if fresh else None
    with running_as(ROOT_UID, ROOT_UID):
        if fresh:
            for name in list(fs.root.entries):
                fs.root.remove_entry(name)
        fs.umask = WORKLOAD_UMASK
        workload = Workload(image, staged_addons(read), fs=fs)
        tree = _Tree(fs, runtime_index(image), workload, staged)
        tree.graft(fs.root, tree.index.root, "/", readonly=False)
        if outcome is not None:
            tree.replay(outcome[2])
            report = outcome[1]
    if outcome is None:
        report = start_workloads(read, [workload])
        if fresh:
            _remember(_OUTCOMES, key, ((image, *staged), report, tuple(tree.created())))
    with running_as(ROOT_UID, ROOT_UID):
        # What a workload always has, when the snapshot lacks it.
        tree.add_directory(TMP_DIR, TMP_MODE, ROOT_UID, ROOT_UID)
        tree.add_directory(PROJECT_VOLUME, 0o755, CDSW_UID, CDSW_GID)
    return report


@attrs.define
class Session:
    """An active workload: what it runs in, and what :func:`activate` changed, to put back."""

    fs: FakeFilesystem
    image: RuntimeImage
    patcher: Patcher | None
    ids: tuple[int, int]
    cwd: str
    umask: int


_ACTIVE: list[Session] = []


def activate(
    bundles: Iterable[str | os.PathLike[str]],
    runtime: str | os.PathLike[str] | RuntimeImage | None,
    limits: Limits,
) -> tuple[Session, Report]:
    """Start a workload and patch it in for the caller, as cdsw; undo with :func:`deactivate`."""
    if _ACTIVE:
        raise HarnessError(
            "a workload is already active in this process: one workload at a time "
            "(leave the first one's context first)"
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
    session = Session(fs, image, patcher, ids, fs.cwd, fs.umask)
    _ACTIVE.append(session)
    try:
        report = start(fs, staged, image, fresh=patcher is not None)
        _guard(fs)
        fs.cwd = PROJECT_VOLUME
        helpers.set_uid(CDSW_UID)
        helpers.set_gid(CDSW_GID)
    except BaseException:
        deactivate(session)
        raise
    return session, report


def deactivate(session: Session) -> None:
    """Put back what :func:`activate` changed: patching, ids, the fs's cwd and umask."""
    try:
        _unguard(session.fs)
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
