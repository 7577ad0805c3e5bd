"""Fuzzing: mutated tar headers and gzip streams of a valid add-on never crash the check.

Mutations are seeded and deterministic (byte flips, truncations, inserted and
deleted bytes), applied to the tar before compression and to the gzip stream
itself. Whatever comes out, read_bundle and simulate return a report, the
report renders as UTF-8, and the CLI exits 0 or 1 without a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from addon_mount import RULES, RuntimeImage
from addon_mount._builders import MemberSpec, metadata_json, tar_bytes
from addon_mount._check import read_bundle, simulate
from addon_mount._cli import main
from addon_mount._render import render_json, render_sarif, render_text

from .conftest import cml_entries

MEMBERS: list[MemberSpec] = [
    ("opt/tool", "d", 0o755, ""),
    ("opt/tool/bin", "d", 0o755, ""),
    ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\n" * 40),
    ("opt/tool/lib", "l", 0o777, "bin"),
    ("opt/tool/run-again", "h", 0o644, "opt/tool/bin/run"),
    ("opt/tool/" + "é" * 60, "f", 0o644, "pax names this one"),
    ("opt/tool/" + "deep/" * 25 + "file", "f", 0o600, "long name"),
    ("usr/bin/tool", "l", 0o777, "../../opt/tool/bin/run"),
]
PATHS = ["/opt/tool", "/usr/bin/tool"]
TAR = tar_bytes(MEMBERS)
GZ = gzip.compress(TAR, mtime=0)
# Where each header block starts: flips there reach tarfile's header parsing.
with tarfile.open(fileobj=io.BytesIO(TAR)) as _tar:
    HEADERS = [info.offset for info in _tar]
CASES_PER_SEED = 10
SEEDS = range(36)

Mutation = Callable[[random.Random, bytes], tuple[bytes, str]]


def flip_header(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    block = rng.choice(HEADERS)
    spots = [block + rng.randrange(512) for _ in range(rng.randint(1, 6))]
    for spot in spots:
        out[spot] = rng.randrange(256)
    return bytes(out), f"header bytes {spots} changed"


def flip_anywhere(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))]
    for spot in spots:
        out[spot] ^= 1 << rng.randrange(8)
    return bytes(out), f"bits flipped at {spots}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    return data[:at], f"truncated at {at}"


def insert(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    extra = rng.choice([rng.randbytes(rng.randint(1, 700)), b"\0" * 512, data[:512]])
    return data[:at] + extra + data[at:], f"{len(extra)} bytes inserted at {at}"


def delete(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    size = rng.randint(1, 700)
    return data[:at] + data[at + size :], f"{size} bytes deleted at {at}"


TAR_MUTATIONS: list[Mutation] = [flip_header, flip_header, flip_anywhere, truncate, insert, delete]
GZIP_MUTATIONS: list[Mutation] = [flip_anywhere, truncate, insert, delete]


def mutated(seed: int, index: int) -> tuple[bytes, str]:
    """The archive for case *index* of *seed*: a mutated tar gzipped, or a mutated gzip."""
    rng = random.Random(seed * 1000 + index)
    if rng.random() < 0.6:
        data, what = rng.choice(TAR_MUTATIONS)(rng, TAR)
        return gzip.compress(data, mtime=0), f"tar: {what}"
    data, what = rng.choice(GZIP_MUTATIONS)(rng, GZ)
    return data, f"gzip: {what}"


def bundle_dir(tmp_path: Path) -> Path:
    bundle = tmp_path / "tool"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("tool", PATHS))
    return bundle


def test_unmutated_addon_is_clean(tmp_path: Path) -> None:
    """The add-on the fuzzer mutates is valid: every member indexed, no archive finding."""
    bundle = bundle_dir(tmp_path)
    (bundle / "addon.tar.gz").write_bytes(GZ)
    read = read_bundle(bundle)
    assert read.archive is not None
    assert read.archive.complete
    assert read.archive.member_count == len(MEMBERS)
    assert [f.code for f in read.findings] == []


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_archives_give_a_report(tmp_path: Path, seed: int) -> None:
    """No mutated archive makes read_bundle, simulate or a renderer raise."""
    bundle = bundle_dir(tmp_path)
    runtime = RuntimeImage.from_entries(cml_entries(), name="tiny")
    for index in range(CASES_PER_SEED):
        data, what = mutated(seed, index)
        (bundle / "addon.tar.gz").write_bytes(data)
        case = f"seed {seed} case {index} ({what})"
        try:
            read = read_bundle(bundle)
            report = simulate([read], [runtime])
            rendered = render_json(report).encode("utf-8")
            render_sarif(report, "0").encode("utf-8")
            text = io.StringIO()
            render_text(report, text)
            text.getvalue().encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - the failure message names the case
            pytest.fail(f"{case}: {type(exc).__name__}: {exc}")
        assert {f.code for f in report.findings} <= set(RULES), case
        assert len(json.loads(rendered)["findings"]) == len(report.findings), case
        assert read.archive is not None, case
        if not read.archive.complete:
            # An archive read only in part always says why.
            assert {"AM200", "AM201", "AM240"} & {f.code for f in read.findings}, case


@pytest.mark.parametrize(
    ("seed", "output_format"),
    [(1, "json"), (2, "sarif"), (3, "text"), (5, "json"), (8, "sarif"), (13, "text")],
)
def test_cli_on_mutated_archives_exits_zero_or_one(
    tmp_path: Path, seed: int, output_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reports on mutated archives with exit 0 or 1 and never a traceback."""
    bundle = bundle_dir(tmp_path)
    for index in range(3):
        data, what = mutated(seed, index)
        (bundle / "addon.tar.gz").write_bytes(data)
        with pytest.raises(SystemExit) as exc:
            main(["check", str(bundle), "--format", output_format])
        out, err = capsys.readouterr()
        assert exc.value.code in (0, 1), f"{what}: {err}"
        assert "Traceback" not in err
        assert "internal error" not in err
        if output_format != "text":
            assert json.loads(out)
        else:
            assert "Summary:" in out


# -- hand-made hostile members, requested so the start-up walks them -----------------


def hostile_tar(*infos: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape"
    ) as tar:
        for info, data in infos:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def entry(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755
    for key, value in fields.items():
        setattr(info, key, value)
    return info


HOSTILE = {
    "name-not-utf8": [(entry("opt/tool/\udcfc"), b"x"), (entry("opt/tool/\udcfcd", b"5"), b"")],
    "name-with-escape-sequence": [(entry("opt/tool/\x1b[2J\x1b]0;pwned\x07"), b"")],
    "name-with-newline": [(entry("opt/tool/a\nb"), b"")],
    "pax-name-with-nul": [(entry("opt/tool/x", pax_headers={"path": "opt/tool/a\x00b"}), b"")],
    "root-is-a-file": [(entry("."), b"x"), (entry("opt/tool/x"), b"")],
    "root-is-a-symlink": [(entry(".", tarfile.SYMTYPE, linkname="/etc"), b"")],
    "hard-link-to-directory": [
        (entry("opt/tool", tarfile.DIRTYPE), b""),
        (entry("opt/tool/h", tarfile.LNKTYPE, linkname="opt/tool"), b""),
    ],
    "hard-link-chain": [
        (entry("opt/tool/f"), b"x"),
        (entry("opt/tool/h", tarfile.LNKTYPE, linkname="opt/tool/f"), b""),
        (entry("opt/tool/h2", tarfile.LNKTYPE, linkname="opt/tool/h"), b""),
    ],
    "symlink-to-itself": [(entry("opt/tool", tarfile.SYMTYPE, linkname="tool"), b"")],
    "symlink-loop": [
        (entry("opt/tool", tarfile.SYMTYPE, linkname="x"), b""),
        (entry("opt/x", tarfile.SYMTYPE, linkname="tool"), b""),
    ],
    "symlink-into-own-mount": [
        (
            entry(
                "opt/tool",
                tarfile.SYMTYPE,
                linkname="/runtime-addons/custom-addon-tool/opt/tool",
            ),
            b"",
        )
    ],
    "symlink-empty-target": [(entry("opt/tool", tarfile.SYMTYPE, linkname=""), b"")],
    "symlink-to-proc": [(entry("opt/tool", tarfile.SYMTYPE, linkname="/proc/self/root"), b"")],
    "file-then-directory": [(entry("opt/tool"), b"x"), (entry("opt/tool/x"), b"")],
    "mode-zero": [(entry("opt/tool", tarfile.DIRTYPE, mode=0), b""), (entry("opt/tool/x"), b"")],
    "huge-owner-ids": [(entry("opt/tool", tarfile.DIRTYPE, uid=2**40, gid=2**40), b"")],
    "negative-mtime": [(entry("opt/tool", tarfile.DIRTYPE, mtime=-(10**12)), b"")],
    "pax-bad-uid": [(entry("opt/tool/x", pax_headers={"uid": "not-a-number"}), b"")],
    "pax-bad-mtime": [(entry("opt/tool/x", pax_headers={"mtime": "nan"}), b"")],
    "pax-empty-path": [(entry("opt/tool/x", pax_headers={"path": ""}), b"")],
    "pax-negative-size": [(entry("opt/tool/x", pax_headers={"size": "-5"}), b"")],
    "pax-huge-realsize": [
        (
            entry(
                "opt/tool/x",
                pax_headers={
                    "GNU.sparse.major": "1",
                    "GNU.sparse.minor": "0",
                    "GNU.sparse.realsize": "99999999999999",
                },
            ),
            b"",
        )
    ],
    "pax-sparse-map-odd": [
        (entry("opt/tool/x", pax_headers={"GNU.sparse.map": "0,1,5", "GNU.sparse.size": "9"}), b"")
    ],
}
HOSTILE_PARAMS = [pytest.param(members, id=name) for name, members in HOSTILE.items()] + [
    pytest.param(
        [(entry("opt/tool", tarfile.SYMTYPE, linkname="\udcff"), b"")],
        id="symlink-target-not-utf8",
    )
]


@pytest.mark.parametrize("members", HOSTILE_PARAMS)
def test_hostile_members_on_requested_paths(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]
) -> None:
    """Odd but well-formed members under the requested paths give a report, never an error."""
    bundle = tmp_path / "tool"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("tool", ["/opt/tool", "/opt/x"]))
    (bundle / "addon.tar.gz").write_bytes(hostile_tar(*members))
    report = simulate([read_bundle(bundle)], [RuntimeImage.from_entries(cml_entries(), name="t")])
    assert {f.code for f in report.findings} <= set(RULES)
    json.loads(render_json(report).encode("utf-8"))
    text = io.StringIO()
    render_text(report, text)
    assert "\x1b" not in text.getvalue()
    assert "\x07" not in text.getvalue()
