"""Deterministic benchmark inputs, generated once and cached outside the repository."""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from addon_mount._runtime import Entry, load_builtin, new_snapshot_db, write_entries

CACHE_VERSION = "v1"


def cache_dir() -> Path:
    """$ADDON_MOUNT_BENCH_CACHE, else $XDG_CACHE_HOME/addon-mount-bench (or ~/.cache)."""
    base = os.environ.get("ADDON_MOUNT_BENCH_CACHE")
    if base:
        return Path(base) / CACHE_VERSION
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "addon-mount-bench" / CACHE_VERSION


class _GzipWriter:
    """A write-only file object compressing into *raw* (what tarfile's 'w|' needs)."""

    def __init__(self, raw: BinaryIO, level: int) -> None:
        self.raw = raw
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        self.raw.write(self.compressor.compress(data))
        return len(data)

    def close(self) -> None:
        self.raw.write(self.compressor.flush())


def _word_pool(rng: random.Random, size: int) -> bytes:
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_./", k=rng.randint(2, 12)))
        for _ in range(4000)
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def addon_bundle(name: str, members: int, mean_bytes: int) -> Path:
    """A bundle whose one requested directory holds *members* files.

    Like a driver or Spark bundle: half the members are incompressible (jar-like),
    half compress about 4:1 (text-like); sizes vary around *mean_bytes*.
    """
    directory = cache_dir() / name
    archive = directory / "addon.tar.gz"
    if archive.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{name}-{members}-{mean_bytes}")
    pool = _word_pool(rng, 8 << 20)
    tmp = archive.with_suffix(".part")
    with tmp.open("wb") as raw:
        writer = _GzipWriter(raw, 6)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            top = tarfile.TarInfo("opt/bigtool")
            top.type = tarfile.DIRTYPE
            top.mode = 0o755
            tar.addfile(top)
            for i in range(members):
                size = max(0, int(rng.expovariate(1 / mean_bytes))) if mean_bytes else 0
                if i % 2:
                    data = rng.randbytes(size)
                else:
                    start = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
                    data = pool[start : start + size]
                info = tarfile.TarInfo(f"opt/bigtool/lib{i % 128:03d}/part-{i:07d}.dat")
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 1_700_000_000
                tar.addfile(info, io.BytesIO(data))
        writer.close()
    tmp.replace(archive)
    (directory / "metadata.json").write_text(
        json.dumps({"name": "bigtool", "spec": {"paths": ["/opt/bigtool"]}})
    )
    return directory


def small_bundle() -> Path:
    """Three paths, a few files: the typical configuration add-on."""
    from addon_mount._builders import write_bundle

    directory = cache_dir() / "small"
    if not (directory / "addon.tar.gz").is_file():
        write_bundle(
            directory,
            "small",
            ["/opt/small", "/usr/local/bin/small-cli", "/etc/small.conf"],
            [
                ("opt/small/lib/a.jar", "f", 0o644, "jar" * 100),
                ("opt/small/README", "f", 0o644, "readme"),
                ("usr/local/bin/small-cli", "f", 0o755, "#!/bin/sh\n"),
                ("etc/small.conf", "f", 0o644, "key=value\n"),
            ],
        )
    return directory


def typical_bundle() -> Path:
    """50 members, about 1 MB: a typical add-on (a CLI, its libraries and configuration)."""
    from addon_mount._builders import write_bundle

    directory = cache_dir() / "typical-50"
    if not (directory / "addon.tar.gz").is_file():
        rng = random.Random(50)
        text = _word_pool(rng, 1 << 20)
        members: list[tuple[str, str, int, str]] = [
            ("opt/typical/bin/typical", "f", 0o755, "#!/bin/sh\nexec java -jar /opt/typical/x\n")
        ]
        for i in range(49):
            chunk = text[i * 20_000 : (i + 1) * 20_000].decode()
            members.append((f"opt/typical/lib/part{i:02d}.txt", "f", 0o644, chunk))
        write_bundle(directory, "typical", ["/opt/typical"], members)
    return directory


def runtime_snapshot(entries: int) -> Path:
    """A snapshot file of the default runtime grown to *entries* with package-like trees."""
    path = cache_dir() / f"runtime-{entries}.snap"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    base = list(load_builtin("cml-workbench-python"))
    rng = random.Random(entries)
    extra: list[Entry] = []
    need = entries - len(base)
    package = 0
    while len(extra) < need:
        root = f"/usr/share/bench/pkg{package:05d}"
        extra.append(Entry(root, "d", 0o755, 8536, 0))
        for j in range(min(rng.randint(5, 60), need - len(extra))):
            extra.append(Entry(f"{root}/file{j:03d}", "f", 0o644, 0, 0, rng.randint(0, 9999)))
        package += 1
    tmp = path.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    db = new_snapshot_db(str(tmp))
    count = write_entries(db, [*base, *extra[:need]])
    db.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        [
            ("name", f"bench-{entries}"),
            ("description", f"the default runtime grown to {entries:,} entries"),
            ("entries", str(count)),
        ],
    )
    db.commit()
    db.close()
    tmp.replace(path)
    check = sqlite3.connect(path)
    check.close()
    return path
