"""Linux semantics for code under test: hooks on a patched pyfakefs filesystem.

pyfakefs resolves paths without checking search permission on the
directories it passes, treats ``..`` textually, asks for read permission
where Linux asks for search, and answers ``os.access`` from the owner bits
alone. :func:`install` puts instance attributes on one filesystem (and its
fake ``os`` module) so that path resolution goes through
:class:`~addon_mount._linux._vfs.LinuxFS` and errno come in Linux's order;
:func:`uninstall` removes them. Only this module and ``_objects`` touch
pyfakefs internals; ``tests/test_linux.py`` holds them to the tested
pyfakefs version.
"""

from __future__ import annotations

import errno
import posixpath
import stat
import time
from typing import Any, Final

from pyfakefs import helpers
from pyfakefs.fake_file import FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from ._objects import (
    ReadOnlyDirectory,
    ReadOnlyFile,
    is_read_only,
    lookup_child,
    read_only_error,
)
from ._vfs import Cred, LinuxError, LinuxFS

#: The pyfakefs releases whose internals these hooks are tested against.
PYFAKEFS_TESTED: Final = ("6.3",)

_FS_HOOKS: Final = (
    "resolve_path",
    "get_object_from_normpath",
    "lresolve",
    "remove",
    "rmdir",
    "rename",
    "link",
    "add_open_file",
    "chmod",
    "utime",
)
#: What :func:`install` puts on the fake ``os`` module.
_OS_HOOKS: Final = ("access", "open", "chown", "lchown", "fchown", "truncate", "ftruncate")
_OPENING: Final = "_am_opening"


def _cred() -> Cred:
    return Cred(helpers.get_uid(), helpers.get_gid())


def _text(path: Any) -> str | None:
    try:
        made = helpers.make_string_path(path)
    except TypeError:
        return None
    return None if made is None else helpers.to_string(made)


def _linux_resolution(fs: FakeFilesystem, linux: LinuxFS) -> dict[str, Any]:
    """resolve_path, get_object_from_normpath and lresolve as Linux walks paths."""
    cls = type(fs)

    def resolve_path(file_path: Any, allow_fd: bool = False) -> Any:
        text = None if (allow_fd and isinstance(file_path, int)) else _text(file_path)
        if not text or text == fs.devnull:
            return cls.resolve_path(fs, file_path, allow_fd)
        linux.cwd = helpers.to_string(fs.cwd)
        try:
            walked = linux.walk(text, _cred(), create=True)
        except LinuxError as exc:
            if exc.errno in (errno.EACCES, errno.ELOOP, errno.ENAMETOOLONG):
                raise
            # A missing or non-directory component: pyfakefs reports it where it does.
            return cls.resolve_path(fs, file_path, allow_fd)
        resolved = walked.path
        return resolved.encode() if isinstance(file_path, bytes) else resolved

    def get_object_from_normpath(
        file_path: Any,
        check_read_perm: bool = True,
        check_exe_perm: bool = True,
        check_owner: bool = False,
    ) -> FakeFile:
        # The walk checked search permission on the way; Linux asks nothing of
        # the object itself except, for reading it, read permission.
        obj: FakeFile = cls.get_object_from_normpath(fs, file_path, False, False, False)
        uid = helpers.get_uid()
        if (
            check_read_perm
            and uid != 0
            and not (check_owner and obj.st_uid == uid)
            and not obj.has_permission(helpers.PERM_READ)
        ):
            fs.raise_os_error(errno.EACCES, obj.path)
        return obj

    def lresolve(path: Any) -> FakeFile:
        text = _text(path)
        if not text:
            return cls.lresolve(fs, path)
        linux.cwd = helpers.to_string(fs.cwd)
        walked = linux.walk(text, _cred(), follow=False)
        if walked.obj is None:  # pragma: no cover - walk raises for a missing name
            fs.raise_os_error(errno.ENOENT, text)
        return walked.obj

    return {
        "resolve_path": resolve_path,
        "get_object_from_normpath": get_object_from_normpath,
        "lresolve": lresolve,
    }


def _access(fs: FakeFilesystem, linux: LinuxFS) -> Any:
    def access(
        path: Any,
        mode: int,
        *,
        dir_fd: int | None = None,
        effective_ids: bool | None = None,
        follow_symlinks: bool | None = None,
    ) -> bool:
        if dir_fd is not None:
            raise NotImplementedError("access: dir_fd is not simulated")
        text = _text(path)
        if not text:
            return False
        linux.cwd = helpers.to_string(fs.cwd)
        return linux.access(text, mode, _cred(), follow=follow_symlinks is not False)

    return access


def install(fs: FakeFilesystem, os_module: Any | None = None) -> None:
    """Make *fs* (and its fake ``os`` module) answer as Linux does, until :func:`uninstall`."""
    linux = LinuxFS(fs, lookup=lookup_child)
    fs.__dict__.update(_linux_resolution(fs, linux))
    fs.__dict__.update(_guard(fs))
    fs.__dict__.update(_attribute_changes(fs))
    if os_module is not None:
        os_module.__dict__["access"] = _access(fs, linux)
        os_module.__dict__.update(_os_attribute_changes(fs, os_module))
        fs.__dict__["_am_os_module"] = os_module


def uninstall(fs: FakeFilesystem) -> None:
    """Remove what :func:`install` put on *fs*."""
    for name in (*_FS_HOOKS, _OPENING):
        fs.__dict__.pop(name, None)
    os_module = fs.__dict__.pop("_am_os_module", None)
    if os_module is not None:
        for name in _OS_HOOKS:
            os_module.__dict__.pop(name, None)


# -- errno order: EROFS before what pyfakefs checks first ----------------------------


def _parent_object(fs: FakeFilesystem, path: Any) -> FakeFile | None:
    """The directory holding *path*'s last component (symlinks before it followed)."""
    try:
        text = fs.absnormpath(helpers.to_string(helpers.make_string_path(path)))
        parent, _, name = text.rpartition("/")
        if name in ("", ".", ".."):
            return None
        obj: FakeFile = fs.resolve(parent or "/")
    except (OSError, TypeError):
        return None  # the original call reports it
    return obj


def _guard(fs: FakeFilesystem) -> dict[str, Any]:
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
    def add_open_file(file_obj: Any, new_fd: int = -1) -> int:
        opened = getattr(file_obj, "file_object", None)
        if isinstance(opened, ReadOnlyFile) and getattr(file_obj, "allow_update", False):
            read_only_error(opened)
        fd: int = cls.add_open_file(fs, file_obj, new_fd)
        return fd

    return {
        "remove": remove,
        "rmdir": rmdir,
        "rename": rename,
        "link": link,
        "add_open_file": add_open_file,
    }


# -- changing a file's attributes: who may, and what the kernel clears -----------------


def _in_group(gid: int) -> bool:
    """True when the caller is in group *gid*, or is root (a session has no other groups)."""
    return helpers.get_uid() == 0 or gid == helpers.get_gid()


def _owner_or_root(obj: FakeFile) -> bool:
    uid = helpers.get_uid()
    return uid in (0, obj.st_uid)


def _perm_error(obj: FakeFile) -> None:
    raise PermissionError(errno.EPERM, "Operation not permitted", helpers.to_string(obj.path))


def _dropped_on_chown(obj: FakeFile) -> int:
    """The set-id bits the kernel clears when a regular file's owner or group is set.

    ``chown_common`` asks for ATTR_KILL_SUID (setuid always goes) and
    ``setattr_should_drop_sgid`` (setgid goes when group-executable, or when
    the caller is not in the file's group).
    """
    mode: int = obj.st_mode
    if not stat.S_ISREG(mode):
        return 0
    dropped = mode & stat.S_ISUID
    if mode & stat.S_ISGID and (mode & stat.S_IXGRP or not _in_group(obj.st_gid)):
        dropped |= stat.S_ISGID
    return dropped


def _changeable(fs: FakeFilesystem, path: Any, follow_symlinks: bool) -> FakeFile:
    """The object an attribute change acts on; EROFS in a read-only mount, before any EPERM."""
    obj: FakeFile = fs.resolve(path, follow_symlinks, allow_fd=True, check_read_perm=False)
    if is_read_only(obj):
        read_only_error(obj)
    return obj


def _attribute_changes(fs: FakeFilesystem) -> dict[str, Any]:
    """chmod and utime as ``setattr_prepare`` allows them: EROFS, then EPERM or EACCES."""
    cls = type(fs)

    def target(path: Any, follow_symlinks: bool) -> FakeFile:
        return _changeable(fs, path, follow_symlinks)

    def chmod(
        path: Any, mode: int, follow_symlinks: bool = True, force_unix_mode: bool = False
    ) -> None:
        # pyfakefs's os.open ends with a chmod of what it opened to its mode
        # argument, existing files too. Linux gives the mode, less the umask,
        # to a file the open created, and leaves an existing file alone.
        if _OPENING in fs.__dict__:
            if not fs.__dict__.pop(_OPENING):
                cls.chmod(fs, path, mode & ~fs.umask, follow_symlinks, force_unix_mode)
            return
        obj = target(path, follow_symlinks)
        if not _owner_or_root(obj):
            _perm_error(obj)
        if not _in_group(obj.st_gid):
            mode &= ~stat.S_ISGID  # setattr_prepare: setgid only for the file's group
        cls.chmod(fs, path, mode, follow_symlinks, force_unix_mode)

    def utime(
        path: Any,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        obj = target(path, follow_symlinks)
        if not _owner_or_root(obj):
            if times is not None or ns is not None:
                _perm_error(obj)  # setting given times: the owner only
            if not obj.has_permission(helpers.PERM_WRITE):
                # "now": the owner, or whoever may write the file.
                fs.raise_os_error(errno.EACCES, helpers.to_string(obj.path))
        cls.utime(fs, path, times, ns=ns, follow_symlinks=follow_symlinks)

    return {"chmod": chmod, "utime": utime}


def _os_attribute_changes(fs: FakeFilesystem, os_module: Any) -> dict[str, Any]:
    """chown, lchown, fchown, truncate and ftruncate as the kernel allows them."""

    def target_path(path: Any, dir_fd: int) -> Any:
        text = _text(path)
        if text is None or text.startswith("/"):
            return path
        directory = fs.get_open_file(dir_fd).get_object()
        if not isinstance(directory, FakeFile):
            fs.raise_os_error(errno.EBADF, text)
        return posixpath.join(helpers.to_string(directory.path), text)

    def target(path: Any, dir_fd: int | None, follow_symlinks: bool) -> FakeFile:
        if dir_fd is not None and not isinstance(path, int):
            path = target_path(path, dir_fd)
        return _changeable(fs, path, follow_symlinks)

    def chown(
        path: Any,
        uid: int,
        gid: int,
        *,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        if not isinstance(uid, int) or not isinstance(gid, int):
            raise TypeError("an integer is required")
        obj = target(path, dir_fd, follow_symlinks)
        me = helpers.get_uid()
        owner = obj.st_uid == me
        dropped = _dropped_on_chown(obj)
        if me != 0:
            # chown_ok and chgrp_ok: a non-root owner may only give the file to
            # a group of theirs; clearing set-id bits is a mode change (owner only).
            if uid != -1 and not (owner and uid == obj.st_uid):
                _perm_error(obj)
            if gid != -1 and not (owner and (gid == obj.st_gid or _in_group(gid))):
                _perm_error(obj)
            if dropped and not owner:
                _perm_error(obj)
        if uid != -1:
            obj.st_uid = uid
        if gid != -1:
            obj.st_gid = gid
        if dropped:
            obj.st_mode &= ~dropped
        obj.st_ctime = time.time()

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        # Whether the file is there decides what the chmod pyfakefs ends with does.
        try:
            existed = fs.exists(path if dir_fd is None else target_path(path, dir_fd))
        except (OSError, TypeError):
            existed = False
        fs.__dict__[_OPENING] = existed
        try:
            fd: int = type(os_module).open(os_module, path, flags, mode, dir_fd=dir_fd)
        finally:
            fs.__dict__.pop(_OPENING, None)
        return fd

    def lchown(path: Any, uid: int, gid: int) -> None:
        chown(path, uid, gid, follow_symlinks=False)

    def fchown(fd: int, uid: int, gid: int) -> None:
        chown(fd, uid, gid)

    def resize(obj: FakeFile, length: int) -> None:
        if helpers.get_uid() != 0:
            # A write by someone without CAP_FSETID clears the set-id bits.
            obj.st_mode &= ~_dropped_on_write(obj.st_mode)
        obj.size = length

    def truncate(path: Any, length: int) -> None:
        if length < 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        if isinstance(path, int):
            ftruncate(path, length)
            return
        obj: FakeFile = fs.resolve(path, allow_fd=False, check_read_perm=False)
        if stat.S_ISDIR(obj.st_mode):
            fs.raise_os_error(errno.EISDIR, helpers.to_string(obj.path))
        if not stat.S_ISREG(obj.st_mode):
            fs.raise_os_error(errno.EINVAL, helpers.to_string(obj.path))
        if is_read_only(obj):
            read_only_error(obj)
        if helpers.get_uid() != 0 and not obj.has_permission(helpers.PERM_WRITE):
            fs.raise_os_error(errno.EACCES, helpers.to_string(obj.path))
        resize(obj, length)

    def ftruncate(fd: int, length: int) -> None:
        if length < 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        handle = fs.get_open_file(fd)
        obj = handle.get_object()
        if (
            not isinstance(obj, FakeFile)
            or not getattr(handle, "allow_update", False)
            or not stat.S_ISREG(obj.st_mode)
        ):
            raise OSError(errno.EINVAL, "Invalid argument")  # not open for writing
        resize(obj, length)

    return {
        "open": open_,
        "chown": chown,
        "lchown": lchown,
        "fchown": fchown,
        "truncate": truncate,
        "ftruncate": ftruncate,
    }


def _dropped_on_write(mode: int) -> int:
    """``should_remove_suid``: setuid, and setgid when group-executable, of a regular file."""
    if not stat.S_ISREG(mode):
        return 0
    dropped = mode & stat.S_ISUID
    if mode & stat.S_ISGID and mode & stat.S_IXGRP:
        dropped |= stat.S_ISGID
    return dropped
