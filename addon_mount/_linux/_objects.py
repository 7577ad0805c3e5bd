"""pyfakefs objects that behave like a workload's: lazy directories, read-only mounts.

Everything here reaches into pyfakefs's objects (``_entries``, ``__dict__``,
``stat_result``): it is the one place that does, with
:mod:`addon_mount._linux._hooks`, and ``tests/test_linux.py`` fails naming
the pyfakefs version when those internals change.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import weakref
from collections.abc import Iterator
from typing import Any, AnyStr, Final, NoReturn, Protocol

from pyfakefs import helpers
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

# A read-only mount refuses these attributes' changes (chmod, chown, utime, truncate)...
_SEALED: Final = frozenset(FakeFile.stat_types) - {"st_atime", "st_atime_ns"}
# ...and never records an access time.
_ACCESS_TIMES: Final = frozenset({"st_atime", "st_atime_ns"})


class Loader(Protocol):
    """What fills a lazy directory: the workload's view of runtime and mounts."""

    def load(self, directory: LazyDirectory) -> None:
        """Put every child of *directory* in place (entries already there win)."""

    def child(self, directory: FakeDirectory, name: str) -> FakeFile | None:
        """The child *name* of *directory*, put in place alone when needed."""


def new_filesystem(umask: int) -> FakeFilesystem:
    """An empty Linux-like fake filesystem, whatever the host is."""
    fs = FakeFilesystem(path_separator="/")
    fs.is_windows_fs = False
    fs.is_macos = False
    fs.umask = umask
    return fs


@contextlib.contextmanager
def no_temp_dir() -> Iterator[None]:
    """Filesystems made in the block get no pyfakefs temporary directory.

    A Patcher's filesystem is made with ``/tmp`` (and a symlink to it) that a
    fresh workload would only remove again to show the runtime's own; about
    a quarter of a Patcher's set-up.
    """
    cls = FakeFilesystem
    original = cls.__dict__["_create_temp_dir"]
    cls._create_temp_dir = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._create_temp_dir = original  # type: ignore[method-assign]


def read_only_error(obj: FakeFile, path: str | None = None) -> NoReturn:
    obj.filesystem.raise_os_error(errno.EROFS, path if path is not None else obj.path)


def join(directory: str, name: str) -> str:
    # String operations, not posixpath: while pyfakefs patches, posixpath is
    # its fake one, ten times slower, and this runs once per entry.
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


class LazyDirectory(FakeDirectory):
    """A directory whose children are put in place when something first looks inside."""

    # Instances set these; the class defaults serve directories grafted from an
    # existing filesystem and those already loaded.
    _am_loader: Loader | None = None
    _am_path: str = ""

    @property
    def loaded(self) -> bool:
        return self._am_loader is None

    @property
    def entries(self) -> dict[str, FakeFile]:
        loader = self._am_loader
        if loader is not None:
            self._am_loader = None
            loader.load(self)
        return self._entries

    @property
    def ordered_dirs(self) -> list[str]:
        self.entries  # noqa: B018 - loads the children
        return super().ordered_dirs

    @property
    def size(self) -> int:
        # pyfakefs sums the whole subtree; an unloaded directory holds nothing yet.
        return 0 if self._am_loader is not None else super().size

    @size.setter
    def size(self, st_size: int) -> None:
        self.filesystem.raise_os_error(errno.EISDIR, self.path)


class _Sealed:
    """Attribute writes of a read-only mount's objects: access times ignored, the rest EROFS."""

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _ACCESS_TIMES:
            return  # reading never updates access times on a read-only mount
        if key in _SEALED:
            read_only_error(self)  # type: ignore[arg-type]
        super().__setattr__(key, value)


class ReadOnlyDirectory(_Sealed, LazyDirectory):
    """A directory of a read-only mount: no entry can be added, removed or changed."""

    def add_entry(self, path_object: FakeFile) -> None:
        name = helpers.to_string(path_object.name)
        path = join(helpers.to_string(self.path), name)
        if name in self.entries:
            # Linux checks existence first: mkdir of an existing directory is EEXIST.
            self.filesystem.raise_os_error(errno.EEXIST, path)
        read_only_error(self, path)

    def remove_entry(self, pathname_name: str, recursive: bool = True) -> None:
        directory = helpers.to_string(self.path)
        read_only_error(self, join(directory, helpers.to_string(pathname_name)))


class ReadOnlyFile(_Sealed, FakeFile):
    """A file or symlink of a read-only mount: readable, never changed."""

    def has_permission(self, permission_bits: int) -> bool:
        # The kernel refuses write access on a read-only mount before it looks
        # at the mode bits: EROFS, not EACCES.
        if permission_bits & helpers.PERM_WRITE:
            read_only_error(self)
        return super().has_permission(permission_bits)

    def set_initial_contents(self, contents: AnyStr) -> bool:
        read_only_error(self)

    def set_contents(self, contents: AnyStr, encoding: str | None = None) -> bool:
        read_only_error(self)

    def set_large_file_size(self, st_size: int) -> None:
        read_only_error(self)

    @property
    def size(self) -> int:
        return self.st_size

    @size.setter
    def size(self, st_size: int) -> None:
        read_only_error(self)


class ReadOnlyXattrs(dict[str, bytes]):
    """Extended attributes on a read-only mount: readable, never set or removed."""

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


_NO_XATTRS: Final = ReadOnlyXattrs()


def is_read_only(obj: FakeFile) -> bool:
    """True for an object of a read-only mount."""
    return isinstance(obj, ReadOnlyDirectory | ReadOnlyFile)


class _Prototype:
    """Clones one kind of pyfakefs object without running its constructor.

    The prototype is built by pyfakefs's own constructor, so a clone carries
    whatever attributes the installed pyfakefs sets; only the per-object ones
    are replaced (about 1.5 µs an object, where the constructors take 10).
    """

    def __init__(self, cls: type[FakeFile], is_dir: bool) -> None:
        fs = _scratch_filesystem()
        proto: FakeFile
        if is_dir:
            proto = FakeDirectory("prototype", 0o755, filesystem=fs)
        else:
            proto = FakeFile("prototype", stat.S_IFREG | 0o644, contents=b"", filesystem=fs)  # type: ignore[type-var]
        self.cls = cls
        # _am_made tells what the view made from what the start-up created.
        self.attrs = {**proto.__dict__, "_am_made": True}
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
    return new_filesystem(0o022)


@functools.cache
def _prototype(is_dir: bool, readonly: bool) -> _Prototype:
    if is_dir:
        return _Prototype(ReadOnlyDirectory if readonly else LazyDirectory, is_dir)
    return _Prototype(ReadOnlyFile if readonly else FakeFile, is_dir)


def make_object(
    fs: FakeFilesystem,
    name: str,
    st_mode: int,
    uid: int,
    gid: int,
    *,
    readonly: bool = False,
    contents: bytes = b"",
    loader: Loader | None = None,
    path: str = "",
    made: bool = True,
) -> FakeFile:
    """A new directory, file or symlink object, not yet in any directory.

    A directory with a *loader* fills itself from it when first looked
    inside; *path* is its path for the loader. A symlink's *contents* is its
    target (bytes; surrogate escapes keep tar's non-UTF-8 names). *made*
    False marks what the start-up created, as opposed to what the view shows.
    """
    fs_ref = weakref.ref(fs)
    is_dir = stat.S_ISDIR(st_mode)
    obj = _prototype(is_dir, readonly).clone(fs_ref, name, st_mode, uid, gid)
    if not made:
        obj.__dict__["_am_made"] = False
    if is_dir:
        obj.__dict__.update(_am_loader=loader, _am_path=path)
        return obj
    if stat.S_ISLNK(st_mode):
        obj.__dict__.update(encoding="utf-8", errors="surrogateescape")
    obj.__dict__["_byte_contents"] = contents
    obj.stat_result.st_size = len(contents)
    return obj


def insert(directory: FakeDirectory, obj: FakeFile, *, mount: bool = False) -> None:
    """What ``FakeDirectory.add_entry`` does, less its checks (the caller decided).

    *mount* makes *obj* the root of a mount of its own: its own device, as a
    bind mount has, so renames and hard links across it fail with EXDEV.
    """
    fs = directory.filesystem
    directory._entries[helpers.to_string(obj.name)] = obj
    obj.__dict__["parent_dir"] = weakref.ref(directory)
    fs.last_ino += 1
    st = obj.stat_result
    st.st_ino = fs.last_ino
    st.st_nlink += 1
    st.st_dev = directory.stat_result.st_dev
    directory.stat_result.st_nlink += 1
    if mount:
        fs.last_dev += 1
        st.st_dev = fs.last_dev
        fs.mount_points[obj.__dict__.get("_am_path") or helpers.to_string(obj.name)] = {
            "idev": st.st_dev,
            "total_size": None,
            "used_size": 0,
        }


def graft(
    directory: FakeDirectory,
    loader: Loader,
    path: str,
    st_mode: int,
    uid: int,
    gid: int,
    *,
    readonly: bool = False,
) -> None:
    """Make an existing plain directory show these attributes and *loader*'s children too."""
    directory.__class__ = ReadOnlyDirectory if readonly else LazyDirectory
    directory.__dict__.update(_am_loader=loader, _am_path=path)
    st = directory.stat_result
    st.st_mode = st_mode
    st.st_uid, st.st_gid = uid, gid


def unloaded_entries(directory: FakeDirectory) -> dict[str, FakeFile]:
    """The children already in place, without loading a lazy directory."""
    return directory._entries


def is_made(obj: FakeFile) -> bool:
    """True when the view made *obj*; False for what the start-up or a user created."""
    return bool(obj.__dict__.get("_am_made"))


def symlink_target(obj: FakeFile) -> str:
    """A symlink object's target as text (tar's non-UTF-8 bytes as surrogate escapes)."""
    raw = obj.__dict__.get("_byte_contents")
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "surrogateescape")
    return obj.contents or ""


def byte_contents(obj: FakeFile) -> bytes:
    """A file object's bytes."""
    raw = obj.byte_contents
    return raw if isinstance(raw, bytes) else b""


def lookup_child(directory: FakeDirectory, name: str) -> FakeFile | None:
    """A child for a path walk: through the loader when the directory is lazy."""
    loader = directory._am_loader if isinstance(directory, LazyDirectory) else None
    if loader is not None:
        return loader.child(directory, name)
    return directory._entries.get(name)
