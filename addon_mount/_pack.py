"""Packing a bundle: a staging tree or a sloppy tarball in, a reproducible bundle out.

The archive is a gzip-compressed PAX tar with relative names (no ``./``),
members sorted, numeric owner 0:0 and no owner names, modes readable by all
(``a+rX``: x bits are kept and added for all where any was set, setuid, setgid
and sticky bits are cleared), every mtime set to ``SOURCE_DATE_EPOCH`` (or
1980-01-01), and a gzip header with no name and mtime 0. macOS metadata
(``._*``, ``.DS_Store``, ``__MACOSX/``) is left out. The same input gives the
same bytes (with the same zlib). The input is only read.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import io
import lzma
import os
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

import attrs

from ._builders import metadata_json
from ._capture import write_atomically
from ._check import ARCHIVE_NAME, METADATA_NAME, find_archive
from ._limits import DEFAULT_LIMITS
from ._metadata import NAME_RE
from ._runtime import RuntimeImage
from ._view import is_stray

#: Every member's mtime when SOURCE_DATE_EPOCH is not set: 1980-01-01T00:00:00Z,
#: the earliest time zip can store (what wheel and other reproducible tools use).
DEFAULT_EPOCH: Final = 315_532_800
#: The latest SOURCE_DATE_EPOCH accepted: 9999-12-31T23:59:59Z.
MAX_EPOCH: Final = 253_402_300_799
#: How many member names a change shows before summarizing the rest.
SHOWN: Final = 3
_COPY_CHUNK: Final = 1 << 20


class PackError(Exception):
    """The bundle could not be packed: the message is one line saying why."""


@attrs.frozen
class Change:
    """One kind of change pack made, with the members it touched."""

    what: str
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.names:
            return self.what
        shown = ", ".join(self.names[:SHOWN])
        more = f", and {len(self.names) - SHOWN} more" if len(self.names) > SHOWN else ""
        count = len(self.names)
        return f"{self.what} ({count} {'member' if count == 1 else 'members'}): {shown}{more}"


@attrs.frozen
class PackResult:
    """What pack wrote: the bundle directory, its two files, and what it changed."""

    bundle: Path
    metadata: Path
    archive: Path
    members: int
    metadata_generated: bool
    changes: tuple[Change, ...]


@attrs.define
class _Item:
    """One member to write, with where it came from (for the list of changes)."""

    name: str
    kind: str  # "f", "d", "l" or "h"
    mode: int  # as found, all bits
    uid: int
    gid: int
    size: int = 0
    linkname: str = ""
    open: Callable[[], IO[bytes]] | None = None


def source_date_epoch(environ: dict[str, str] | None = None) -> tuple[int, str]:
    """The mtime to give every member, and where it came from."""
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_EPOCH, "SOURCE_DATE_EPOCH unset"
    if not value.isdigit():
        raise PackError(f"SOURCE_DATE_EPOCH is {value!r}; expected a number of seconds")
    if int(value) > MAX_EPOCH:
        raise PackError(
            f"SOURCE_DATE_EPOCH is {value}; expected at most {MAX_EPOCH} (the end of year 9999)"
        )
    return int(value), "SOURCE_DATE_EPOCH"


def normalized_mode(kind: str, mode: int) -> int:
    """``chmod a+rX`` with setuid, setgid and sticky cleared; symlinks are 777."""
    if kind == "l":
        return 0o777
    result = (mode & 0o777) | 0o444
    if kind == "d" or result & 0o111:
        result |= 0o111
    return result


def _sort_key(name: str) -> list[str]:
    # By component: a directory's members follow it directly, before any sibling.
    return name.split("/")


# -- reading a staging tree ---------------------------------------------------------------


def _from_tree(root: Path, changes: _Changes) -> list[_Item]:
    items: list[_Item] = []
    first_of: dict[tuple[int, int], str] = {}

    def visit(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise PackError(f"cannot read {str(directory)!r}: {exc.strerror or exc}") from exc
        for entry in entries:
            name = f"{prefix}{entry.name}"
            _check_name(name)
            if not prefix and name in (METADATA_NAME, ARCHIVE_NAME):
                # The bundle's files sit beside the archive, never inside it.
                changes.add("left out the bundle's own files at the top of the tree", name)
                continue
            if is_stray(name):
                changes.add("left out macOS metadata", name + ("/" if entry.is_dir() else ""))
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                items.append(_Item(name, "d", st.st_mode, st.st_uid, st.st_gid))
                visit(Path(entry.path), name + "/")
            elif stat.S_ISLNK(st.st_mode):
                target = str(Path(entry.path).readlink())
                items.append(_Item(name, "l", st.st_mode, st.st_uid, st.st_gid, linkname=target))
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in first_of:
                    items.append(
                        _Item(name, "h", st.st_mode, st.st_uid, st.st_gid, linkname=first_of[key])
                    )
                    continue
                first_of[key] = name
                path = entry.path
                items.append(
                    _Item(
                        name,
                        "f",
                        st.st_mode,
                        st.st_uid,
                        st.st_gid,
                        size=st.st_size,
                        open=functools.partial(_open_file, path),
                    )
                )
            else:
                changes.add("left out special files (devices, FIFOs, sockets)", name)

    visit(root, "")
    return items


def _open_file(path: str) -> IO[bytes]:
    return Path(path).open("rb")


def _check_name(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise PackError(f"the name '{shown}' is not UTF-8; rename it") from exc


# -- reading a tarball ----------------------------------------------------------------------


@contextlib.contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The tarball, uncompressed into a temporary file so members can be read in any order."""
    try:
        with (
            path.open("rb") as raw,
            _decompressed(raw, path) as stream,
            tempfile.TemporaryFile() as spool,
        ):
            while chunk := stream.read(_COPY_CHUNK):
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r:") as tar:
                yield tar
    except PackError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PackError(f"cannot read {str(path)!r}: {reason or type(exc).__name__}") from exc


def _decompressed(raw: io.BufferedReader, path: Path) -> io.BufferedIOBase:
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise PackError(f"{str(path)!r} is zstd-compressed; decompress it first")
    return raw


def _clean_name(raw: str) -> str | None:
    """The member name without './' and leading '/'; None for the archive's root."""
    name = raw
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    name = name.rstrip("/")
    if name in ("", "."):
        return None
    parts = name.split("/")
    if ".." in parts:
        raise PackError(
            f"member {raw!r} leaves the archive's root; pack cannot tell where it belongs"
        )
    return "/".join(p for p in parts if p not in ("", "."))


def _from_tar(tar: tarfile.TarFile, changes: _Changes) -> list[_Item]:
    by_name: dict[str, _Item] = {}
    order: list[str] = []
    for member in tar:
        name = _clean_name(member.name)
        if name is None:
            continue
        _check_name(name)
        if name != member.name.rstrip("/"):
            changes.add("names made relative (no './' or '/')", name)
        if is_stray(name):
            changes.add("left out macOS metadata", name + ("/" if member.isdir() else ""))
            continue
        if member.isdir():
            item = _Item(name, "d", member.mode, member.uid, member.gid)
        elif member.issym():
            item = _Item(name, "l", member.mode, member.uid, member.gid, linkname=member.linkname)
        elif member.islnk():
            target = _clean_name(member.linkname) or ""
            item = _Item(name, "h", member.mode, member.uid, member.gid, linkname=target)
        elif member.isreg():
            item = _Item(
                name,
                "f",
                member.mode,
                member.uid,
                member.gid,
                size=member.size,
                open=functools.partial(_extract, tar, member),
            )
        else:
            changes.add("left out special files (devices, FIFOs, sockets)", name)
            continue
        if name in by_name:
            changes.add("duplicate members: kept the last copy", name)
        else:
            order.append(name)
        by_name[name] = item
    if order != sorted(order, key=_sort_key):
        changes.add("members sorted by name")
    items = list(by_name.values())
    known = set(by_name)
    for item in list(items):
        parts = item.name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in known:
                known.add(parent)
                items.append(_Item(parent, "d", 0o755, 0, 0))
                changes.add("added the directories the archive implies", parent)
    return items


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    data = tar.extractfile(member)
    if data is None:  # pragma: no cover - only regular members are opened
        raise PackError(f"cannot read member {member.name!r}")
    return data


# -- normalizing and writing ----------------------------------------------------------------


class _Changes:
    def __init__(self) -> None:
        self._names: dict[str, list[str]] = {}

    def add(self, what: str, name: str | None = None) -> None:
        names = self._names.setdefault(what, [])
        if name is not None:
            names.append(name)

    def result(self) -> tuple[Change, ...]:
        return tuple(Change(what, tuple(names)) for what, names in self._names.items())


def _refuse_members_below_files(items: Sequence[_Item]) -> None:
    """PackError for a member below a file of the same archive: tar could not extract it.

    A tarball made twice into one (``opt/tool`` a file in one, a directory
    in the other) cannot be repaired by guessing which was meant.
    """
    kinds = {i.name: i.kind for i in items}
    for item in items:
        parent = item.name.rpartition("/")[0]
        while parent:
            if kinds.get(parent) in ("f", "h"):
                raise PackError(
                    f"{item.name!r} is below {parent!r}, a file in the same archive: tar "
                    "cannot extract both ('Not a directory'); remove one of them and pack again"
                )
            parent = parent.rpartition("/")[0]


def _resolve_hardlinks(items: list[_Item]) -> None:
    """Each group of hard links: the first name in archive order holds the data."""
    by_name = {i.name: i for i in items}
    groups: dict[str, list[_Item]] = {}
    for item in items:
        if item.kind != "h":
            continue
        target = by_name.get(item.linkname)
        while target is not None and target.kind == "h":
            target = by_name.get(target.linkname)
        if target is None or target.kind != "f":
            raise PackError(
                f"member {item.name!r} is a hard link to {item.linkname!r}, "
                "which is not a file in the archive"
            )
        groups.setdefault(target.name, [target]).append(item)
    for group in groups.values():
        # The data's fields are read before any member of the group is rewritten:
        # the target itself may become a link to a name that sorts before it.
        data = group[0]
        size, opener, mode = data.size, data.open, data.mode
        holder = min(group, key=lambda i: _sort_key(i.name))
        for item in group:
            if item is holder:
                item.kind, item.linkname, item.size, item.open = "f", "", size, opener
                item.mode = mode
            else:
                item.kind, item.linkname, item.size, item.open = "h", holder.name, 0, None


def _normalize(items: list[_Item], changes: _Changes, epoch_note: str, epoch: int) -> None:
    for item in sorted(items, key=lambda i: _sort_key(i.name)):
        if item.kind == "l":
            continue
        mode = normalized_mode(item.kind, item.mode)
        if item.mode & 0o7000:
            changes.add("cleared setuid, setgid and sticky bits", item.name)
        if mode != item.mode & 0o777 and item.kind != "h":
            changes.add(
                "modes made readable by all, a+rX",
                f"{item.name} {item.mode & 0o777:03o} -> {mode:03o}",
            )
    owned = sorted((i for i in items if (i.uid, i.gid) != (0, 0)), key=lambda i: _sort_key(i.name))
    if owned:
        was = sorted({f"{i.uid}:{i.gid}" for i in owned})
        what = (
            f"owner set to 0:0 (was {', '.join(was[:SHOWN])}{', ...' if len(was) > SHOWN else ''})"
        )
        for item in owned:
            changes.add(what, item.name)
    when = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    changes.add(f"every mtime set to {when} ({epoch_note})")


def _tarinfo(item: _Item, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(item.name)
    info.mode = normalized_mode(item.kind, item.mode)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = epoch
    if item.kind == "d":
        info.type = tarfile.DIRTYPE
    elif item.kind == "l":
        info.type, info.linkname = tarfile.SYMTYPE, item.linkname
    elif item.kind == "h":
        info.type, info.linkname = tarfile.LNKTYPE, item.linkname
    else:
        info.type, info.size = tarfile.REGTYPE, item.size
    return info


def write_archive(target: str | Path, items: Sequence[_Item], epoch: int) -> int:
    """Write *items* as a reproducible .tar.gz at *target*; returns the member count."""
    ordered = sorted(items, key=lambda i: _sort_key(i.name))
    with (
        Path(target).open("wb") as raw,
        # No file name and mtime 0 in the gzip header: the bytes depend on the members only.
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for item in ordered:
            info = _tarinfo(item, epoch)
            if item.open is None:
                tar.addfile(info)
                continue
            try:
                data = item.open()
            except OSError as exc:
                raise PackError(
                    f"cannot read {item.name!r}: {exc.strerror or exc}; "
                    "pack reads every file (run it as a user who can)"
                ) from exc
            with data:
                tar.addfile(info, _SizeCheck(data, item))
    return len(ordered)


class _SizeCheck:
    """A reader that fails if a file changed size since it was listed."""

    def __init__(self, data: IO[bytes], item: _Item) -> None:
        self._data = data
        self._item = item
        self._left = item.size

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(chunk)
        if size != 0 and not chunk and self._left:
            raise PackError(f"{self._item.name!r} changed while it was packed; pack again")
        return chunk


# -- metadata -------------------------------------------------------------------------------


def _workloads(
    runtimes: Sequence[RuntimeImage], cloudera_addons: str | Sequence[str] | None
) -> list[RuntimeImage]:
    """Each runtime alone and with the Cloudera add-ons a session may attach."""
    from ._overlays import selection, variants  # noqa: PLC0415

    try:
        chosen = selection(cloudera_addons)
    except ValueError as exc:
        raise PackError(f"--cloudera-addons: {exc}") from exc
    return [v for image in runtimes for v in variants(image, chosen)]


def derive_paths(items: Sequence[_Item], runtimes: Sequence[RuntimeImage]) -> list[str]:
    """The shallowest entries of the tree that no runtime has as a directory.

    ``opt/tool/...`` gives ``/opt/tool`` (every runtime has ``/opt``);
    ``usr/bin/custom_folder`` gives ``/usr/bin/custom_folder``.
    """
    from ._linux import ROOT  # noqa: PLC0415 - the pyfakefs model only when paths are derived
    from ._workload import Workload  # noqa: PLC0415

    linux = [Workload(image, []).linux for image in runtimes]
    children: dict[str, list[_Item]] = {}
    for item in items:
        children.setdefault(item.name.rpartition("/")[0], []).append(item)
    paths: list[str] = []

    def visit(parent: str) -> None:
        for item in sorted(children.get(parent, []), key=lambda i: i.name):
            path = "/" + item.name
            if item.kind == "d" and any(fs.isdir(path, ROOT) for fs in linux):
                visit(item.name)
            else:
                paths.append(path)

    visit("")
    return paths


def _metadata_from(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(DEFAULT_LIMITS.max_metadata_bytes + 1)
    except OSError as exc:
        raise PackError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    return data


# -- the whole step -------------------------------------------------------------------------


def _inputs_of(
    source: Path, metadata: Path | None, generate: bool
) -> tuple[Path | None, Path | None, Path | None]:
    """(staging tree, tarball, metadata file) for *source*."""
    if source.is_dir():
        bundle_archive, _ = find_archive(source)
        if (source / METADATA_NAME).is_file() and bundle_archive is not None:
            own = None if generate else source / METADATA_NAME
            return None, bundle_archive, metadata or own
        # A staging tree's own metadata.json is its metadata unless a name is given.
        own_meta = source / METADATA_NAME
        kept = None if generate or not own_meta.is_file() else own_meta
        return source, None, metadata or kept
    if source.is_file():
        return None, source, metadata
    if not source.exists():
        raise PackError(f"{str(source)!r} does not exist")
    raise PackError(f"{str(source)!r} is neither a directory nor a file")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def pack(
    source: str | Path,
    output: str | Path,
    *,
    name: str | None = None,
    paths: Sequence[str] = (),
    metadata: str | Path | None = None,
    runtimes: Sequence[RuntimeImage] = (),
    cloudera_addons: str | Sequence[str] | None = None,
    force: bool = False,
    environ: dict[str, str] | None = None,
) -> PackResult:
    """Pack *source* (a staging tree, a tarball, or a bundle) into the bundle *output*.

    The metadata is *metadata* (copied byte for byte), the bundle's own
    metadata.json, or generated from *name* and *paths*; without *paths*,
    the paths are the shallowest entries that no workload of *runtimes* has
    as a directory, with the Cloudera add-ons *cloudera_addons* chooses
    attached as :func:`~addon_mount.check` attaches them. Raises
    :class:`PackError` when it cannot pack.
    """
    source, output = Path(source), Path(output)
    metadata = Path(metadata) if metadata is not None else None
    if metadata is not None and (name is not None or paths):
        raise PackError("give --metadata, or --name and --path, not both")
    tree, tarball, metadata_in = _inputs_of(source, metadata, name is not None or bool(paths))
    if metadata_in is None and name is None:
        raise PackError("give the add-on's name with --name NAME (or a metadata file: --metadata)")
    if name is not None and not NAME_RE.fullmatch(name):
        raise PackError(
            f"name {name!r} breaks the naming rule: 1 to 35 characters from a-z, 0-9, '_' and '-'"
        )
    out_meta, out_archive = output / METADATA_NAME, output / ARCHIVE_NAME
    resolved = output.resolve()
    if tree is not None and resolved.is_relative_to(tree.resolve()):
        raise PackError(f"{str(output)!r} is inside the staging tree; write the bundle elsewhere")
    for given in (p for p in (tarball, metadata_in, tree) if p is not None):
        if _same(given, output) or any(_same(given, o) for o in (out_meta, out_archive)):
            raise PackError(f"{str(output)!r} would overwrite the input {str(given)!r}")
    if not force:
        for existing in (out_meta, out_archive):
            if existing.exists():
                raise PackError(f"{str(existing)!r} exists; pass --force to overwrite it")
    epoch, epoch_note = source_date_epoch(environ)

    changes = _Changes()
    with contextlib.ExitStack() as stack:
        if tree is not None:
            items = _from_tree(tree, changes)
        else:
            if tarball is None:  # pragma: no cover - _inputs_of gives one of the two
                raise AssertionError("no input")
            items = _from_tar(stack.enter_context(_open_tar(tarball)), changes)
        if not items:
            raise PackError(f"{str(source)!r} holds nothing to pack")
        _refuse_members_below_files(items)
        _resolve_hardlinks(items)
        _normalize(items, changes, epoch_note, epoch)
        generated = metadata_in is None
        if metadata_in is None:
            if not paths and not runtimes:
                from ._check import load_runtimes  # noqa: PLC0415

                runtimes = load_runtimes(None)
            wanted = list(paths) or derive_paths(items, _workloads(runtimes, cloudera_addons))
            if not wanted:
                raise PackError("found no path to request; give them with --path")
            meta_bytes = metadata_json(name or "", wanted)
            how = "given" if paths else "the shallowest entries the workloads lack"
            changes.add(f"metadata.json generated: paths {', '.join(wanted)} ({how})")
        else:
            meta_bytes = _metadata_from(metadata_in)
        created = not output.exists()
        try:
            output.mkdir(parents=True, exist_ok=True)
            count = write_atomically(
                str(out_archive), lambda temp: write_archive(temp, items, epoch), force=force
            )
            write_atomically(
                str(out_meta), lambda temp: Path(temp).write_bytes(meta_bytes), force=force
            )
        except FileExistsError as exc:
            raise PackError(f"{exc.filename!r} exists; pass --force to overwrite it") from exc
        except OSError as exc:
            where = exc.filename or str(output)
            raise PackError(f"cannot write {str(where)!r}: {exc.strerror or exc}") from exc
        finally:
            if created and not (out_archive.exists() and out_meta.exists()):
                # A failed pack leaves no half-made bundle directory behind.
                with contextlib.suppress(OSError):
                    output.rmdir()
    return PackResult(output, out_meta, out_archive, count, generated, changes.result())


__all__ = ["Change", "PackError", "PackResult", "normalized_mode", "pack", "source_date_epoch"]
