"""Generate fixtures/: the docs' example bundle and one broken bundle per finding kind.

Deterministic (fixed times, owners and gzip header); ``--check`` compares the
committed files with a fresh generation (archives by their uncompressed bytes,
so a different zlib build does not matter).
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Callable
from pathlib import Path

from addon_mount._builders import (
    MemberSpec,
    data,
    gnu_long_name,
    header,
    raw_targz,
    tar_bytes,
    targz,
)
from addon_mount._builders import metadata_json as metadata

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


TOOL: list[MemberSpec] = [
    ("opt/tool", "d", 0o755, ""),
    ("opt/tool/bin", "d", 0o755, ""),
    ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\necho tool\n"),
    ("opt/tool/README", "f", 0o644, "the tool\n"),
]


def _elf(loader: str) -> bytes:
    """The first bytes of a 64-bit little-endian ELF program asking for *loader*."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    phoff, phentsize = 64, 56
    header[0x20:0x28] = phoff.to_bytes(8, "little")
    header[0x36:0x38] = phentsize.to_bytes(2, "little")
    header[0x38:0x3A] = (1).to_bytes(2, "little")
    interp = loader.encode() + b"\x00"
    offset = phoff + phentsize
    segment = bytearray(phentsize)
    segment[0:4] = (3).to_bytes(4, "little")  # PT_INTERP
    segment[8:16] = offset.to_bytes(8, "little")
    segment[32:40] = len(interp).to_bytes(8, "little")
    return bytes(header + segment) + interp


def bundles() -> dict[str, dict[str, bytes]]:
    """Every fixture bundle: directory (relative to fixtures/) -> file name -> bytes."""
    docs = [
        ("usr", "d", 0o755, ""),
        ("usr/bin", "d", 0o755, ""),
        ("usr/bin/custom_folder", "d", 0o755, ""),
        ("usr/bin/custom_folder/hello.sh", "f", 0o755, "#!/bin/sh\necho hello from the add-on\n"),
        ("usr/bin/custom_folder/README.txt", "f", 0o644, "A folder exposed by an add-on.\n"),
        ("usr/custom_file", "f", 0o644, "custom file contents\n"),
    ]
    tool = targz(TOOL)
    b: dict[str, dict[str, bytes]] = {
        "docs-example": {
            "metadata.json": metadata(
                "docs-example", ["/usr/bin/custom_folder", "/usr/custom_file"]
            ),
            "addon.tar.gz": targz(docs),
        },
        # -- one broken bundle per finding kind ------------------------------------
        "broken/invalid-bundle": {"metadata.json": metadata("no-archive", ["/opt/tool"])},
        "broken/invalid-metadata": {
            "metadata.json": b'{"name": "tool", "spec": {"paths": "/opt/tool"}}\n',
            "addon.tar.gz": tool,
        },
        "broken/invalid-name": {
            "metadata.json": metadata("Oracle.Driver", ["/opt/tool"]),
            "addon.tar.gz": tool,
        },
        "broken/invalid-path": {
            "metadata.json": metadata("relative-path", ["opt/tool", "/opt/tool/"]),
            "addon.tar.gz": tool,
        },
        "broken/unsupported": {
            # Links fine (cdsw owns /usr/lib) but injects an R library: not supported.
            "metadata.json": metadata("rlib", ["/usr/lib/R"]),
            "addon.tar.gz": targz(
                [
                    ("usr/lib/R/library/mypkg", "d", 0o755, ""),
                    ("usr/lib/R/library/mypkg/DESCRIPTION", "f", 0o644, "Package: mypkg\n"),
                ]
            ),
        },
        "broken/risky-path": {
            "metadata.json": metadata("in-project", ["/home/cdsw/.tool"]),
            "addon.tar.gz": targz([("home/cdsw/.tool", "f", 0o644, "settings\n")]),
        },
        "broken/invalid-archive": {
            "metadata.json": metadata("plain-tar", ["/opt/tool"]),
            # An uncompressed tar named .tar.gz: the usual slip with 'tar -cf'.
            "addon.tar.gz": tar_bytes(TOOL),
        },
        "broken/unsafe-entry": {
            "metadata.json": metadata("escape", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [
                    *TOOL,
                    ("opt/tool/../../../etc/cron.d/evil", "f", 0o644, "* * * * * root true\n"),
                    ("opt/tool/java", "l", 0o777, "/usr/lib/jvm/default-java"),
                ]
            ),
        },
        "broken/duplicate-entry": {
            "metadata.json": metadata("twice", ["/opt/tool"]),
            "addon.tar.gz": targz([*TOOL, ("opt/tool/README", "f", 0o644, "second copy\n")]),
        },
        "broken/unused-entry": {
            "metadata.json": metadata("extra-content", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [*TOOL, ("opt/extra", "d", 0o755, ""), ("opt/extra/notes", "f", 0o644, "unused\n")]
            ),
        },
        "broken/limit-exceeded": {
            "metadata.json": metadata("many-paths", [f"/opt/tool{i}" for i in range(1001)]),
            "addon.tar.gz": tool,
        },
        "broken/missing-entry": {
            "metadata.json": metadata("wrong-layout", ["/opt/tool"]),
            # The classic slip: archived from inside /opt, so the layout lacks 'opt/'.
            "addon.tar.gz": targz(
                [(name.removeprefix("opt/"), kind, mode, data) for name, kind, mode, data in TOOL]
            ),
        },
        "broken/collision": {
            "metadata.json": metadata("profile", ["/etc/profile.d"]),
            "addon.tar.gz": targz(
                [
                    ("etc/profile.d", "d", 0o755, ""),
                    ("etc/profile.d/tool.sh", "f", 0o644, "export TOOL_HOME=/opt/tool\n"),
                ]
            ),
        },
        "broken/addon-collision/first": {
            "metadata.json": metadata("tool-a", ["/opt/tool"]),
            "addon.tar.gz": tool,
        },
        "broken/addon-collision/second": {
            "metadata.json": metadata("tool-b", ["/opt/tool/bin"]),
            "addon.tar.gz": tool,
        },
        "broken/permission-denied": {
            "metadata.json": metadata("locked", ["/var/lib/tool", "/opt/secret.pem"]),
            "addon.tar.gz": targz(
                [
                    ("var/lib/tool", "f", 0o644, "state\n"),
                    ("opt/secret.pem", "f", 0o600, "-----BEGIN PRIVATE KEY-----\n"),
                ]
            ),
        },
        # A runtime of its own (a docker-export tarball): what these need is not
        # in the built-in runtimes. cdsw owns /opt, as in Cloudera's images.
        "broken/broken-parent": {
            "metadata.json": metadata("mounts", ["/opt/data/tool", "/opt/loop/tool"]),
            "addon.tar.gz": targz(
                [
                    ("opt/data/tool", "f", 0o644, "tool\n"),
                    ("opt/loop/tool", "f", 0o644, "tool\n"),
                ]
            ),
            "runtime.tar": tar_bytes(
                [
                    ("opt", "d", 0o755, ""),
                    ("opt/data", "l", 0o777, "/mnt/data"),
                    ("opt/loop", "l", 0o777, "loop"),
                ],
                uid=8536,
            ),
        },
        "broken/unexpected-error": {
            "metadata.json": metadata("long-target", ["/opt/vendor/tool"]),
            "addon.tar.gz": targz([("opt/vendor/tool", "f", 0o644, "tool\n")]),
            "runtime.tar": tar_bytes(
                [("opt", "d", 0o755, ""), ("opt/vendor", "l", 0o777, "v" * 300)], uid=8536
            ),
        },
        "broken/unreadable-content": {
            "metadata.json": metadata("tarred-as-root", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [
                    ("opt/tool", "d", 0o755, ""),
                    ("opt/tool/bin", "d", 0o755, ""),
                    ("opt/tool/bin/run", "f", 0o700, "#!/bin/sh\necho tool\n"),
                    ("opt/tool/bin/helper", "f", 0o644, "#!/bin/sh\necho helper\n"),
                    ("opt/tool/key.pem", "f", 0o600, "-----BEGIN PRIVATE KEY-----\n"),
                ]
            ),
        },
        "broken/stray-file": {
            "metadata.json": metadata("packed-on-a-mac", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [
                    *TOOL,
                    ("opt/tool/bin/._run", "f", 0o644, "\x00\x05\x16\x07"),
                    ("opt/tool/.DS_Store", "f", 0o644, "Bud1"),
                ]
            ),
        },
        # A snapshot of a live session that has the add-on enabled already.
        "broken/in-place": {
            "metadata.json": metadata("live", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [("opt/tool", "d", 0o755, ""), ("opt/tool/README", "f", 0o644, "")]
            ),
            "runtime.tar": tar_bytes(
                [
                    ("opt", "d", 0o755, ""),
                    ("runtime-addons", "d", 0o755, ""),
                    ("runtime-addons/custom-addon-live-h3x9q", "d", 0o755, ""),
                    ("opt/tool", "l", 0o777, "/runtime-addons/custom-addon-live-h3x9q/opt/tool"),
                ],
                uid=8536,
            ),
        },
        "broken/broken-executable": {
            "metadata.json": metadata("scripts", ["/opt/tool"]),
            "addon.tar.gz": targz(
                [
                    ("opt/tool", "d", 0o755, ""),
                    ("opt/tool/bin", "d", 0o755, ""),
                    ("opt/tool/bin/report", "f", 0o755, "#!/usr/bin/php -q\n<?php echo 1;\n"),
                    ("opt/tool/bin/sync", "f", 0o755, "#!/bin/sh\r\necho sync\r\n"),
                    ("opt/tool/bin/fmt", "f", 0o755, "#!/usr/bin/env ruby\nputs 1\n"),
                    ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\necho fine\n"),
                    ("opt/tool/bin/static", "f", 0o755, _elf("/lib/ld-musl-x86_64.so.1")),
                ]
            ),
        },
        "broken/missing-parent": {
            "metadata.json": metadata("vendor", ["/opt/vendor/tool"]),
            "addon.tar.gz": targz(
                [
                    ("opt/vendor/tool", "d", 0o755, ""),
                    ("opt/vendor/tool/run", "f", 0o755, "#!/bin/sh\n"),
                ]
            ),
        },
    }
    b.update(cases())
    return b


def _tool_member(name: str, mode: int, content: str, uid: int) -> bytes:
    """A raw file member with its own owner (tarfile's helpers give one owner to all)."""
    payload = content.encode()
    head = bytearray(header(name.encode(), b"0", size=len(payload), mode=mode))
    head[108:116] = head[116:124] = b"%07o\x00" % uid
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\x00 " % sum(head)
    return bytes(head) + data(payload)


def cases() -> dict[str, dict[str, bytes]]:
    """One bundle per case the content audit and the archive reader must get right.

    ``tests/test_fixtures.py`` holds the findings each gives (CASES there).
    """
    mac_tarball = raw_targz(
        header(b"opt/tool/", b"5", mode=0o755),
        header(b"opt/tool/bin/", b"5", mode=0o755),
        _tool_member("opt/tool/key.pem", 0o600, "-----BEGIN PRIVATE KEY-----\n", 0),
        _tool_member("opt/tool/bin/run", 0o700, "#!/bin/sh\necho run\n", 501),
        _tool_member("opt/tool/bin/._run", 0o644, "\x00\x05\x16\x07", 501),
        _tool_member("opt/tool/._bin", 0o644, "\x00\x05\x16\x07", 501),
        _tool_member("opt/tool/.DS_Store", 0o644, "Bud1", 501),
    )
    many_absolute = raw_targz(
        *(header(f"/opt/tool/part-{i:04}.dat".encode(), b"0", mode=0o644) for i in range(2000))
    )
    long_dir = ("opt/tool/" + "d" * 120 + "/").encode()
    return {
        "cases/mac-tarball": {
            "metadata.json": metadata("mac-tool", ["/opt/tool"]),
            "addon.tar.gz": mac_tarball,
        },
        "cases/wrapper-not-executable": {
            "metadata.json": metadata("wrapper", ["/usr/local/bin/tool"]),
            "addon.tar.gz": targz([("usr/local/bin/tool", "f", 0o644, "#!/bin/sh\nexec x\n")]),
        },
        "cases/crlf-script": {
            "metadata.json": metadata("crlf", ["/usr/local/bin/tool"]),
            "addon.tar.gz": targz(
                [("usr/local/bin/tool", "f", 0o755, "#!/usr/bin/python3\r\nprint(1)\r\n")]
            ),
        },
        "cases/missing-interpreter": {
            "metadata.json": metadata("ruby-tool", ["/usr/local/bin/tool"]),
            "addon.tar.gz": targz(
                [("usr/local/bin/tool", "f", 0o755, "#!/usr/bin/ruby\nputs 1\n")]
            ),
        },
        "cases/many-absolute": {
            "metadata.json": metadata("absolute", ["/opt/tool"]),
            "addon.tar.gz": many_absolute,
        },
        "cases/link-to-own-path": {
            "metadata.json": metadata("own-link", ["/opt/tool", "/usr/local/bin/tool"]),
            "addon.tar.gz": targz([*TOOL, ("usr/local/bin/tool", "l", 0o777, "/opt/tool/bin/run")]),
        },
        "cases/near-name": {
            "metadata.json": metadata("simba", ["/opt/simba-spark"]),
            "addon.tar.gz": targz([("opt/simba/lib/driver.jar", "f", 0o644, "PK")]),
        },
        "cases/dotdot-member": {
            "metadata.json": metadata("dotdot", ["/opt/tool/y"]),
            "addon.tar.gz": raw_targz(header(b"opt/tool/x/../y", b"0", size=2) + data(b"y\n")),
        },
        "cases/regular-header-dir": {
            "metadata.json": metadata("slashdir", ["/opt/tool/x"]),
            "addon.tar.gz": raw_targz(
                header(b"opt/tool/", b"0", mode=0o755),
                header(b"opt/tool/x", b"0", size=2) + data(b"x\n"),
            ),
        },
        "cases/file-with-members": {
            "metadata.json": metadata("clash", ["/opt/tool"]),
            "addon.tar.gz": raw_targz(
                header(b"opt/tool", b"0", size=2) + data(b"x\n"),
                header(b"opt/tool/y", b"0", size=2) + data(b"y\n"),
            ),
        },
        "cases/gnu-long-dir": {
            "metadata.json": metadata("longdir", ["/opt/tool"]),
            "addon.tar.gz": raw_targz(
                gnu_long_name(long_dir) + header(long_dir[:100], b"\0", mode=0o755),
                header(b"opt/tool/README", b"0", size=2) + data(b"r\n"),
            ),
        },
        "cases/bom-script": {
            "metadata.json": metadata("bom-tool", ["/opt/tool"]),
            "addon.tar.gz": targz([("opt/tool/bin/run", "f", 0o755, "\ufeff#!/bin/sh\necho\n")]),
        },
        "cases/conda-bin": {
            "metadata.json": metadata("conda-tool", ["/opt/conda/bin/tool"]),
            "addon.tar.gz": targz([("opt/conda/bin/tool", "f", 0o755, "#!/bin/sh\n")]),
        },
    }


def _comparable(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def write(root: Path, check: bool, report: Callable[[str], None]) -> int:
    stale = 0
    for directory, files in bundles().items():
        for name, content in files.items():
            path = root / directory / name
            if check:
                if not path.is_file() or _comparable(path.read_bytes()) != _comparable(content):
                    report(f"stale: {path.relative_to(root)}")
                    stale += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare the committed fixtures with a fresh generation",
    )
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    stale = write(args.root, args.check, lambda m: print(m, file=sys.stderr))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
