"""Where runtime images come from: the built-in catalog, snapshots, tarballs, directories.

:func:`load_runtime` takes what ``--runtime`` takes (a built-in name, with
Cloudera's add-ons attached as ``NAME+ADDON``; a snapshot file; a ``docker
export`` tarball, compressed or not; a root directory) and returns a
:class:`~addon_mount._runtime.RuntimeImage`.
"""

from __future__ import annotations

import bz2
import difflib
import functools
import gzip
import io
import json
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from . import _capture
from ._log import get_logger
from ._overlays import attach, overlays_named
from ._runtime import (
    BLOCK_DEVICE,
    CHAR_DEVICE,
    DIRECTORY,
    FIFO,
    FILE,
    SYMLINK,
    Entry,
    RuntimeImage,
    RuntimeLoadError,
    TarballError,
    new_snapshot_db,
    parent_of,
    write_entries,
)

BUILTIN_DIR: Final = Path(__file__).parent / "_runtimes"


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

    if any(not a.strip() for a in attached):
        raise RuntimeLoadError.for_source(
            name, "an empty add-on name after '+' (write NAME+ADDON, e.g. cml-python+spark3)"
        )
    try:
        chosen = overlays_named(attached)
    except ValueError as exc:
        raise RuntimeLoadError.for_source(name, str(exc)) from exc
    groups = [o.group for o in chosen if o.group is not None]
    twice = sorted({g for g in groups if groups.count(g) > 1})
    if twice:
        same = ", ".join(o.name for o in chosen if o.group == twice[0])
        raise RuntimeLoadError.for_source(
            name, f"one session attaches one {twice[0].capitalize()}, not {same}"
        )
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
