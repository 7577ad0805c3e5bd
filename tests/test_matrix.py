"""Checks across runtimes: the matrix, and one verdict whatever form a runtime comes in."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import addon_mount
from addon_mount import Report

from .conftest import CDSW, TOOL, BundleFactory, needs_root

# (path, type, mode, uid, link target): a little runtime tree, as a directory and a tarball.
TREE = [
    ("usr", "d", 0o755, CDSW, ""),
    ("usr/bin", "d", 0o755, CDSW, ""),
    ("usr/bin/java", "f", 0o755, 0, ""),
    ("usr/bin/sh", "f", 0o755, 0, ""),
    ("usr/lib", "d", 0o755, CDSW, ""),
    ("lib", "l", 0o777, 0, "usr/lib"),
    ("bin", "l", 0o777, 0, "usr/bin"),
    ("opt", "d", 0o755, CDSW, ""),
    ("opt/conda", "d", 0o755, 0, ""),
    ("var", "d", 0o755, 0, ""),
    ("var/lib", "d", 0o755, 0, ""),
    ("etc", "d", 0o777, CDSW, ""),
]


def verdicts(report: Report) -> list[tuple[str, str | None, str]]:
    return sorted((f.code, f.path, f.message) for f in report.findings)


def build_directory(root: Path) -> None:
    for name, kind, mode, uid, target in TREE:
        path = root / name
        if kind == "d":
            path.mkdir()
        elif kind == "f":
            path.write_bytes(b"")
        else:
            path.symlink_to(target)
        if kind != "l":
            path.chmod(mode)
        os.lchown(path, uid, uid)


def build_tarball(path: Path, *, dot_prefix: bool) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, mode, uid, target in TREE:
            info = tarfile.TarInfo(("./" if dot_prefix else "") + name)
            info.type = {"d": tarfile.DIRTYPE, "f": tarfile.REGTYPE, "l": tarfile.SYMTYPE}[kind]
            info.mode = mode
            info.uid = info.gid = uid
            info.linkname = target
            tar.addfile(info)


@pytest.fixture
def bundles(bundle: BundleFactory) -> list[Path]:
    return [
        bundle(
            "tool",
            ["/opt/tool", "/usr/bin/java", "/var/lib/tool", "/lib/tool"],
            [
                *TOOL,
                ("usr/bin/java", "f", 0o755, ""),
                ("var/lib/tool", "f", 0o644, ""),
                ("lib/tool", "f", 0o644, ""),
            ],
        ),
        bundle("conda-ext", ["/opt/conda/ext"], [("opt/conda/ext", "f", 0o644, "")]),
    ]


def test_directory_tarball_and_snapshot_give_identical_verdicts(
    tmp_path: Path, bundles: list[Path]
) -> None:
    needs_root("building a root tree with cdsw's uid")
    """A tree as a directory, as docker-export tarballs and as a snapshot: one verdict."""
    root = tmp_path / "root"
    root.mkdir()
    build_directory(root)
    plain = tmp_path / "rootfs.tar.gz"
    dotted = tmp_path / "rootfs-dot.tar.gz"
    build_tarball(plain, dot_prefix=False)
    build_tarball(dotted, dot_prefix=True)
    snapshot = tmp_path / "runtime.snap"
    done = subprocess.run(
        [sys.executable, "-m", "addon_mount", "snapshot", str(root), "-o", str(snapshot)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reports = [addon_mount.check(bundles, runtime=spec) for spec in (root, plain, dotted, snapshot)]
    expected = verdicts(reports[0])
    assert {(code, path) for code, path, _ in expected} == {
        ("AM301", "/usr/bin/java"),
        ("AM320", "/var/lib/tool"),
        ("AM320", "/opt/conda/ext"),
    }
    for report in reports[1:]:
        assert verdicts(report) == expected
    assert [link.path for link in reports[0].links] == ["/opt/tool", "/lib/tool"]


def test_matrix_tags_a_runtime_only_failure(bundle: BundleFactory) -> None:
    """/opt/conda/x links in the workbench runtime but is denied in the conda one, tagged so."""
    b = bundle("ext", ["/opt/conda/ext"], [("opt/conda/ext", "f", 0o644, "")])
    report = addon_mount.check([b], runtime=["cml-workbench-python", "cml-conda"])
    assert [r.name for r in report.runtimes] == ["cml-workbench-python", "cml-conda"]
    assert [(f.code, f.runtime) for f in report.errors] == [("AM320", "cml-conda")]
    assert report.status("ext", "cml-workbench-python") == "PASSED with warnings"
    assert report.status("ext", "cml-conda") == "FAILED"
    assert [(link.runtime, link.path) for link in report.links] == [
        ("cml-workbench-python", "/opt/conda/ext")
    ]


def test_all_runtimes_and_the_text_table(bundle: BundleFactory) -> None:
    """--runtime all checks every built-in, and the text report has an add-on x runtime table."""
    from click.testing import CliRunner

    from addon_mount._cli import cli

    b = bundle("ext", ["/opt/conda/ext"], [("opt/conda/ext", "f", 0o644, "")])
    result = CliRunner().invoke(cli, ["check", str(b), "--runtime", "all"])
    assert result.exit_code == 1
    names = addon_mount.builtin_names()
    assert len(names) >= 4
    for name in names:
        assert name in result.stdout
    assert "Add-on x runtime" in result.stdout
    assert "[cml-conda]" in result.stdout


def test_each_archive_is_read_once(bundle: BundleFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many runtimes, each bundle's archive is streamed once."""
    import addon_mount._check as check_module

    calls: list[str] = []
    real = check_module.read_archive

    def counting(path: Path, **kw: object) -> object:
        calls.append(str(path))
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(check_module, "read_archive", counting)
    b = bundle("tool", ["/opt/tool"], TOOL)
    report = addon_mount.check([b], runtime="all")
    assert len(report.runtimes) == len(addon_mount.builtin_names())
    assert len(calls) == 1


def test_same_runtime_twice_is_a_usage_error(bundle: BundleFactory) -> None:
    """Naming one runtime twice cannot run (its findings would be ambiguous)."""
    b = bundle("tool", ["/opt/tool"], TOOL)
    with pytest.raises(addon_mount.RuntimeLoadError, match="given more than once"):
        addon_mount.check([b], runtime=["cml-r", "cml-r"])
