"""Linux path resolution and the system calls a workload's start-up makes.

Each call walks a pyfakefs object tree as the kernel's ``namei`` does and
raises :class:`LinuxError` (an ``OSError``) with the errno Linux gives, in
the order Linux checks:

- every directory a walk passes, through symlinks too, needs search (x)
  permission, checked before its next component is looked up; a component
  that is not a directory is ENOTDIR before that;
- ``..`` is the physical parent (after following a symlink, not the
  textual one); after 40 symlinks a walk fails with ELOOP; an empty target
  is ENOENT;
- ``fs.protected_symlinks``: a symlink that ends a path, in a sticky
  world-writable directory, is followed only by its owner, or when the
  directory's owner owns it (a link walked through is followed);
- permission checks use one class of bits (owner, else group, else other)
  and no supplementary groups unless given; root reads and writes anything,
  searches any directory, and executes a file only when some x bit is set;
- creating (``symlink``, ``mkdir``) gives EEXIST when the name exists
  (dangling symlinks, ``.`` and ``..`` included), then EROFS on a read-only
  mount, then EACCES without write and search permission on the parent.

Verified against the kernel by ``tests/test_kernel_oracle.py``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable
from typing import Final

import attrs
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from ._objects import insert, is_read_only, make_object, symlink_target

# Linux gives up resolving a path after this many symlinks (ELOOP).
MAX_SYMLINKS: Final = 40
# Linux's PATH_MAX and NAME_MAX (ENAMETOOLONG).
PATH_MAX: Final = 4096
NAME_MAX: Final = 255

MAY_EXEC: Final = 1
MAY_WRITE: Final = 2
MAY_READ: Final = 4


@attrs.frozen
class Cred:
    """Who makes a call: uid, gid and supplementary groups (none by default)."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    @property
    def is_root(self) -> bool:
        return self.uid == 0


ROOT: Final = Cred(0, 0)


class LinuxError(OSError):
    """An ``OSError`` with what refused: the path where the walk stopped and why.

    ``at`` is the path of the object that refused (a directory cdsw may not
    search, a component that is not a directory, the symlink that dangles or
    loops); ``need`` says which permission was missing ("search", "write
    in", "read", "execute"), when it was a permission.
    """

    def __init__(self, code: int, path: str, *, at: str | None = None, need: str = "") -> None:
        super().__init__(code, os.strerror(code), path)
        self.at = at if at is not None else path
        self.need = need
        self.obj: FakeFile | None = None


class _PermissionError(LinuxError, PermissionError):
    pass


class _FileNotFoundError(LinuxError, FileNotFoundError):
    pass


class _FileExistsError(LinuxError, FileExistsError):
    pass


class _NotADirectoryError(LinuxError, NotADirectoryError):
    pass


_CLASSES: Final[dict[int, type[LinuxError]]] = {
    errno.EACCES: _PermissionError,
    errno.EPERM: _PermissionError,
    errno.ENOENT: _FileNotFoundError,
    errno.EEXIST: _FileExistsError,
    errno.ENOTDIR: _NotADirectoryError,
}


def linux_error(code: int, path: str, *, at: str | None = None, need: str = "") -> LinuxError:
    """A :class:`LinuxError` that is also the ``OSError`` subclass Python raises for *code*."""
    return _CLASSES.get(code, LinuxError)(code, path, at=at, need=need)


def permitted(obj: FakeFile, cred: Cred, mask: int) -> bool:
    """Linux's ``generic_permission``: may *cred* read/write/exec *obj* (mode bits only)."""
    return permitted_mode(obj.st_mode, obj.st_uid, obj.st_gid, cred, mask)


def permitted_mode(mode: int, uid: int, gid: int, cred: Cred, mask: int) -> bool:
    """:func:`permitted` for an object given by its ``st_mode``, owner and group."""
    if cred.is_root:
        # CAP_DAC_OVERRIDE: anything, but a file is executable only with some x bit.
        return not (mask & MAY_EXEC and not stat.S_ISDIR(mode) and not mode & 0o111)
    if uid == cred.uid:
        bits = mode >> 6
    elif gid == cred.gid or gid in cred.groups:
        bits = mode >> 3
    else:
        bits = mode
    return bits & mask == mask


def describe(obj: FakeFile) -> str:
    """Owner, group and mode, as messages show them."""
    return f"owner uid {obj.st_uid}, group {obj.st_gid}, mode {stat.S_IMODE(obj.st_mode):03o}"


@attrs.define
class Walked:
    """Where a walk ended: the directory chain, the last name and what it names.

    ``chain`` holds (path, directory object) pairs from the root to the
    parent of ``name``; ``obj`` is None when ``name`` does not exist.
    """

    chain: list[tuple[str, FakeDirectory]]
    name: str
    obj: FakeFile | None

    @property
    def parent(self) -> FakeDirectory:
        return self.chain[-1][1]

    @property
    def parent_path(self) -> str:
        return self.chain[-1][0]

    @property
    def path(self) -> str:
        if self.name in ("", ".", ".."):
            return self.parent_path
        parent = self.parent_path
        return parent + self.name if parent.endswith("/") else f"{parent}/{self.name}"


Lookup = Callable[[FakeDirectory, str], "FakeFile | None"]


def _default_lookup(directory: FakeDirectory, name: str) -> FakeFile | None:
    return directory.entries.get(name)


class LinuxFS:
    """Linux system calls on a pyfakefs object tree, each for an explicit caller.

    *lookup* finds a child of a directory (a lazy view puts it in place);
    *cwd* is where relative paths start.
    """

    def __init__(
        self,
        fs: FakeFilesystem,
        *,
        lookup: Lookup = _default_lookup,
        protected_symlinks: bool = True,
        umask: int = 0o022,
    ) -> None:
        self.fs = fs  # objects refer to their filesystem weakly: keep it alive
        self.root: FakeDirectory = fs.root
        self.lookup = lookup
        self.protected_symlinks = protected_symlinks
        self.umask = umask
        self.cwd = "/"

    # -- path resolution ------------------------------------------------------------

    def _start(self, path: str) -> list[tuple[str, FakeDirectory]]:
        if path.startswith("/"):
            return [("/", self.root)]
        if self.cwd == "/":
            return [("/", self.root)]
        walked = self.walk(self.cwd, ROOT)
        obj = walked.obj
        if not isinstance(obj, FakeDirectory):  # pragma: no cover - cwd is a directory
            raise linux_error(errno.ENOENT, self.cwd)
        return [*walked.chain, (walked.path, obj)]

    def walk(self, path: str, cred: Cred, *, follow: bool = True, create: bool = False) -> Walked:
        """Resolve *path* as *cred*; the last component is followed when *follow*.

        With *create*, a missing last component is no error (``obj`` is None);
        otherwise a missing one is ENOENT. Raises :class:`LinuxError`.
        """
        if not path:
            raise linux_error(errno.ENOENT, path)
        if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            raise linux_error(errno.ENAMETOOLONG, path)
        chain = self._start(path)
        trailing = path.endswith("/") and path.strip("/") != ""
        todo = deque(p for p in path.split("/") if p)
        links = 0
        name = "."
        obj: FakeFile = chain[-1][1]
        while todo:
            name = todo.popleft()
            current_path, current = chain[-1]
            if not isinstance(current, FakeDirectory):  # pragma: no cover - chain holds dirs
                raise linux_error(errno.ENOTDIR, path, at=current_path)
            if not permitted(current, cred, MAY_EXEC):
                raise linux_error(errno.EACCES, path, at=current_path, need="search")
            last = not todo
            if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise linux_error(errno.ENAMETOOLONG, path)
            if name == ".":
                obj = current
                continue
            if name == "..":
                if len(chain) > 1:
                    chain.pop()
                obj = chain[-1][1]
                continue
            child = self.lookup(current, name)
            child_path = _join(current_path, name)
            if child is None:
                if last and create:
                    return Walked(chain, name, None)
                raise linux_error(errno.ENOENT, path, at=child_path)
            if stat.S_ISLNK(child.st_mode) and (not last or follow or trailing):
                links += 1
                if links > MAX_SYMLINKS:
                    raise linux_error(errno.ELOOP, path, at=child_path)
                # The kernel asks may_follow_link only of a path's last component
                # (trailing_symlink): a link walked through is followed.
                if last and self.protected_symlinks and not self._may_follow(current, child, cred):
                    raise linux_error(errno.EACCES, path, at=child_path, need="follow")
                target = symlink_target(child)
                if not target:
                    raise linux_error(errno.ENOENT, path, at=child_path)
                if target.startswith("/"):
                    del chain[1:]
                parts = [p for p in target.split("/") if p]
                if not parts:  # a link to "/"
                    obj = chain[-1][1]
                todo.extendleft(reversed(parts))
                continue
            obj = child
            if todo or (trailing and stat.S_ISDIR(child.st_mode)):
                if not stat.S_ISDIR(child.st_mode):
                    raise linux_error(errno.ENOTDIR, path, at=child_path)
                chain.append((child_path, child))  # type: ignore[arg-type]
                if not todo:
                    return Walked(chain[:-1], name, child)
                continue
            return Walked(chain, name, child)
        # The path ended on a directory reached by '.', '..', '/' or a symlink:
        # the chain's last directory is what it names.
        if trailing and not stat.S_ISDIR(obj.st_mode):
            raise linux_error(errno.ENOTDIR, path)
        return Walked(chain, ".", obj)

    def _may_follow(self, directory: FakeFile, link: FakeFile, cred: Cred) -> bool:
        # Linux's may_follow_link: no capability overrides it, root included.
        if link.st_uid == cred.uid:
            return True
        sticky_world = stat.S_ISVTX | stat.S_IWOTH
        if directory.st_mode & sticky_world != sticky_world:
            return True
        return bool(directory.st_uid == link.st_uid)

    # -- system calls -----------------------------------------------------------------

    def stat(self, path: str, cred: Cred, *, follow: bool = True) -> FakeFile:
        """``stat``/``lstat``: the object at *path*."""
        walked = self.walk(path, cred, follow=follow)
        if walked.obj is None:  # pragma: no cover - walk raised
            raise linux_error(errno.ENOENT, path)
        return walked.obj

    def exists(self, path: str, cred: Cred) -> bool:
        """``os.path.exists``: stat succeeds."""
        try:
            self.stat(path, cred)
        except OSError:
            return False
        return True

    def isdir(self, path: str, cred: Cred) -> bool:
        """``os.path.isdir``: stat succeeds and says directory."""
        try:
            return stat.S_ISDIR(self.stat(path, cred).st_mode)
        except OSError:
            return False

    def open_read(self, path: str, cred: Cred) -> FakeFile:
        """``open(path, O_RDONLY)``: read permission on what the path names."""
        obj = self.stat(path, cred)
        if not permitted(obj, cred, MAY_READ):
            raise linux_error(errno.EACCES, path, at=path, need="read")
        return obj

    def listdir(self, path: str, cred: Cred) -> FakeDirectory:
        """``opendir``: a directory cdsw may read."""
        obj = self.stat(path, cred)
        if not isinstance(obj, FakeDirectory):
            raise linux_error(errno.ENOTDIR, path, at=path)
        if not permitted(obj, cred, MAY_READ):
            raise linux_error(errno.EACCES, path, at=path, need="read")
        return obj

    def search(self, path: str, cred: Cred) -> FakeDirectory:
        """``stat(path + "/.")``: a directory cdsw may enter."""
        obj = self.stat(path, cred)
        if not isinstance(obj, FakeDirectory):
            raise linux_error(errno.ENOTDIR, path, at=path)
        if not permitted(obj, cred, MAY_EXEC):
            raise linux_error(errno.EACCES, path, at=path, need="search")
        return obj

    def access(self, path: str, mode: int, cred: Cred, *, follow: bool = True) -> bool:
        """``access(2)``: F_OK, R_OK, W_OK, X_OK as Linux answers them."""
        try:
            obj = self.stat(path, cred, follow=follow)
        except OSError:
            return False
        mask = (
            (MAY_READ if mode & os.R_OK else 0)
            | (MAY_WRITE if mode & os.W_OK else 0)
            | (MAY_EXEC if mode & os.X_OK else 0)
        )
        if mask & MAY_WRITE and is_read_only(obj):
            return False  # EROFS
        return not mask or permitted(obj, cred, mask)

    def _create(self, path: str, cred: Cred) -> Walked:
        """The checks before creating *path*: EEXIST, then EROFS, then EACCES."""
        walked = self.walk(path, cred, follow=False, create=True)
        if walked.obj is not None or walked.name in (".", ".."):
            raise linux_error(errno.EEXIST, path, at=walked.path)
        parent = walked.parent
        if is_read_only(parent):
            raise linux_error(errno.EROFS, path, at=walked.parent_path)
        if not permitted(parent, cred, MAY_WRITE | MAY_EXEC):
            raise linux_error(errno.EACCES, path, at=walked.parent_path, need="write in")
        return walked

    def _owner(self, parent: FakeDirectory, cred: Cred) -> tuple[int, int, int]:
        """(uid, gid, extra mode bits) of a new entry: a setgid directory passes its group."""
        if parent.st_mode & stat.S_ISGID:
            return cred.uid, parent.st_gid, stat.S_ISGID
        return cred.uid, cred.gid, 0

    def symlink(self, target: str, path: str, cred: Cred) -> FakeFile:
        """``symlink(target, path)``."""
        walked = self._create(path, cred)
        uid, gid, _ = self._owner(walked.parent, cred)
        obj = make_object(
            walked.parent.filesystem,
            walked.name,
            stat.S_IFLNK | 0o777,
            uid,
            gid,
            contents=target.encode("utf-8", "surrogateescape"),
            made=False,
        )
        insert(walked.parent, obj)
        return obj

    def mkdir(self, path: str, mode: int, cred: Cred) -> FakeDirectory:
        """``mkdir(path, mode)`` under the umask."""
        walked = self._create(path, cred)
        uid, gid, setgid = self._owner(walked.parent, cred)
        obj = make_object(
            walked.parent.filesystem,
            walked.name,
            stat.S_IFDIR | (mode & ~self.umask & 0o7777) | setgid,
            uid,
            gid,
            made=False,
        )
        insert(walked.parent, obj)
        return obj  # type: ignore[return-value]

    def makedirs(self, path: str, mode: int, cred: Cred) -> list[str]:
        """Python's ``os.makedirs(path, mode, exist_ok=True)``; returns what it created.

        The same steps, so the same errno: a parent that is a dangling
        symlink exists for ``mkdir`` (EEXIST) but not for ``stat``, so the
        call fails with EEXIST or ENOENT.
        """
        created: list[str] = []
        self._makedirs(path, mode, cred, created)
        return created

    def _makedirs(self, name: str, mode: int, cred: Cred, created: list[str]) -> None:
        head, _, tail = name.rstrip("/").rpartition("/") if name != "/" else ("", "", "")
        if not head and name.startswith("/"):
            head = "/"
        if head and tail and not self.exists(head, cred):
            try:
                self._makedirs(head, mode, cred, created)
            except OSError as exc:
                # As Python: FileExistsError is taken as another process having made it.
                if exc.errno != errno.EEXIST:
                    raise
            if tail == ".":
                return
        try:
            self.mkdir(name, mode, cred)
        except OSError:
            if not self.isdir(name, cred):
                raise
        else:
            created.append(name)


def _join(directory: str, name: str) -> str:
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


def errno_name(code: int | None) -> str:
    """'EACCES' for errno.EACCES."""
    return errno.errorcode.get(code or 0, str(code))
