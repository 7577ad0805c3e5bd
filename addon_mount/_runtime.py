"""The runtime image: an indexed, lazily read model of a runtime's root filesystem.

A runtime is held as a snapshot: an SQLite database with one row per
filesystem entry (path, type, mode, owner, size, link target; never file
contents). A check looks up only the paths it needs, so a 250k-entry runtime
costs no more than a small one. The format is documented in
``docs/snapshot-format.md`` and versioned by the ``meta`` table.
"""

from __future__ import annotations

import bz2
import difflib
import functools
import gzip
import heapq
import io
import json
import lzma
import os
import posixpath
import sqlite3
import stat
import tarfile
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from . import _capture
from ._log import get_logger

# The format lives in _capture, the standalone capture script, which cannot import
# this package; docs/snapshot-format.md documents it.
SNAPSHOT_FORMAT: Final = _capture.SNAPSHOT_FORMAT
SNAPSHOT_VERSION: Final = _capture.SNAPSHOT_VERSION
SCHEMA: Final = _capture.SCHEMA

# Entry types, one letter each, as `ls -l` shows them.
DIRECTORY: Final = "d"
FILE: Final = "f"
SYMLINK: Final = "l"
CHAR_DEVICE: Final = "c"
BLOCK_DEVICE: Final = "b"
FIFO: Final = "p"
SOCKET: Final = "s"

_TYPE_BITS: Final = {
    DIRECTORY: stat.S_IFDIR,
    FILE: stat.S_IFREG,
    SYMLINK: stat.S_IFLNK,
    CHAR_DEVICE: stat.S_IFCHR,
    BLOCK_DEVICE: stat.S_IFBLK,
    FIFO: stat.S_IFIFO,
    SOCKET: stat.S_IFSOCK,
}


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
    type: str
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    target: str | None = None

    @property
    def st_mode(self) -> int:
        return _TYPE_BITS[self.type] | self.mode

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

    Build one with :meth:`from_snapshot`, :meth:`from_builtin`,
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
    def from_builtin(cls, name: str) -> RuntimeImage:
        """Open the built-in runtime *name* (see :func:`builtin_names`)."""
        return load_builtin(name)

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


BUILTIN_DIR: Final = Path(__file__).parent / "_runtimes"
DEFAULT_RUNTIME: Final = "cml-workbench-python"


def builtin_names() -> list[str]:
    """The names of the built-in runtimes, sorted."""
    return sorted(p.name.removesuffix(".snap.gz") for p in BUILTIN_DIR.glob("*.snap.gz"))


@functools.cache
def builtin_catalog() -> dict[str, Any]:
    """``_runtimes/catalog.json``: each built-in's generation and aliases, and the generations.

    Written by ``scripts/build_runtimes.py`` with the snapshots; empty when absent.
    """
    path = BUILTIN_DIR / "catalog.json"
    if not path.is_file():
        return {"runtimes": [], "generations": []}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def builtin_aliases() -> dict[str, str]:
    """Other names of built-in runtimes (``cml-2025.01-r4.4`` for ``cml-r``), to their names."""
    return {alias: row["name"] for row in builtin_catalog()["runtimes"] for alias in row["aliases"]}


def builtin_name(name: str) -> str | None:
    """The built-in runtime *name* names (itself, or the one it is an alias of), if any."""
    if name in builtin_names():
        return name
    return builtin_aliases().get(name)


def unknown_builtin(name: str) -> str:
    """The end of "not a built-in runtime": the nearest name if *name* looks mistyped; the list."""
    names = builtin_names()
    close = difflib.get_close_matches(name, [*names, *builtin_aliases()], n=1, cutoff=0.75)
    known = f"(built-in: {', '.join(names) or 'none'})"
    return f"; did you mean {close[0]!r}? {known}" if close else f" {known}"


_BUILTIN_CACHE: dict[str, bytes] = {}


def load_builtin(name: str) -> RuntimeImage:
    """Open the built-in runtime *name* (or alias); its image is cached per process.

    Opened by an alias, the runtime takes that name, and its description
    says which runtime it is.
    """
    # Checked against the catalog, not the file system: a name is never a path.
    real = builtin_name(name)
    if real is None:
        raise RuntimeLoadError.for_source(
            name, f"no built-in runtime has that name{unknown_builtin(name)}"
        )
    data = _BUILTIN_CACHE.get(real)
    if data is None:
        data = gzip.decompress((BUILTIN_DIR / f"{real}.snap.gz").read_bytes())
        _BUILTIN_CACHE[real] = data
    image = RuntimeImage.from_bytes(data, source=f"builtin:{name}")
    if real != name:
        image.name = name
        image.description = f"Another name for {real}. {image.description}"
        image.meta = {**image.meta, "name": name, "alias_of": real}
    return image


# -- loading a runtime from whatever the user names ------------------------------

BUILTIN_PREFIX: Final = "builtin:"
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
# Compressed tarballs other than gzip, told by their first bytes.
_TAR_COMPRESSIONS: Final = (b"BZh", b"\xfd7zXZ\x00")
_NOT_A_RUNTIME: Final = (
    "not a runtime snapshot (SQLite, plain or gzipped), a root filesystem tarball "
    "(docker export, plain or compressed) or a directory"
)


def load_runtime(spec: str | Path, *, cross_mounts: bool = False) -> RuntimeImage:
    """Open the runtime *spec* names, whatever kind of source it is.

    *spec* is, in this order: ``builtin:NAME`` or the name of a built-in
    runtime (a :class:`~pathlib.Path` never is); a directory holding a root
    filesystem (walked with ``lstat``, see :func:`image_from_directory`); a
    snapshot file, plain or gzipped SQLite; or a ``docker export`` tarball,
    plain or compressed. Files are told apart by their first bytes, not their
    names. Raises :class:`RuntimeLoadError` naming *spec* and the reason.
    """
    if isinstance(spec, str):
        if spec.startswith(BUILTIN_PREFIX):
            return _load_named(spec[len(BUILTIN_PREFIX) :])
        if builtin_name(spec.partition("+")[0]) is not None:
            return _load_named(spec)
    path = Path(spec)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        reason = "no such file or directory"
        if isinstance(spec, str) and "/" not in spec and os.sep not in spec:
            reason = f"no such file or directory, nor a built-in runtime{unknown_builtin(spec)}"
        raise RuntimeLoadError.for_source(spec, reason) from exc
    except OSError as exc:
        raise RuntimeLoadError.for_source(spec, exc.strerror or str(exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        image = image_from_directory(path, cross_mounts=cross_mounts)
    elif not stat.S_ISREG(st.st_mode):
        raise RuntimeLoadError.for_source(spec, "not a regular file or a directory")
    elif _sniff(path) == "snapshot":
        image = RuntimeImage.from_snapshot(path)
    else:
        image = image_from_tar(path)
    get_logger().debug("runtime_loaded", source=str(path), name=image.name, entries=len(image))
    return image


def _load_named(name: str) -> RuntimeImage:
    """A built-in runtime by name, or ``NAME+ADDON+...``: with Cloudera's add-ons attached."""
    base, *attached = name.split("+")
    image = load_builtin(base)
    if not attached:
        return image
    from ._overlays import attach, overlays_named  # noqa: PLC0415 - _overlays imports this module

    try:
        chosen = overlays_named(attached)
    except ValueError as exc:
        raise RuntimeLoadError.for_source(name, str(exc)) from exc
    return attach(image, chosen)


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < tarfile.BLOCKSIZE:
        return False
    if block[257:262] == b"ustar":
        return True
    try:  # old (v7) archives have no magic, only a header checksum
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _sniff(path: Path) -> str:
    """``"snapshot"`` or ``"tar"``, from the first bytes of *path*."""
    try:
        with path.open("rb") as f:
            head = f.read(tarfile.BLOCKSIZE)
        if head.startswith(_GZIP_MAGIC):
            with gzip.open(path, "rb") as g:
                head = g.read(tarfile.BLOCKSIZE)
    except (OSError, EOFError, zlib.error) as exc:
        raise RuntimeLoadError.for_source(path, f"unreadable: {exc}") from exc
    if not head:
        raise RuntimeLoadError.for_source(path, "the file is empty")
    if head.startswith(_SQLITE_MAGIC):
        return "snapshot"
    if head.startswith(_TAR_COMPRESSIONS) or _looks_like_tar(head):
        return "tar"
    if head.startswith(_ZSTD_MAGIC):
        raise RuntimeLoadError.for_source(
            path, "zstd-compressed, which Python's tarfile cannot read; decompress it first"
        )
    raise RuntimeLoadError.for_source(path, _NOT_A_RUNTIME)


def _member_path(name: str) -> str:
    # docker export writes "etc/passwd"; tar -C root . writes "./etc/passwd".
    return _capture.text(posixpath.normpath("/" + name.lstrip("/")))


def tar_entries(tar: tarfile.TarFile) -> Iterator[Entry]:
    """The entries of a root filesystem tarball, streamed; nothing is extracted.

    Numeric owners and permission bits are taken as recorded; a hard link is
    recorded as a regular file of its target's size. Members outside the
    capture policy (inside ``/proc``, ``/sys``, ``/dev``, deep in
    ``/home/cdsw``) are skipped, as a directory walk would skip them.
    """
    sizes: dict[str, int] = {}
    seen: set[str] = set()
    for member in tar:
        path = _member_path(member.name)
        if not _capture.is_recorded(path):
            # The member still shows that its nearest recorded ancestor exists (a
            # walk would list /home/cdsw/x for /home/cdsw/x/y); a real entry for
            # that ancestor, earlier or later, wins.
            ancestor = parent_of(path)
            while not _capture.is_recorded(ancestor):
                ancestor = parent_of(ancestor)
            if ancestor not in seen:
                seen.add(ancestor)
                yield Entry(ancestor, DIRECTORY, 0o755)
            continue
        seen.add(path)
        size = 0
        target = None
        if member.isdir():
            kind = DIRECTORY
        elif member.issym():
            kind, target = SYMLINK, _capture.text(member.linkname)
        elif member.islnk():
            kind, size = FILE, sizes.get(_member_path(member.linkname), member.size)
        elif member.isreg():
            kind, size = FILE, member.size
            sizes[path] = size
        elif member.ischr():
            kind = CHAR_DEVICE
        elif member.isblk():
            kind = BLOCK_DEVICE
        elif member.isfifo():
            kind = FIFO
        else:
            continue  # no other member type names a filesystem entry
        yield Entry(path, kind, member.mode & 0o7777, member.uid, member.gid, size, target)


def _tar_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".tgz", ".bz2", ".xz", ".tar"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


class _CountingReader:
    """A read-only stream that counts the bytes read through it."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.total += len(data)
        return data


def _decompressed(f: io.BufferedReader) -> io.BufferedIOBase:
    # The compression modules' own readers, unlike tarfile's stream mode, raise
    # EOFError when the data stops before the compressed stream's end.
    head = f.read(6)
    f.seek(0)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=f, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f, "rb")
    return f


def image_from_tar(path: str | Path, *, name: str | None = None) -> RuntimeImage:
    """Read a root filesystem tarball (``docker export``; plain, gzip, bzip2 or xz).

    The archive is streamed once and nothing is written to disk. Raises
    :class:`TarballError` if it cannot be read as a tar archive or stops
    short of its end-of-archive marker (a partial download).
    """
    path = Path(path)
    try:
        with path.open("rb") as f, _decompressed(f) as data:
            counted = _CountingReader(data)
            with tarfile.open(fileobj=counted, mode="r|") as tar:  # type: ignore[call-overload]
                db = new_snapshot_db(":memory:")
                count = write_entries(db, tar_entries(tar))
                end = tar.offset
            while counted.read(1 << 20):
                pass  # read to the end, so a compressed stream's checks run
    except tarfile.TarError as exc:
        raise TarballError(str(path), f"not a readable tar archive: {exc}") from exc
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TarballError(str(path), reason or type(exc).__name__) from exc
    # tarfile ends quietly where a header block is missing; a whole archive has
    # at least one zero block after its last member.
    if counted.total < end + tarfile.BLOCKSIZE:
        raise TarballError(str(path), "truncated: the archive stops before its end marker")
    meta = {
        "name": name or _tar_name(path),
        "description": f"Root filesystem read from the tarball {path.name!r}",
        "source": str(path),
    }
    return RuntimeImage._finish(db, meta, count, str(path))


def image_from_directory(
    root: str | Path, *, cross_mounts: bool = False, name: str | None = None
) -> RuntimeImage:
    """Read the root filesystem laid out under directory *root*, with ``lstat`` only.

    The walk is :func:`addon_mount._capture.walk`, the one ``capture.py``
    uses: ``/proc``, ``/sys`` and ``/dev`` are kept as bare directories,
    ``/home/cdsw`` to one level, and other mounts are not walked into unless
    *cross_mounts*. Raises :class:`RuntimeLoadError` if *root* cannot be read.
    """
    source = str(root)
    report = _capture.WalkReport()
    try:
        rows = _capture.walk(source, cross_mounts=cross_mounts, report=report)
        db = new_snapshot_db(":memory:")
        count = write_entries(db, (Entry(*row) for row in rows))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RuntimeLoadError(
            f"cannot read runtime directory {source!r}: {reason}", source=source, reason=reason
        ) from exc
    meta = _capture.snapshot_meta(
        source, name=name, description=None, cross_mounts=cross_mounts, report=report
    )
    return RuntimeImage._finish(db, meta, count, source)
