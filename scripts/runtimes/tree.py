"""The model of a root filesystem being built: the entries a Dockerfile leaves behind."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable

import attrs

from addon_mount._runtime import DIRECTORY, FILE, SYMLINK, Entry, parent_of

ROOT = 0
#: uid and gid of the cdsw user, from the Dockerfiles' addgroup/adduser.
CDSW = 8536


def placeholder_size(path: str) -> int:
    """A stable, plausible size for a modelled file (real contents are never known)."""
    return 200 + zlib.crc32(path.encode()) % 60_000


class ModelError(ValueError):
    """A step asked for something the tree cannot do (a bug in the catalog)."""


class Tree:
    """A mutable root filesystem.

    Paths are absolute and real: a step writes ``/usr/lib/...``, never through
    the ``/lib`` symlink. Parents a step needs are created as ``mkdir -p`` run
    by root would: root-owned, mode 755.
    """

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries = {e.path: e for e in entries}
        if "/" not in self._entries:
            self._entries["/"] = Entry("/", DIRECTORY, 0o755)

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        """Every entry, sorted by path (parents before children)."""
        return [self._entries[p] for p in sorted(self._entries)]

    def under(self, top: str) -> list[str]:
        """*top* and every path below it, sorted."""
        prefix = top.rstrip("/") + "/"
        return sorted(p for p in self._entries if p == top or p.startswith(prefix))

    def put(self, entry: Entry) -> None:
        """Place *entry* as it is, replacing what is at its path; parents as ``mkdir -p``."""
        if entry.path != "/":
            self.mkdir(parent_of(entry.path))
        self._entries[entry.path] = entry

    def mkdir(self, path: str, mode: int = 0o755, uid: int = ROOT, gid: int = ROOT) -> None:
        """``mkdir -p``: existing directories are left as they are."""
        existing = self._entries.get(path)
        if existing is not None:
            if not existing.is_dir:
                raise ModelError(f"{path!r} exists and is not a directory")
            return
        self.put(Entry(path, DIRECTORY, mode, uid, gid))

    def file(
        self,
        path: str,
        mode: int = 0o644,
        uid: int = ROOT,
        gid: int = ROOT,
        size: int | None = None,
    ) -> None:
        """Create or overwrite a regular file (as ``COPY`` or a package install would)."""
        size = placeholder_size(path) if size is None else size
        self.put(Entry(path, FILE, mode, uid, gid, size))

    def files(self, directory: str, names: Iterable[str], mode: int = 0o644) -> None:
        for name in names:
            self.file(f"{directory}/{name}", mode)

    def symlink(self, path: str, target: str, uid: int = ROOT, gid: int = ROOT) -> None:
        """``ln -sf target path``."""
        self.put(Entry(path, SYMLINK, 0o777, uid, gid, 0, target))

    def remove(self, path: str) -> None:
        """``rm -rf path``."""
        entry = self._entries.get(path)
        if entry is not None and not entry.is_dir:
            del self._entries[path]  # nothing below a file: no need to look
            return
        for p in self.under(path):
            del self._entries[p]

    def remove_if(self, drop: Callable[[Entry], bool]) -> None:
        """Remove every entry *drop* is true for (what is below a removed directory stays)."""
        self._entries = {p: e for p, e in self._entries.items() if not drop(e)}

    def remove_children(self, path: str) -> None:
        """``rm -rf path/*`` (and dot files)."""
        for p in self.under(path):
            if p != path:
                del self._entries[p]

    def chmod(self, path: str, mode: int) -> None:
        self._entries[path] = attrs.evolve(self._entries[path], mode=mode)

    def chown(self, path: str, uid: int | None = None, gid: int | None = None) -> None:
        old = self._entries[path]
        self._entries[path] = attrs.evolve(
            old, uid=old.uid if uid is None else uid, gid=old.gid if gid is None else gid
        )
