"""Inputs are only ever read; reports are written atomically and never over a file unasked."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from addon_mount._builders import metadata_json, targz
from addon_mount._files import OutputExistsError, atomic_write

from .conftest import run_cli

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# (path, mode, flags) of every open while recording; None when not recording.
_opens: list[tuple[str, str | None, int]] | None = None
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opens is not None and isinstance(args[0], str | bytes | Path):
        _opens.append((os.fsdecode(args[0]), args[1], args[2]))


@pytest.fixture
def opens() -> Iterator[list[tuple[str, str | None, int]]]:
    """Every file the code opens during the test, from the interpreter's audit events."""
    global _opens, _hooked  # noqa: PLW0603 - an audit hook cannot be removed, only muted
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    _opens = []
    try:
        yield _opens
    finally:
        _opens = None


run = run_cli


def make_bundle(root: Path, name: str, archive: bytes | None = None) -> Path:
    bundle = root / name
    bundle.mkdir(parents=True)
    (bundle / "metadata.json").write_bytes(metadata_json(name, ["/opt/tool", "/usr/bin/env"]))
    data = archive if archive is not None else targz([("opt/tool/run", "f", 0o755, "#!")])
    (bundle / "addon.tar.gz").write_bytes(data)
    return bundle


def fingerprint(directory: Path) -> dict[str, tuple[str, int, int, int]]:
    """Name -> (sha256, size, mtime_ns, mode) of everything in *directory*."""
    return {
        p.name: (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_size,
            p.stat().st_mtime_ns,
            p.stat().st_mode,
        )
        for p in sorted(directory.iterdir())
    }


@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_inputs_are_unchanged_by_a_check(
    tmp_path: Path,
    output_format: str,
    opens: list[tuple[str, str | None, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A check leaves every input byte, size, mtime and mode as it was, and adds no file."""
    good = make_bundle(tmp_path / "in", "good")
    broken = make_bundle(tmp_path / "in", "broken", archive=targz([("x", "f", 0o644, "")])[:40])
    before = {b: fingerprint(b) for b in (good, broken)}
    out = tmp_path / "out" / "report"
    out.parent.mkdir()
    opens.clear()  # only what the check opens
    status, _, err = run(
        ["check", str(good), str(broken), "--format", output_format, "--output", str(out)], capsys
    )
    assert (status, err) == (1, "")
    assert {b: fingerprint(b) for b in (good, broken)} == before
    assert out.is_file()
    inputs = [(p, mode, flags) for p, mode, flags in opens if p.startswith(str(tmp_path / "in"))]
    assert {Path(p).name for p, _, _ in inputs} >= {"metadata.json", "addon.tar.gz"}
    for path, mode, flags in inputs:
        assert mode in (None, "r", "rb"), (path, mode)
        assert flags & WRITE_FLAGS == 0, (path, oct(flags))


def test_existing_output_is_kept_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output naming an existing file exits 2 and leaves the file as it was."""
    bundle = make_bundle(tmp_path, "tool")
    out = tmp_path / "report.json"
    out.write_text("precious")
    os.utime(out, ns=(1_000_000_000, 1_000_000_000))
    status, stdout, err = run(["check", str(bundle), "--format", "json", "-o", str(out)], capsys)
    assert status == 2
    assert stdout == ""
    assert err == f"addon-mount: error: {str(out)!r} exists; pass --force to overwrite it\n"
    assert out.read_text() == "precious"
    assert out.stat().st_mtime_ns == 1_000_000_000


def test_force_replaces_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --force the report replaces the file, and no temporary file is left beside it."""
    bundle = make_bundle(tmp_path, "tool")
    out = tmp_path / "reports" / "report.json"
    out.parent.mkdir()
    out.write_text("old")
    status, _, _ = run(
        ["check", str(bundle), "--format", "json", "-o", str(out), "--force"], capsys
    )
    assert status == 1
    assert out.read_text().startswith('{\n  "schema": 1,')
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]


def test_force_replaces_a_symlink_not_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force on a symlink replaces the link itself: the file it pointed to is untouched."""
    bundle = make_bundle(tmp_path, "tool")
    before = fingerprint(bundle)
    link = tmp_path / "report.json"
    link.symlink_to(bundle / "metadata.json")
    status, _, _ = run(["check", str(bundle), "-f", "json", "-o", str(link)], capsys)
    assert status == 2
    status, _, _ = run(["check", str(bundle), "-f", "json", "-o", str(link), "--force"], capsys)
    assert status == 1
    assert not link.is_symlink()
    assert link.read_text().startswith("{")
    assert fingerprint(bundle) == before


def test_new_output_gets_the_mode_open_would_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report file is created with 0666 minus the umask, not the temp file's 0600."""
    bundle = make_bundle(tmp_path, "tool")
    out = tmp_path / "report.txt"
    umask = os.umask(0o027)
    try:
        run(["check", str(bundle), "-o", str(out)], capsys)
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o640


def test_failed_write_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write that fails (disk full) exits 2 naming the cause; the old file stays whole."""
    bundle = make_bundle(tmp_path, "tool")
    out = tmp_path / "reports" / "report.json"
    out.parent.mkdir()
    out.write_text("old report")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("addon_mount._capture.os.fsync", disk_full)
    status, _, err = run(["check", str(bundle), "-f", "json", "-o", str(out), "--force"], capsys)
    assert status == 2
    assert err == (f"addon-mount: error: cannot write {str(out)!r}: {os.strerror(errno.ENOSPC)}\n")
    assert out.read_text() == "old report"
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]


def test_output_in_a_missing_directory_is_exit_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --output whose directory does not exist is a one-line error, exit 2."""
    bundle = make_bundle(tmp_path, "tool")
    out = tmp_path / "no-such-dir" / "report.json"
    status, _, err = run(["check", str(bundle), "-o", str(out)], capsys)
    assert status == 2
    assert err == (f"addon-mount: error: cannot write {str(out)!r}: {os.strerror(errno.ENOENT)}\n")
    assert not out.parent.exists()


def test_atomic_write_refuses_a_file_created_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that appears at the path while the report is written is kept, not replaced."""
    target = tmp_path / "report.json"
    real_fsync = os.fsync

    def someone_else_writes(fd: int) -> None:
        real_fsync(fd)
        target.write_text("theirs")

    monkeypatch.setattr("addon_mount._capture.os.fsync", someone_else_writes)
    with pytest.raises(OutputExistsError) as exc:
        atomic_write(target, b"ours")
    assert exc.value.path == target
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    """atomic_write writes a new file, refuses an existing one, and replaces it with force."""
    target = tmp_path / "report.json"
    atomic_write(target, b"one")
    with pytest.raises(OutputExistsError, match="pass --force to overwrite it"):
        atomic_write(target, b"two")
    assert target.read_bytes() == b"one"
    atomic_write(target, b"three", force=True)
    assert target.read_bytes() == b"three"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
