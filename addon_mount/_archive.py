"""The archive index: a streamed listing of addon.tar.gz, no file contents held.

The archive is read once, front to back, as the platform's extractor would;
each member is recorded by its normalized name with its type, mode, owner,
size and link target. Members that could escape the add-on or raise
privileges are reported and left out of the index, so the simulated mount
never holds them. Nothing is ever written to disk.
"""

from __future__ import annotations

import posixpath
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

import attrs

from ._entry import EntryType
from ._findings import Severity
from ._limits import DEFAULT_LIMITS, Limits
from ._log import get_logger
from ._program import HEAD_BYTES, Program, parse_head
from ._report import Finding
from ._tarstream import NO_DATA_TYPES, Header, HeaderLimitError, TarStream, TarStreamError

# Magic numbers of what people upload instead of a gzip-compressed tar.
_SIGNATURES: Final = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"LZIP", "lzip-compressed data"),
    (b"\x1f\x9d", "compress (.Z) data"),
    (b"\x04\x22\x4d\x18", "lz4-compressed data"),
    (b"\x02\x21\x4c\x18", "lz4-compressed data"),
    (b"\x89LZO", "lzop-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"GRZipII", "grzip-compressed data"),
    (b"LRZI", "lrzip-compressed data"),
    (b"\x5d\x00\x00", "lzma-compressed data"),
)

# What follows lz4/zstd skippable frames.
_AFTER_SKIPPABLE: Final = {
    b"\x04\x22\x4d\x18": "lz4-compressed data",
    b"\x02\x21\x4c\x18": "lz4-compressed data",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data",
}

FILE: Final = EntryType.FILE
DIRECTORY: Final = EntryType.DIRECTORY
SYMLINK: Final = EntryType.SYMLINK
HARDLINK: Final = EntryType.HARDLINK
_TAR_TYPES: Final = {
    tarfile.DIRTYPE: DIRECTORY,
    tarfile.SYMTYPE: SYMLINK,
    tarfile.LNKTYPE: HARDLINK,
    tarfile.CHRTYPE: EntryType.CHAR_DEVICE,
    tarfile.BLKTYPE: EntryType.BLOCK_DEVICE,
    tarfile.FIFOTYPE: EntryType.FIFO,
    b"D": DIRECTORY,  # GNU incremental dump directory: extracted as a directory
}
# Headers that describe the next member or the volume, not a file: GNU tar and
# bsdtar extract nothing for them, tarfile returns them as regular files.
_NOT_EXTRACTED: Final = {
    b"A": "a Solaris ACL header",
    b"V": "a GNU volume label",
}
_TYPE_WORDS: Final = {
    EntryType.CHAR_DEVICE: "a character device",
    EntryType.BLOCK_DEVICE: "a block device",
    EntryType.FIFO: "a FIFO",
}
# Directories the archive implies but does not list get what tar gives them.
IMPLIED_DIR_MODE: Final = 0o755


@attrs.frozen(slots=True)
class Member:
    """One archive member, by its normalized name (no leading './' or '/').

    The archive's root directory (a member named '.' or './') has the name ''.
    """

    name: str
    type: EntryType
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY


class ArchiveError(Exception):
    """The archive file could not be opened at all (the check cannot run)."""


@attrs.define
class ArchiveIndex:
    """Every safe member of an archive, by name, plus what was found reading it."""

    source: str
    members: dict[str, Member] = attrs.Factory(dict)
    #: Every directory the members imply, listed or not ('' is the root).
    directories: set[str] = attrs.Factory(lambda: {""})
    findings: list[Finding] = attrs.Factory(list)
    #: File contents by member name, kept only when asked (the test harness reads them).
    contents: dict[str, bytes] | None = None
    compression: str = "gzip"
    member_count: int = 0
    total_bytes: int = 0
    complete: bool = True
    #: How programs start (interpreter, loader), for files that look executable only.
    programs: dict[str, Program] = attrs.Factory(dict)
    #: Members left out (absolute, '..', devices, setuid, too long), by name: finding code.
    rejected: dict[str, str] = attrs.Factory(dict)
    # Filled once the index is read, by sorted_names().
    _sorted: list[str] | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def sorted_names(self) -> list[str]:
        """Every member and directory name but the root, sorted (made once)."""
        if self._sorted is None:
            self._sorted = sorted(n for n in self.members.keys() | self.directories if n)
        return self._sorted

    def get(self, name: str) -> Member | None:
        """The member at *name*, a listed one or an implied directory."""
        member = self.members.get(name)
        if member is None and name in self.directories:
            return Member(name, DIRECTORY, IMPLIED_DIR_MODE, 0, 0, 0)
        return member


def sniff(head: bytes) -> str:
    """Name what a file is from its first bytes: 'gzip', or what it is instead."""
    if not head:
        return "an empty file"
    if _is_skippable_frame(head):
        # lz4 and zstd share these frames (metadata to skip); the data frame follows.
        while len(head) >= 8 and _is_skippable_frame(head):
            head = head[8 + int.from_bytes(head[4:8], "little") :]
        return _AFTER_SKIPPABLE.get(head[:4], "lz4- or zstd-compressed data")
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "an uncompressed tar archive"
    if len(head) >= 512 and _is_v7_tar_header(head[:512]):
        return "an uncompressed tar archive"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON text"
    return "data of an unknown format"


def _is_skippable_frame(head: bytes) -> bool:
    return head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F


def _is_v7_tar_header(block: bytes) -> bool:
    if not any(block):
        return False
    field = block[148:156]
    try:
        stored = int(field.split(b"\x00")[0].strip() or b"0", 8)
    except ValueError:
        return False
    # Like tarfile, accept the unsigned sum and the signed one some old tars wrote.
    unsigned = 256 + sum(block[:148]) + sum(block[156:512])
    signed = 256 + sum(struct.unpack_from("148b8x356b", block))
    return stored in (unsigned, signed)


def normalize_name(name: str) -> str | None:
    """A member name as a path relative to the add-on root, or None if it climbs out.

    Absolute names are not normalized here: the caller reports them first.
    """
    stripped = name.rstrip("/")
    if stripped in ("", "."):
        return ""
    # Most names are already normal ('opt/tool/lib/x.jar'): skip normpath for them.
    if "//" not in stripped and "/." not in stripped and not stripped.startswith("."):
        return stripped
    normal = posixpath.normpath(stripped)
    if normal == ".":
        return ""
    if normal == ".." or normal.startswith("../"):
        return None
    return normal


def has_dotdot(name: str) -> bool:
    """Whether *name* has a '..' component (tar skips such members)."""
    return ".." in name and ".." in name.split("/")


class _Reader:
    def __init__(
        self,
        path: Path,
        *,
        addon: str | None,
        staging_root: str | None,
        limits: Limits,
        keep_contents: bool,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.path = path
        self.addon = addon
        self.staging_root = staging_root
        self.limits = limits
        self.progress = progress
        self.index = ArchiveIndex(source=str(path), contents={} if keep_contents else None)
        self.seen: set[str] = set()
        self.reported_duplicates: set[str] = set()
        #: Directories with a member below them ("" is the root).
        self.nonempty: set[str] = {""}

    def add(
        self, code: str, message: str, path: str | None = None, severity: Severity | None = None
    ) -> None:
        if code in _LEFT_OUT and path:
            # Remembered so that a requested path it would have served says why it is missing.
            self.index.rejected.setdefault(path.strip("/"), code)
        f = Finding(code, message, addon=self.addon, path=path, source=str(self.path))
        if severity is not None:
            f = attrs.evolve(f, severity=severity)
        self.index.findings.append(f)

    def read(self) -> ArchiveIndex:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise ArchiveError(f"cannot open {str(self.path)!r}: {exc.strerror or exc}") from exc
        with raw:
            try:
                head = raw.read(1024)
            except OSError as exc:  # EIO, or a path that opens but cannot be read
                raise ArchiveError(
                    f"cannot read {str(self.path)!r}: {exc.strerror or exc}"
                ) from exc
            what = sniff(head)
            if what != "gzip":
                self.index.compression = what
                self.index.complete = False
                self.add("AM200", f"{self.path.name} is {what}, not a gzip-compressed tar archive")
                return self.index
            raw.seek(0)
            self._stream(raw)
        return self.index

    def _stream(self, raw: IO[bytes]) -> None:
        index = self.index
        limits = self.limits
        current = "the first member"
        stream = TarStream(raw, max_header_bytes=limits.max_header_bytes)
        reported = 0
        try:
            for info in stream:
                current = repr(info.name)
                index.member_count += 1
                if index.member_count > limits.max_members:
                    self._limit(f"has more than {limits.max_members:,} members", "max_members")
                    return
                # Only these carry data (a directory's size field is ignored by tar).
                stored = info.type not in NO_DATA_TYPES
                if stored and info.data_size < 0:
                    index.complete = False
                    self.add(
                        "AM201",
                        f"{self.path.name} is corrupt: member {info.name!r} has a negative "
                        f"size ({info.data_size:,}) in its header",
                    )
                    return
                if stored and info.size > limits.max_member_bytes:
                    self._limit(
                        f"member {info.name!r} is {info.size:,} bytes, more than "
                        f"{limits.max_member_bytes:,}",
                        "max_member_bytes",
                    )
                    return
                index.total_bytes += info.size if stored else 0
                if index.total_bytes > limits.max_total_bytes:
                    self._limit(
                        f"holds more than {limits.max_total_bytes:,} bytes uncompressed",
                        "max_total_bytes",
                    )
                    return
                self._member(info, stream)
                # A progress bar needs a few updates a second, not one per member.
                if self.progress is not None and stream.compressed_offset - reported >= 1 << 20:
                    reported = stream.compressed_offset
                    self.progress(reported)
        except HeaderLimitError as exc:
            where = "at the start" if index.member_count == 0 else "after " + current
            self._limit(
                f"has a member {where} whose headers (pax headers, GNU long names, "
                f"sparse maps) need more than {exc.limit:,} bytes"
                if exc.scope == "member"
                else f"has more than {exc.limit:,} bytes of global pax headers",
                "max_header_bytes",
            )
        except TarStreamError as exc:
            index.complete = False
            after = "before " + current if index.member_count == 0 else "after " + current
            self.add(
                "AM201",
                f"{self.path.name} is corrupt or truncated {after} "
                f"(uncompressed offset {exc.offset:,}): {exc.reason}",
            )
            return
        if stream.total_out == 0:
            index.complete = False
            self.add("AM201", f"{self.path.name} is empty: its gzip data holds no tar archive")
        if self.progress is not None:
            self.progress(stream.compressed_offset)

    def _limit(self, what: str, field: str) -> None:
        self.index.complete = False
        self.add(
            "AM240",
            f"{self.path.name} {what}; stopped reading (raise the limit with {Limits.flag(field)})",
        )

    def _member(self, info: Header, stream: TarStream) -> None:
        raw_name = info.name
        if raw_name.startswith("/"):
            shown = "/" + raw_name.lstrip("/")
            self.add(
                "AM210",
                f"member {raw_name!r} has an absolute name; extracting it "
                "would write outside the add-on",
                shown,
            )
            return
        name = normalize_name(raw_name)
        if name is None:
            shown = "/" + raw_name
            self.add("AM210", f"member {raw_name!r} climbs out of the add-on root with '..'", shown)
            return
        if ".." in raw_name and has_dotdot(raw_name):  # most names have no '..': no call
            # GNU tar ("Member name contains '..'") and bsdtar (without -P) skip the
            # member even when it stays inside the root: a link to it would dangle.
            self.add(
                "AM210",
                f"member {raw_name!r} has a '..' component; tar skips members whose "
                "name has one, so it is not extracted",
                "/" + name,
            )
            return
        depth = name.count("/") + 1
        # A UTF-8 character is at most 4 bytes: encode only names that might be too long.
        length = len(name)
        if length * 4 > self.limits.max_path_length:
            length = len(name.encode("utf-8", "surrogateescape"))
        if length > self.limits.max_path_length or depth > self.limits.max_path_depth:
            quoted = repr(raw_name) if len(raw_name) <= 80 else f"{raw_name[:80]!r}..."
            self.add(
                "AM240",
                f"member {quoted} has a name of {length:,} bytes in {depth} components; "
                f"limits are {self.limits.max_path_length:,} bytes "
                f"({Limits.flag('max_path_length')}) and {self.limits.max_path_depth} "
                f"components ({Limits.flag('max_path_depth')}); the member is left out",
            )
            return
        shown = "/" + name
        if info.type in _NOT_EXTRACTED:
            return
        kind = _TAR_TYPES.get(info.type, FILE)
        if kind in _TYPE_WORDS:
            self.add("AM213", f"member {raw_name!r} is {_TYPE_WORDS[kind]}", shown)
            return
        if info.mode & 0o6000 and kind != DIRECTORY:
            bits = "setuid" if info.mode & 0o4000 else "setgid"
            self.add("AM214", f"member {raw_name!r} is {bits} (mode {info.mode:o})", shown)
            return
        linkname = ""
        if kind == SYMLINK:
            linkname = info.linkname
            if not self._symlink_ok(raw_name, name, linkname, shown):
                return
        elif kind == HARDLINK:
            target = normalize_name(info.linkname) if not info.linkname.startswith("/") else None
            if target is not None and has_dotdot(info.linkname):
                # bsdtar refuses the link; GNU tar cuts the target at its last '..'
                # and links to what that names, if anything.
                self.add(
                    "AM211",
                    f"hard link {raw_name!r} -> {info.linkname!r} has a '..' component "
                    "in its target; tar does not create the link",
                    shown,
                )
                return
            if target is None or target not in self.index.members:
                self.add(
                    "AM211",
                    f"hard link {raw_name!r} -> {info.linkname!r} does not point "
                    "to an earlier member of the archive",
                    shown,
                )
                return
            linkname = target
        if self._blocked(raw_name, name, kind, shown):
            return
        if name in self.seen and kind != DIRECTORY and name not in self.reported_duplicates:
            self.reported_duplicates.add(name)
            self.add(
                "AM220",
                f"member {raw_name!r} appears more than once; extraction keeps the last copy",
                shown,
            )
        self.seen.add(name)
        self.index.members[name] = Member(
            name,
            kind,
            info.mode & 0o7777,
            info.uid,
            info.gid,
            info.size if kind == FILE else 0,
            linkname,
        )
        self._imply_parents(name, kind)
        if kind == FILE and info.size > 0 and _looks_executable(name, info.mode):
            program = parse_head(stream.peek_data(HEAD_BYTES))
            if program is not None:
                self.index.programs[name] = program
        if self.index.contents is not None and kind == FILE:
            self.index.contents[name] = stream.read_data()

    def _imply_parents(self, name: str, kind: str) -> None:
        directories = self.index.directories
        nonempty = self.nonempty
        if kind == DIRECTORY:
            directories.add(name)
        parent = name.rpartition("/")[0]
        while parent not in nonempty:
            nonempty.add(parent)
            directories.add(parent)
            parent = parent.rpartition("/")[0]

    def _blocked(self, raw_name: str, name: str, kind: EntryType, shown: str) -> bool:
        """True (and AM202) for a member GNU tar cannot extract where the archive put it.

        Below a file or hard link member, its ``open`` fails with 'Not a
        directory'; a file, link or symlink where a directory already has
        members cannot replace it ('File exists'), and the directory stays. A
        member over an empty directory replaces it, as tar does.
        """
        directories = self.index.directories
        parent = name.rpartition("/")[0]
        if parent not in directories:  # rare: the parent is no directory of the archive yet
            members = self.index.members
            while parent not in directories:
                above = members.get(parent)
                if above is not None and above.type not in (DIRECTORY, SYMLINK):
                    word = "hard link" if above.type == HARDLINK else "file"
                    self.add(
                        "AM202",
                        f"member {raw_name!r} is below {parent!r}, a {word} in the archive: "
                        "tar cannot extract it ('Not a directory') and fails",
                        shown,
                    )
                    return True
                parent = parent.rpartition("/")[0]
        if kind != DIRECTORY and name in directories:
            if name in self.nonempty:
                word = {SYMLINK: "symlink", HARDLINK: "hard link"}.get(kind, "file")
                self.add(
                    "AM202",
                    f"member {raw_name!r} is a {word} where the archive has a directory with "
                    "members: tar cannot replace it ('File exists') and fails; the directory "
                    "stays",
                    shown,
                )
                return True
            directories.discard(name)  # an empty directory: the member replaces it
        return False

    def _symlink_ok(self, raw_name: str, name: str, target: str, shown: str) -> bool:
        if target.startswith("/"):
            if self.staging_root and (
                target == self.staging_root or target.startswith(self.staging_root + "/")
            ):
                return True
            self.add(
                "AM212",
                f"symlink {raw_name!r} -> {target!r} points into the runtime, "
                "outside the add-on; it dangles in runtimes without that path",
                shown,
            )
            return True
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            self.add("AM211", f"symlink {raw_name!r} -> {target!r} climbs out of the add-on", shown)
            return False
        return True


# Codes for members that are not indexed (AM212, a warning, keeps its member).
_LEFT_OUT: Final = frozenset({"AM202", "AM210", "AM211", "AM213", "AM214", "AM240"})


def _looks_executable(name: str, mode: int) -> bool:
    """Any x bit, or a file in a bin or sbin directory: what a user may run."""
    return bool(mode & 0o111) or name.rpartition("/")[0].rpartition("/")[2] in ("bin", "sbin")


def read_archive(
    path: str | Path,
    *,
    addon: str | None = None,
    staging_root: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    keep_contents: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ArchiveIndex:
    """Stream *path* once and return its index and findings.

    *addon* labels findings; *staging_root* is where the add-on will be mounted,
    so symlinks that point into the add-on itself are recognised. Raises
    :class:`ArchiveError` only when the file cannot be opened at all.
    """
    index = _Reader(
        Path(path),
        addon=addon,
        staging_root=staging_root,
        limits=limits,
        keep_contents=keep_contents,
        progress=progress,
    ).read()
    get_logger().debug(
        "archive_indexed",
        archive=str(path),
        members=index.member_count,
        bytes=index.total_bytes,
        findings=len(index.findings),
    )
    return index
