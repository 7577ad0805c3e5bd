"""Building add-on bundles in code: for fixtures, tests and the test harness.

A member is ``(name, type, mode, data)``: type ``"f"`` (data is the content),
``"d"``, ``"l"`` (data is the symlink target) or ``"h"`` (data is the hard
link's target). Output is byte-for-byte reproducible.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

MTIME = 1_700_000_000

MemberSpec = tuple[str, str, int, str | bytes]


def tar_bytes(members: Iterable[MemberSpec], *, uid: int = 0, gid: int | None = None) -> bytes:
    """An uncompressed tar of *members*, with a fixed owner and time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.mode = mode
            info.uid = uid
            info.gid = uid if gid is None else gid
            info.uname = info.gname = "root" if uid == 0 else "builder"
            payload = b""
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind in ("l", "h"):
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                info.linkname = data.decode() if isinstance(data, bytes) else data
            elif kind == "f":
                payload = data.encode() if isinstance(data, str) else data
                info.size = len(payload)
            else:
                raise ValueError(f"member {name!r}: unknown type {kind!r}; expected f, d, l or h")
            tar.addfile(info, io.BytesIO(payload) if payload else None)
    return buffer.getvalue()


def targz(members: Iterable[MemberSpec], **owner: int) -> bytes:
    """A gzip-compressed tar, reproducible (mtime 0 in the gzip header)."""
    return gzip.compress(tar_bytes(members, **owner), compresslevel=6, mtime=0)


def metadata_json(name: str, paths: Sequence[str], **extra: Any) -> bytes:
    """The metadata file the registration call uploads."""
    document = {"name": name, "spec": {"paths": list(paths)}, **extra}
    return (json.dumps(document, indent=2) + "\n").encode()


def write_bundle(
    directory: str | Path,
    name: str,
    paths: Sequence[str],
    members: Iterable[MemberSpec],
    **owner: int,
) -> Path:
    """Write a bundle directory (metadata.json and addon.tar.gz) and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metadata.json").write_bytes(metadata_json(name, paths))
    (directory / "addon.tar.gz").write_bytes(targz(members, **owner))
    return directory


# -- raw tar headers, for archives tarfile will not write -----------------------------

BLOCK = 512
USTAR = b"ustar\x0000"
GNU_MAGIC = b"ustar  \x00"
END = bytes(2 * BLOCK)


def header(
    name: bytes,
    typeflag: bytes,
    *,
    size: int = 0,
    mode: int = 0o644,
    linkname: bytes = b"",
    magic: bytes = USTAR,
) -> bytes:
    """One 512-byte header; a name longer than its 100-byte field is cut, as GNU tar does."""
    block = bytearray(BLOCK)
    block[: min(len(name), 100)] = name[:100]
    block[100:108] = b"%07o\x00" % mode
    block[108:116] = block[116:124] = b"%07o\x00" % 0
    block[124:136] = b"%011o\x00" % size
    block[136:148] = b"%011o\x00" % 1_700_000_000
    block[156:157] = typeflag
    block[157 : 157 + min(len(linkname), 100)] = linkname[:100]
    block[257:265] = magic
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def data(content: bytes) -> bytes:
    """A member's data, padded to whole blocks."""
    return content + bytes(-len(content) % BLOCK)


def gnu_long_name(name: bytes) -> bytes:
    """A GNU 'L' header carrying *name* for the header after it."""
    return header(b"././@LongLink", b"L", size=len(name) + 1, magic=GNU_MAGIC) + data(name + b"\0")


def pax(records: dict[bytes, bytes]) -> bytes:
    """A local pax header ('x') with *records*."""
    body = b""
    for key, value in records.items():
        record = b" %s=%s\n" % (key, value)
        length = len(record) + 1
        while len(b"%d" % length) + len(record) != length:
            length += 1
        body += b"%d" % length + record
    return header(b"PaxHeaders/0", b"x", size=len(body)) + data(body)


def raw_targz(*parts: bytes) -> bytes:
    """Raw header and data *parts*, then the end-of-archive blocks, gzip-compressed."""
    return gzip.compress(b"".join(parts) + END, compresslevel=6, mtime=0)
