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
