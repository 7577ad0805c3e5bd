"""The runtime image: an indexed, lazily read model of a runtime's root filesystem.

A runtime is held as a snapshot: an SQLite database with one row per
filesystem entry (path, type, mode, owner, size, link target; never file
contents). A check looks up only the paths it needs, so a 250k-entry runtime
costs no more than a small one. The format is documented in
``docs/snapshot-format.md`` and versioned by the ``meta`` table.
"""

from __future__ import annotations

import gzip
import heapq
import posixpath
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from . import _capture
from ._entry import EntryType

# The format lives in _capture, the standalone capture script, which cannot import
# this package; docs/snapshot-format.md documents it.
SNAPSHOT_FORMAT: Final = _capture.SNAPSHOT_FORMAT
SNAPSHOT_VERSION: Final = _capture.SNAPSHOT_VERSION
SCHEMA: Final = _capture.SCHEMA

# Entry types, one letter each, as `ls -l` shows them.
DIRECTORY: Final = EntryType.DIRECTORY
FILE: Final = EntryType.FILE
SYMLINK: Final = EntryType.SYMLINK
CHAR_DEVICE: Final = EntryType.CHAR_DEVICE
BLOCK_DEVICE: Final = EntryType.BLOCK_DEVICE
FIFO: Final = EntryType.FIFO
SOCKET: Final = EntryType.SOCKET


class RuntimeLoadError(Exception):
    """A runtime could not be loaded; the check cannot run.

    ``source`` is what was asked for (a name or a path) and ``reason`` why it
    failed, when the error concerns one source.
    """

    def __init__(self, message: str, *, source: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.source = source
        self.reason = reason

    @staticmethod
    def for_source(source: str | Path, reason: str) -> RuntimeLoadError:
        """``cannot load runtime '<source>': <reason>``."""
        return RuntimeLoadError(
            f"cannot load runtime {str(source)!r}: {reason}", source=str(source), reason=reason
        )


class SnapshotError(RuntimeLoadError):
    """A snapshot file is unreadable, of another format, or of an unknown version."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(
            f"cannot read runtime snapshot {source!r}: {reason}", source=source, reason=reason
        )


class TarballError(RuntimeLoadError):
    """A root filesystem tarball is unreadable or not a tar archive."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(
            f"cannot read runtime tarball {source!r}: {reason}", source=source, reason=reason
        )


def parent_of(path: str) -> str:
    """The parent of an absolute normalized path; the root is its own parent."""
    return posixpath.dirname(path) if path != "/" else "/"


@attrs.frozen
class Entry:
    """One filesystem entry of a runtime. ``mode`` holds the permission bits only."""

    path: str
    #: An :class:`EntryType` (its letter is accepted: ``"d"``).
    type: EntryType = attrs.field(converter=EntryType)
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    target: str | None = None

    @property
    def st_mode(self) -> int:
        return self.type.st_mode_bits | self.mode

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY

    @property
    def is_symlink(self) -> bool:
        return self.type == SYMLINK

    def row(self) -> tuple[str, str, str, int, int, int, int, str | None]:
        return (
            self.path,
            parent_of(self.path),
            self.type,
            self.mode,
            self.uid,
            self.gid,
            self.size,
            self.target,
        )


def _entry(row: tuple[str, str, int, int, int, int, str | None]) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


# A constant, never built from input: every query adds only a fixed clause and parameters.
_SELECT: Final = "SELECT path, type, mode, uid, gid, size, target FROM entries"


class RuntimeImage:
    """A runtime's filesystem, read on demand from an SQLite snapshot.

    Build one with :meth:`from_snapshot`,
    :meth:`from_entries` or :func:`addon_mount.load_runtime`.
    """

    def __init__(self, db: sqlite3.Connection, *, source: str) -> None:
        self._db = db
        self.source = source
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        if ("meta",) not in tables or ("entries",) not in tables:
            raise SnapshotError(source, f"not an {SNAPSHOT_FORMAT} file")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(source, f"not an {SNAPSHOT_FORMAT} file")
        version = meta.get("version", "")
        if version != str(SNAPSHOT_VERSION):
            raise SnapshotError(
                source, f"snapshot format version {version!r}, expected {SNAPSHOT_VERSION}"
            )
        self.meta: dict[str, str] = meta
        self.name: str = meta.get("name") or Path(source).name
        self.description: str = meta.get("description", "")
        count = meta.get("entries")
        self._count = int(count) if count and count.isdigit() else None
        # Entries put over the snapshot's (see derive), by path and by parent.
        self._layer: dict[str, Entry] = {}
        self._layer_children: dict[str, list[Entry]] = {}
        self._owns_db = True

    # -- constructors --------------------------------------------------------

    @classmethod
    def from_snapshot(cls, path: str | Path) -> RuntimeImage:
        """Open a snapshot file (plain or gzip-compressed SQLite), read-only."""
        path = Path(path)
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise SnapshotError(str(path), exc.strerror or str(exc)) from exc
        if head[:2] == b"\x1f\x8b":
            try:
                with gzip.open(path, "rb") as f:
                    return cls.from_bytes(f.read(), source=str(path))
            except (OSError, EOFError) as exc:
                raise SnapshotError(str(path), f"corrupt gzip data: {exc}") from exc
        if head != b"SQLite format 3\x00":
            raise SnapshotError(str(path), "not an SQLite database")
        # immutable=1: the file is never written, and no journal is created beside it.
        # The path is quoted: '?', '#' and '%' are legal in file names, not in URIs.
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            return cls(db, source=str(path))
        except SnapshotError:
            db.close()
            raise
        except sqlite3.DatabaseError as exc:
            db.close()
            raise SnapshotError(str(path), str(exc)) from exc

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str) -> RuntimeImage:
        """Open a snapshot held in memory (an uncompressed SQLite database image)."""
        db = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            db.deserialize(data)
            return cls(db, source=source)
        except SnapshotError:
            db.close()
            raise
        except sqlite3.DatabaseError as exc:
            db.close()
            raise SnapshotError(source, str(exc)) from exc

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[Entry],
        *,
        name: str,
        description: str = "",
        source: str | None = None,
        extra_meta: dict[str, str] | None = None,
    ) -> RuntimeImage:
        """Build an in-memory runtime from entries (parents need not be listed).

        Missing parent directories are added as root-owned, mode 755, as
        ``tar`` does on extraction.
        """
        db = new_snapshot_db(":memory:")
        count = write_entries(db, entries)
        meta = {"name": name, "description": description, **(extra_meta or {})}
        return cls._finish(db, meta, count, source or f"<{name}>")

    @classmethod
    def _finish(
        cls, db: sqlite3.Connection, meta: dict[str, str], count: int, source: str
    ) -> RuntimeImage:
        meta = {**meta, "entries": str(count)}
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
        db.commit()
        return cls(db, source=source)

    # -- queries -------------------------------------------------------------

    def get(self, path: str) -> Entry | None:
        """The entry at *path* exactly (symlinks are not followed), or ``None``."""
        found = self._layer.get(path)
        if found is not None:
            return found
        row = self._db.execute(_SELECT + " WHERE path = ?", (path,)).fetchone()
        return _entry(row) if row else None

    def children(self, path: str) -> list[Entry]:
        """The entries directly inside directory *path*, sorted by name."""
        rows = self._db.execute(
            _SELECT + " WHERE parent = ? AND path != '/' ORDER BY path", (path,)
        ).fetchall()
        found = [_entry(r) for r in rows]
        over = self._layer_children.get(path)
        if over:
            merged = {e.path: e for e in found} | {e.path: e for e in over}
            found = [merged[p] for p in sorted(merged)]
        return found

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, parents before children."""
        rows = (_entry(row) for row in self._db.execute(_SELECT + " ORDER BY path"))
        if not self._layer:
            yield from rows
            return
        # Both sorted by path: merge them, an entry of the layer replacing the snapshot's.
        layer = sorted(self._layer.values(), key=lambda e: e.path)
        last: str | None = None
        for entry in heapq.merge(layer, rows, key=lambda e: e.path):
            if entry.path != last:
                yield entry
            last = entry.path

    def __len__(self) -> int:
        if self._count is None:
            self._count = self._db.execute("SELECT count(*) FROM entries").fetchone()[0]
        return self._count

    def __repr__(self) -> str:
        return f"<RuntimeImage {self.name!r} from {self.source!r}>"

    def serialize(self) -> bytes:
        """The snapshot as an SQLite database image."""
        if not self._layer:
            return self._db.serialize()
        db = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            db.deserialize(self._db.serialize())
            rows = [e.row() for e in self._layer.values()]
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(self.meta.items()))
            db.commit()
            return db.serialize()
        finally:
            db.close()

    def derive(
        self, entries: Iterable[Entry], *, name: str, description: str, meta: dict[str, str]
    ) -> RuntimeImage:
        """This runtime with *entries* put in place (replacing what is at their paths).

        Nothing else is added: every parent of an entry must be in the runtime
        or among *entries*. The result shares this runtime's snapshot (close
        this one last) and holds only *entries* besides: a large runtime costs
        nothing to derive from.
        """
        image = RuntimeImage(self._db, source=f"{self.source}+")
        image._owns_db = False
        image._layer = {**self._layer, **{e.path: e for e in entries}}
        for entry in image._layer.values():
            if entry.path != "/":
                image._layer_children.setdefault(parent_of(entry.path), []).append(entry)
        added = sum(1 for p in image._layer if p not in self._layer and self.get(p) is None)
        image._count = len(self) + added
        image.meta = {
            **self.meta,
            **meta,
            "name": name,
            "description": description,
            "entries": str(image._count),
        }
        image.name = name
        image.description = description
        return image

    def close(self) -> None:
        if self._owns_db:
            self._db.close()


def new_snapshot_db(target: str) -> sqlite3.Connection:
    """Create an empty snapshot database at *target* (a path or ``:memory:``)."""
    db = sqlite3.connect(target, check_same_thread=False)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", SNAPSHOT_FORMAT), ("version", str(SNAPSHOT_VERSION))],
    )
    return db


def write_entries(db: sqlite3.Connection, entries: Iterable[Entry]) -> int:
    """Insert *entries*, adding missing parents; a later entry replaces an earlier one.

    Returns the number of entries in the table afterwards.
    """
    seen_dirs: set[str] = set()
    rows: list[tuple[str, str, str, int, int, int, int, str | None]] = []

    def flush() -> None:
        db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        rows.clear()

    db.execute("INSERT OR IGNORE INTO entries VALUES ('/', '/', 'd', 493, 0, 0, 0, NULL)")
    seen_dirs.add("/")
    for entry in entries:
        parent = parent_of(entry.path)
        missing = []
        while parent not in seen_dirs:
            missing.append(parent)
            seen_dirs.add(parent)
            parent = parent_of(parent)
        for directory in reversed(missing):
            rows.append((directory, parent_of(directory), DIRECTORY, 0o755, 0, 0, 0, None))
        if entry.is_dir:
            seen_dirs.add(entry.path)
        rows.append(entry.row())
        if len(rows) >= 10_000:
            flush()
    flush()
    count: int = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    return count


#: The runtime a check uses when none is given.
DEFAULT_RUNTIME: Final = "cml-workbench-python"


# Moved to _runtime_sources; looked up lazily so old imports keep working until updated.
_MOVED: Final = frozenset(
    {
        "BUILTIN_DIR",
        "BUILTIN_PREFIX",
        "builtin_aliases",
        "builtin_catalog",
        "builtin_name",
        "builtin_names",
        "image_from_directory",
        "image_from_tar",
        "load_builtin",
        "load_runtime",
        "tar_entries",
        "unknown_builtin",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from . import _runtime_sources  # noqa: PLC0415 - it imports this module

        return getattr(_runtime_sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
