#!/usr/bin/env python3
"""Capture a runtime snapshot: one row per filesystem entry, never file contents.

Run inside a Cloudera AI session (copy this one file into a terminal)::

    python3 capture.py -o runtime.snap

It records the running runtime's root filesystem (path, type, permission
bits, numeric owner, size, link target of every entry; no file is ever
opened) into an SQLite snapshot that ``addon-mount check --runtime
runtime.snap`` reads. Standard library only, Python 3.8 or newer, and it
runs isolated (``python3 -I -S capture.py``).

The format is documented in ``docs/snapshot-format.md``. addon-mount reads
directories with this module's :func:`walk` too, so a directory loaded by the
library and a snapshot captured by this script hold the same entries.
"""

# This file must stay importable by Python 3.8 with nothing but the standard
# library: no 3.9+ syntax or APIs (no builtin generics outside annotations,
# no str.removeprefix, no match), and no imports from addon_mount.

# This script works on path strings as the OS hands them out (os.path,
# os.lstat, os.listdir), which is simpler here than wrapping each in Path.
# ruff: noqa: PTH100, PTH101, PTH105, PTH108, PTH115, PTH118, PTH119, PTH120, PTH123, PTH208

from __future__ import annotations

import argparse
import contextlib
import errno
import gzip
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

    # path, type, mode, uid, gid, size, target
    Row = tuple[str, str, int, int, int, int, "str | None"]

SNAPSHOT_FORMAT = "addon-mount-snapshot"
SNAPSHOT_VERSION = 1

# The snapshot schema, for the package too (addon_mount._runtime takes it from here,
# since this script cannot import the package it is copied out of).
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    path   TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    type   TEXT NOT NULL,
    mode   INTEGER NOT NULL,
    uid    INTEGER NOT NULL,
    gid    INTEGER NOT NULL,
    size   INTEGER NOT NULL DEFAULT 0,
    target TEXT
) WITHOUT ROWID;
CREATE INDEX entries_by_parent ON entries (parent, path);
"""

# Kernel-made trees: every container has the directory, but what is inside
# describes the host and the moment, not the runtime image.
PSEUDO_DIRS = ("/proc", "/sys", "/dev")
# The project volume is mounted here in a session: its top level can collide
# with an add-on path, but the project's own files are none of the runtime's.
SHALLOW_DIRS = ("/home/cdsw",)
# Mount points walked into even without cross_mounts: the project volume (top
# level only, see SHALLOW_DIRS) and the add-ons already mounted in the session.
ALWAYS_CROSSED = ("/home/cdsw", "/runtime-addons")
# Filesystem types whose mount points are never walked into, wherever mounted.
PSEUDO_FS_TYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tracefs",
    }
)
# Environment variables Cloudera runtimes set to describe themselves; recorded
# in the snapshot's meta when the live root ("/") is captured.
RUNTIME_ENV = (
    "ML_RUNTIME_EDITOR",
    "ML_RUNTIME_EDITION",
    "ML_RUNTIME_KERNEL",
    "ML_RUNTIME_DESCRIPTION",
    "ML_RUNTIME_FULL_VERSION",
    "ML_RUNTIME_SHORT_VERSION",
    "ML_RUNTIME_MAINTENANCE_VERSION",
    "ML_RUNTIME_CUDA_VERSION",
    "ML_RUNTIME_METADATA_VERSION",
)

_PROGRESS_EVERY = 1000
_BATCH = 5000
_T = TypeVar("_T")


def parent_of(path: str) -> str:
    """The parent of an absolute normalized path; the root is its own parent."""
    if path == "/":
        return "/"
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def contents_recorded(path: str) -> bool:
    """Whether the capture policy records what is inside directory *path*."""
    if any(_under(path, top) for top in PSEUDO_DIRS):
        return False
    return not any(path.startswith(top + "/") for top in SHALLOW_DIRS)


def is_recorded(path: str) -> bool:
    """Whether the capture policy records the entry at runtime path *path*.

    Everything is, except what lies inside ``/proc``, ``/sys`` and ``/dev``
    and what lies deeper than one level below ``/home/cdsw``. Directory walks,
    snapshot captures and tarball reads all apply this same rule.
    """
    return path == "/" or contents_recorded(parent_of(path))


def text(name: str) -> str:
    """*name* as storable text: undecodable bytes become ``\\xNN`` escapes.

    File names are bytes; Python hands undecodable ones over as lone
    surrogates, which SQLite cannot store.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def type_letter(st_mode: int) -> str:
    """The one-letter entry type (``d f l c b p s``) for a ``st_mode``."""
    fmt = stat.S_IFMT(st_mode)
    for letter, bits in (
        ("d", stat.S_IFDIR),
        ("l", stat.S_IFLNK),
        ("c", stat.S_IFCHR),
        ("b", stat.S_IFBLK),
        ("p", stat.S_IFIFO),
        ("s", stat.S_IFSOCK),
    ):
        if fmt == bits:
            return letter
    return "f"


def row_of(path: str, st: os.stat_result, target: str | None) -> Row:
    """The snapshot row for *path* from its ``lstat`` result."""
    letter = type_letter(st.st_mode)
    # Only regular files have a meaningful size: a directory's st_size is a
    # filesystem detail, and tarballs record 0 for everything else.
    size = st.st_size if letter == "f" else 0
    return (path, letter, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, target)


class WalkReport:
    """What a walk left out, so the snapshot can say so."""

    def __init__(self) -> None:
        self.unreadable: list[str] = []
        self.not_crossed: list[str] = []
        self.errors: list[str] = []

    def meta(self) -> dict[str, str]:
        """The report as snapshot meta values."""
        return {
            "unreadable": json.dumps(self.unreadable),
            "not_crossed": json.dumps(self.not_crossed),
        }


def _unescape_mountinfo(field: bytes) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field))


def mount_points(root: str) -> dict[str, str]:
    """Mount points strictly below *root*, as runtime paths, with their filesystem type.

    Read from ``/proc/self/mountinfo``; empty where that is unavailable (the
    walk then relies on ``st_dev`` alone).
    """
    try:
        data = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return {}
    real_root = os.path.realpath(root)
    prefix = "" if real_root == "/" else real_root
    found: dict[str, str] = {}
    for line in data.splitlines():
        fields = line.split(b" ")
        try:
            point = _unescape_mountinfo(fields[4])
            fs_type = os.fsdecode(fields[fields.index(b"-") + 1])
        except (IndexError, ValueError):
            continue
        if prefix and not point.startswith(prefix + "/"):
            continue
        relative = point[len(prefix) :]
        if relative not in ("", "/"):
            found[text(relative)] = fs_type
    return found


def _real(root: str, path: str) -> str:
    return root if path == "/" else root.rstrip("/") + path


def _crosses_anyway(path: str) -> bool:
    return any(_under(path, top) for top in ALWAYS_CROSSED)


def walk(
    root: str = "/",
    *,
    cross_mounts: bool = False,
    report: WalkReport | None = None,
    exclude: Collection[str] = (),
) -> Iterator[Row]:
    """Yield a row for every recorded entry under *root*, parents first, names sorted.

    Entries are read with ``lstat`` only: links are not followed and no file
    is opened. Kernel trees (``/proc``, ``/sys``, ``/dev`` and any pseudo
    filesystem mount) are recorded as bare directories; ``/home/cdsw`` to one
    level. A mount point is recorded but not walked into unless
    *cross_mounts*; ``/home/cdsw`` and ``/runtime-addons`` always are.
    Directories that cannot be listed are recorded and noted in *report*.
    Files at the real paths in *exclude* (the snapshot being written) are
    left out; it is read as the walk goes, so it may grow meanwhile.

    Raises ``OSError`` if *root* itself cannot be read or is not a directory.
    """
    if report is None:
        report = WalkReport()
    root = os.path.abspath(root)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), root)
    mounts = mount_points(root)
    yield row_of("/", st, None)
    stack = [("/", st.st_dev)]
    while stack:
        path, dev = stack.pop()
        real = _real(root, path)
        try:
            names = sorted(os.listdir(real))
        except OSError as exc:
            report.unreadable.append(path)
            report.errors.append(f"{path}: {exc.strerror or exc}")
            continue
        subdirs = []
        for name in names:
            child = text(("" if path == "/" else path) + "/" + name)
            real_child = os.path.join(real, name)
            if real_child in exclude:
                continue
            try:
                cst = os.lstat(real_child)
            except FileNotFoundError:
                continue  # removed while we walked: it is not there any more
            except OSError as exc:
                report.errors.append(f"{child}: {exc.strerror or exc}")
                continue
            target = None
            if stat.S_ISLNK(cst.st_mode):
                try:
                    target = text(os.readlink(real_child))
                except OSError as exc:
                    report.errors.append(f"{child}: {exc.strerror or exc}")
                    target = ""
            yield row_of(child, cst, target)
            if not stat.S_ISDIR(cst.st_mode) or not contents_recorded(child):
                continue
            fs_type = mounts.get(child)
            if fs_type in PSEUDO_FS_TYPES:
                continue
            is_mount = fs_type is not None or cst.st_dev != dev
            if is_mount and not cross_mounts and not _crosses_anyway(child):
                report.not_crossed.append(child)
                continue
            subdirs.append((child, cst.st_dev))
        stack.extend(reversed(subdirs))


def runtime_env(root: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``ML_RUNTIME_*`` description variables, when *root* is the live root."""
    if os.path.realpath(root) != "/":
        return {}
    env = os.environ if environ is None else environ
    return {key: env[key] for key in RUNTIME_ENV if env.get(key)}


def snapshot_meta(
    root: str,
    *,
    name: str | None,
    description: str | None,
    cross_mounts: bool,
    report: WalkReport,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The meta values of a snapshot of directory *root* (format and counts aside)."""
    root = os.path.abspath(root)
    env = runtime_env(root, environ)
    if not description:
        parts = [
            env.get(k, "") for k in ("ML_RUNTIME_EDITOR", "ML_RUNTIME_KERNEL", "ML_RUNTIME_EDITION")
        ]
        label = " ".join(p for p in parts if p)
        if env.get("ML_RUNTIME_FULL_VERSION"):
            label += " " + env["ML_RUNTIME_FULL_VERSION"]
        description = f"Root filesystem under {root!r}"
        if label.strip():
            description = f"{label.strip()} runtime: root filesystem under {root!r}"
    meta = {
        "name": name or os.path.basename(root) or "/",
        "description": description,
        "source": root,
        "cross_mounts": "true" if cross_mounts else "false",
    }
    meta.update(report.meta())
    if env:
        meta["runtime_env"] = json.dumps(env, sort_keys=True)
    return meta


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open a directory; the rename is done anyway
    try:
        os.fsync(fd)
    except OSError:
        pass  # directory fsync is a durability nicety, unsupported on some filesystems
    finally:
        os.close(fd)


def _publish(temp: str, output: str, force: bool) -> None:
    if force:
        os.replace(temp, output)
        return
    # A hard link publishes without ever replacing a file that appeared since
    # the first check; filesystems without hard links fall back to a check.
    try:
        os.link(temp, output)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(output):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), output) from None
        os.replace(temp, output)
    else:
        os.unlink(temp)


def _remove_quietly(path: str) -> None:
    # Never created, or already gone: either way nothing is left behind.
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_atomically(output: str, write: Callable[[str], _T], *, force: bool = False) -> _T:
    """Create *output* by calling ``write(temp_path)``, then publish it atomically.

    The temporary file lives beside *output*, is fsynced, then renamed over
    (with *force*) or hard-linked to *output*; on any error or interrupt it
    is removed and *output* is untouched. Without *force* an existing
    *output* raises ``FileExistsError``. Returns what *write* returned.
    """
    output = os.path.abspath(output)
    if not force and os.path.lexists(output):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), output)
    directory = os.path.dirname(output)
    fd, temp = tempfile.mkstemp(
        prefix="." + os.path.basename(output) + ".", suffix=".tmp", dir=directory
    )
    os.close(fd)
    try:
        os.chmod(temp, 0o666 & ~_umask())
        result = write(temp)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(temp, output, force)
    except BaseException:
        _remove_quietly(temp)
        _remove_quietly(temp + "-journal")
        raise
    _fsync_dir(directory)
    return result


def _write_db(
    target: str,
    rows: Iterable[Row],
    meta: Callable[[], Mapping[str, str]],
    progress: Callable[[int], None] | None,
) -> int:
    import sqlite3  # noqa: PLC0415 - imported late so a Python without it fails with a message

    db = sqlite3.connect(target)
    try:
        # The file is a private temporary until published: no journal needed.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.executescript(SCHEMA)
        insert = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        batch: list[tuple[object, ...]] = []
        seen = 0
        for row in rows:
            batch.append((row[0], parent_of(row[0]), *row[1:]))
            seen += 1
            if len(batch) >= _BATCH:
                db.executemany(insert, batch)
                batch = []
            if progress is not None and seen % _PROGRESS_EVERY == 0:
                progress(seen)
        db.executemany(insert, batch)
        count = int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
        # meta() is called only now: a walk's report is complete once its rows are.
        values = dict(meta())
        values.update(
            {"format": SNAPSHOT_FORMAT, "version": str(SNAPSHOT_VERSION), "entries": str(count)}
        )
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(values.items()))
        db.commit()
    finally:
        db.close()
    if progress is not None:
        progress(seen)
    return count


def _gzipped_db(temp: str, write_db: Callable[[str], int], exclude: set[str] | None = None) -> int:
    """Call ``write_db`` on a scratch file beside *temp*, then gzip it into *temp*."""
    fd, raw = tempfile.mkstemp(
        prefix=os.path.basename(temp) + ".", suffix=".db", dir=os.path.dirname(temp)
    )
    os.close(fd)
    if exclude is not None:
        exclude.add(os.path.abspath(raw))
    try:
        count = write_db(raw)
        with open(temp, "wb") as dst:
            # No file name and no timestamp in the header: the same data, the same bytes.
            zipped = gzip.GzipFile(filename="", mode="wb", fileobj=dst, mtime=0)
            with zipped, open(raw, "rb") as src:
                shutil.copyfileobj(src, zipped, 1 << 20)
    finally:
        _remove_quietly(raw)
        _remove_quietly(raw + "-journal")
    return count


def _snapshot_writer(
    output: str, write_db: Callable[[str], int], exclude: set[str] | None = None
) -> Callable[[str], int]:
    """The write callback for *output*: plain SQLite, or gzipped when it ends in ``.gz``."""

    def write(temp: str) -> int:
        if exclude is not None:
            exclude.add(os.path.abspath(temp))
        if output.endswith(".gz"):
            return _gzipped_db(temp, write_db, exclude)
        return write_db(temp)

    return write


def write_snapshot(
    output: str,
    rows: Iterable[Row],
    meta: Mapping[str, str],
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write *rows* and *meta* as a snapshot at *output*, atomically.

    Plain SQLite, or gzip-compressed SQLite when *output* ends in ``.gz``.
    Rows must list parents before children. Returns the number of entries.
    """
    write_db = lambda path: _write_db(path, rows, lambda: meta, progress)  # noqa: E731
    return write_atomically(output, _snapshot_writer(output, write_db), force=force)


def capture(
    root: str,
    output: str,
    *,
    force: bool = False,
    cross_mounts: bool = False,
    name: str | None = None,
    description: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, WalkReport]:
    """Snapshot the directory tree at *root* into *output*; return (entries, report).

    *output* is plain SQLite, or gzip-compressed when its name ends in
    ``.gz``. Raises ``FileExistsError`` if *output* exists and not *force*,
    and ``OSError`` if *root* cannot be read.
    """
    root = os.path.abspath(root)
    if not force and os.path.lexists(output):
        # Fail before walking a large tree, not after.
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), output)
    report = WalkReport()
    # The output and its temporary files may lie inside the tree (a capture
    # of "/" into /home/cdsw): they are not part of the runtime.
    exclude = {os.path.abspath(output)}
    rows = walk(root, cross_mounts=cross_mounts, report=report, exclude=exclude)

    def meta() -> dict[str, str]:
        values = snapshot_meta(
            root,
            name=name or _stem(output),
            description=description,
            cross_mounts=cross_mounts,
            report=report,
        )
        values["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        values["tool"] = "capture.py"
        return values

    def write_db(path: str) -> int:
        return _write_db(path, rows, meta, progress)

    count = write_atomically(output, _snapshot_writer(output, write_db, exclude), force=force)
    return count, report


def _stem(output: str) -> str:
    base = os.path.basename(output)
    for suffix in (".gz", ".snap", ".sqlite", ".db"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
    return base


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capture.py",
        description="Record a runtime's root filesystem (names, types, modes, owners; "
        "no file contents) as an addon-mount snapshot.",
    )
    parser.add_argument("root", nargs="?", default="/", help="directory to capture (default: /)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="snapshot file to write; a name ending in .gz is gzip-compressed",
    )
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument(
        "--cross-mounts",
        action="store_true",
        help="walk into other mounted filesystems too (pseudo filesystems never)",
    )
    parser.add_argument("--name", help="runtime name to record (default: OUTPUT's stem)")
    parser.add_argument("--description", help="description to record")
    return parser


def _show_progress(count: int) -> None:
    sys.stderr.write(f"\rcapture.py: {count} entries")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 written, 2 failed)."""
    args = _parser().parse_args(argv)
    progress = _show_progress if sys.stderr.isatty() else None

    try:
        count, report = capture(
            args.root,
            args.output,
            force=args.force,
            cross_mounts=args.cross_mounts,
            name=args.name,
            description=args.description,
            progress=progress,
        )
    except KeyboardInterrupt:
        sys.stderr.write("\ncapture.py: interrupted; nothing written\n")
        return 130
    except FileExistsError as exc:
        sys.stderr.write(f"capture.py: error: {exc.filename!r} exists; use --force to replace it\n")
        return 2
    except ImportError as exc:
        sys.stderr.write(f"capture.py: error: this Python lacks sqlite3 ({exc})\n")
        return 2
    except OSError as exc:
        where = exc.filename if exc.filename is not None else args.root
        sys.stderr.write(f"capture.py: error: {where!r}: {exc.strerror or exc}\n")
        return 2
    if progress is not None:
        sys.stderr.write("\n")
    notes = []
    if report.unreadable:
        notes.append(f"{len(report.unreadable)} unreadable directories")
    if report.not_crossed:
        notes.append(
            "{} mount points not walked into: {}".format(
                len(report.not_crossed), ", ".join(report.not_crossed[:5])
            )
        )
    sys.stderr.write(
        "capture.py: wrote {} ({} entries{})\n".format(
            args.output, count, "; " + "; ".join(notes) if notes else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
