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
from typing import Any, Final

from pyfakefs import helpers
from pyfakefs.fake_file import FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from ._objects import ReadOnlyDirectory, ReadOnlyFile, lookup_child, read_only_error
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
)
_OPENED: Final = "_am_opened"


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
    if os_module is not None:
        os_module.__dict__["access"] = _access(fs, linux)
        fs.__dict__["_am_os_module"] = os_module


def uninstall(fs: FakeFilesystem) -> None:
    """Remove what :func:`install` put on *fs*."""
    for name in (*_FS_HOOKS, _OPENED):
        fs.__dict__.pop(name, None)
    os_module = fs.__dict__.pop("_am_os_module", None)
    if os_module is not None:
        os_module.__dict__.pop("access", None)


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
    # And pyfakefs's os.open ends with a chmod of what it opened (its mode
    # argument): harmless elsewhere, it would make every os.open in a mount
    # fail, so the open is remembered and that one chmod, only it, is skipped.
    def add_open_file(file_obj: Any, new_fd: int = -1) -> int:
        opened = getattr(file_obj, "file_object", None)
        if isinstance(opened, ReadOnlyFile) and getattr(file_obj, "allow_update", False):
            read_only_error(opened)
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

    return {
        "remove": remove,
        "rmdir": rmdir,
        "rename": rename,
        "link": link,
        "add_open_file": add_open_file,
        "chmod": chmod,
    }
