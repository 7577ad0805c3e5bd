"""Tests for addon_mount._capture (capture.py) and the ``addon-mount snapshot`` command."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from addon_mount import _capture
from addon_mount._cli_runtimes import snapshot_command
from addon_mount._runtime import Entry, RuntimeImage
from addon_mount._runtime_sources import image_from_directory, load_runtime

CAPTURE_SOURCE = Path(_capture.__file__).read_text(encoding="utf-8")


def make_root(root: Path) -> Path:
    """A small root with kernel trees, a deep project and a mounted add-on."""
    for directory in ("usr/bin", "etc", "proc/1", "sys/fs", "dev/pts"):
        (root / directory).mkdir(parents=True)
    (root / "usr/bin/python3").write_bytes(b"\x7fELF")
    (root / "bin").symlink_to("usr/bin")
    (root / "proc/1/status").write_text("")
    (root / "sys/fs/cgroup").write_text("")
    (root / "dev/null").write_text("")
    (root / "home/cdsw/project/src").mkdir(parents=True)
    (root / "home/cdsw/project/src/main.py").write_text("")
    (root / "home/cdsw/README.md").write_text("")
    (root / "runtime-addons/custom-addon-x/opt/x/lib").mkdir(parents=True)
    (root / "runtime-addons/custom-addon-x/opt/x/lib/x.jar").write_bytes(b"PK")
    return root


def paths(image: RuntimeImage) -> list[str]:
    return [e.path for e in image]


def leftovers(directory: Path) -> list[str]:
    """Temporary files a failed write might have left in *directory*."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- the script's contract ---------------------------------------------------------


def test_script_parses_as_python_38() -> None:
    """capture.py uses no syntax newer than Python 3.8."""
    ast.parse(CAPTURE_SOURCE, feature_version=(3, 8))


def test_script_imports_only_the_standard_library() -> None:
    """capture.py imports nothing but standard-library modules."""
    modules = set()
    for node in ast.walk(ast.parse(CAPTURE_SOURCE)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "capture.py must not import from its package"
            modules.add((node.module or "").split(".")[0])
    assert modules <= sys.stdlib_module_names


def test_script_avoids_newer_apis() -> None:
    """capture.py calls no standard-library API added after Python 3.8."""
    newer = {"removeprefix", "removesuffix", "cache", "is_relative_to", "readlink", "with_stem"}
    used = set()
    for node in ast.walk(ast.parse(CAPTURE_SOURCE)):
        if isinstance(node, ast.Attribute) and node.attr in newer:
            used.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg == "strict":
            used.add("zip(strict=...)")
    # os.readlink is 3.3-era; only Path.readlink (3.9) would be a problem.
    assert used <= {"readlink"}
    assert "Path(" not in CAPTURE_SOURCE.replace('Path("/proc/self/mountinfo")', "")


@pytest.mark.parametrize(
    ("path", "recorded"),
    [
        ("/", True),
        ("/proc", True),
        ("/proc/1", False),
        ("/sys/fs/cgroup", False),
        ("/dev/null", False),
        ("/devices", True),
        ("/home/cdsw", True),
        ("/home/cdsw/project", True),
        ("/home/cdsw/project/src", False),
        ("/home/cdswx/a/b", True),
        ("/runtime-addons/a/b/c/d", True),
    ],
)
def test_capture_policy(path: str, recorded: bool) -> None:
    """Kernel trees' contents and anything deeper than /home/cdsw's top level are left out."""
    assert _capture.is_recorded(path) is recorded


# -- walking -----------------------------------------------------------------------


def test_walk_skips_kernel_trees_and_deep_home(tmp_path: Path) -> None:
    """A walk keeps /proc, /sys, /dev bare, /home/cdsw one level deep, /runtime-addons whole."""
    image = image_from_directory(make_root(tmp_path / "root"))
    assert paths(image) == [
        "/",
        "/bin",
        "/dev",
        "/etc",
        "/home",
        "/home/cdsw",
        "/home/cdsw/README.md",
        "/home/cdsw/project",
        "/proc",
        "/runtime-addons",
        "/runtime-addons/custom-addon-x",
        "/runtime-addons/custom-addon-x/opt",
        "/runtime-addons/custom-addon-x/opt/x",
        "/runtime-addons/custom-addon-x/opt/x/lib",
        "/runtime-addons/custom-addon-x/opt/x/lib/x.jar",
        "/sys",
        "/usr",
        "/usr/bin",
        "/usr/bin/python3",
    ]
    assert image.get("/usr/bin/python3").size == 4  # type: ignore[union-attr]
    assert image.get("/bin") == Entry("/bin", "l", 0o777, os.getuid(), os.getgid(), 0, "usr/bin")


def test_walk_yields_parents_first_in_sorted_order(tmp_path: Path) -> None:
    """Rows come depth-first, names sorted, each parent before its children."""
    rows = list(_capture.walk(str(make_root(tmp_path / "root"))))
    seen = set()
    for row in rows:
        assert row[0] == "/" or _capture.parent_of(row[0]) in seen
        seen.add(row[0])
    assert rows == list(_capture.walk(str(tmp_path / "root")))


def test_walk_records_undecodable_names(tmp_path: Path) -> None:
    """A file name that is not UTF-8 is stored with backslash escapes, not dropped."""
    root = tmp_path / "root"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9")).touch()  # names are bytes on disk
    assert [row[0] for row in _capture.walk(str(root))] == ["/", "/caf\\xe9"]


def _fake_mounts(monkeypatch: pytest.MonkeyPatch, mounts: dict[str, str]) -> None:
    monkeypatch.setattr(_capture, "mount_points", lambda root: mounts)


def test_walk_does_not_cross_mounts_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount point is recorded but not walked into, unless cross_mounts is set."""
    root = tmp_path / "root"
    (root / "mnt/data/inner").mkdir(parents=True)
    _fake_mounts(monkeypatch, {"/mnt/data": "nfs"})
    report = _capture.WalkReport()
    assert [r[0] for r in _capture.walk(str(root), report=report)] == ["/", "/mnt", "/mnt/data"]
    assert report.not_crossed == ["/mnt/data"]
    crossed = [r[0] for r in _capture.walk(str(root), cross_mounts=True)]
    assert crossed == ["/", "/mnt", "/mnt/data", "/mnt/data/inner"]


def test_walk_never_enters_pseudo_filesystems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pseudo filesystem mounted anywhere stays bare, even with cross_mounts."""
    root = tmp_path / "root"
    (root / "var/run/netns/x").mkdir(parents=True)
    _fake_mounts(monkeypatch, {"/var/run/netns": "nsfs"})
    walked = [r[0] for r in _capture.walk(str(root), cross_mounts=True)]
    assert walked == ["/", "/var", "/var/run", "/var/run/netns"]


def test_walk_always_enters_home_and_addons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/home/cdsw (top level) and /runtime-addons are walked even when they are mounts."""
    root = make_root(tmp_path / "root")
    _fake_mounts(monkeypatch, {"/home/cdsw": "nfs4", "/runtime-addons/custom-addon-x": "overlay"})
    report = _capture.WalkReport()
    walked = [r[0] for r in _capture.walk(str(root), report=report)]
    assert "/home/cdsw/README.md" in walked
    assert "/runtime-addons/custom-addon-x/opt/x/lib/x.jar" in walked
    assert report.not_crossed == []


def test_walk_detects_mounts_by_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory on another device is a mount point even when mountinfo does not list it."""
    root = tmp_path / "root"
    (root / "data/inner").mkdir(parents=True)
    _fake_mounts(monkeypatch, {})
    real_lstat = os.lstat
    other = str(root / "data")

    def lstat(path: str) -> os.stat_result:
        st = real_lstat(path)
        if path == other:
            values = list(st)
            values[2] = st.st_dev + 1  # index 2 of a stat tuple is st_dev
            return os.stat_result(values)
        return st

    monkeypatch.setattr(_capture.os, "lstat", lstat)
    report = _capture.WalkReport()
    assert [r[0] for r in _capture.walk(str(root), report=report)] == ["/", "/data"]
    assert report.not_crossed == ["/data"]


def test_unlistable_directory_is_recorded_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory that cannot be listed is kept as an entry and named in the report."""
    root = tmp_path / "root"
    (root / "root/secret").mkdir(parents=True)
    real_listdir = os.listdir
    private = str(root / "root")

    def listdir(path: str) -> list[str]:
        if path == private:
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(_capture.os, "listdir", listdir)
    image = image_from_directory(root)
    assert paths(image) == ["/", "/root"]
    assert json.loads(image.meta["unreadable"]) == ["/root"]


# -- writing snapshots -----------------------------------------------------------


def test_capture_writes_a_snapshot_the_package_opens(tmp_path: Path) -> None:
    """capture() writes a plain SQLite snapshot with the same entries a directory load gives."""
    root = make_root(tmp_path / "root")
    out = tmp_path / "runtime.snap"
    count, report = _capture.capture(str(root), str(out))
    image = RuntimeImage.from_snapshot(out)
    assert out.read_bytes()[:16] == b"SQLite format 3\x00"
    assert count == len(image) == 19
    assert list(image) == list(image_from_directory(root))
    assert image.name == "runtime"
    assert image.meta["tool"] == "capture.py"
    assert image.meta["source"] == str(root)
    assert report.unreadable == []


def test_capture_to_a_gz_name_compresses(tmp_path: Path) -> None:
    """An output name ending in .gz gives a gzip-compressed snapshot the package opens."""
    root = make_root(tmp_path / "root")
    out = tmp_path / "runtime.snap.gz"
    _capture.capture(str(root), str(out))
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    image = load_runtime(out)
    assert image.name == "runtime"
    assert list(image) == list(image_from_directory(root))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["runtime.snap", "runtime.snap.gz"])
def test_capture_inside_the_tree_leaves_out_its_own_file(tmp_path: Path, name: str) -> None:
    """A snapshot written inside the tree it captures does not list itself or its temp file."""
    root = make_root(tmp_path / "root")
    out = root / "home/cdsw" / name
    _capture.capture(str(root), str(out))
    assert [e.path for e in load_runtime(out).children("/home/cdsw")] == [
        "/home/cdsw/README.md",
        "/home/cdsw/project",
    ]


def test_script_runs_isolated_in_a_subprocess(tmp_path: Path) -> None:
    """'python -I -S capture.py ROOT -o out.snap' works from a copy of the file alone."""
    script = tmp_path / "capture.py"
    shutil.copyfile(_capture.__file__, script)
    root = make_root(tmp_path / "root")
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(root), "-o", "out.snap", "--name", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "capture.py: wrote out.snap (19 entries)\n"
    image = RuntimeImage.from_snapshot(tmp_path / "out.snap")
    assert image.name == "demo"
    assert list(image) == list(image_from_directory(root))


def test_script_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """The script exits 2 and leaves an existing output alone unless --force is given."""
    root = make_root(tmp_path / "root")
    out = tmp_path / "out.snap"
    out.write_text("keep me")
    assert _capture.main([str(root), "-o", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert _capture.main([str(root), "-o", str(out), "--force"]) == 0
    assert len(RuntimeImage.from_snapshot(out)) == 19
    assert leftovers(tmp_path) == []


def test_script_reports_a_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A root that does not exist is one error line and exit status 2, with nothing written."""
    missing = tmp_path / "nope"
    assert _capture.main([str(missing), "-o", str(tmp_path / "out.snap")]) == 2
    assert capsys.readouterr().err == (
        f"capture.py: error: {str(missing)!r}: No such file or directory\n"
    )
    assert list(tmp_path.iterdir()) == []


def _failing_walk(error: BaseException) -> object:
    def walk(root: str, **_: object) -> Iterator[tuple[object, ...]]:
        yield ("/", "d", 0o755, 0, 0, 0, None)
        raise error

    return walk


@pytest.mark.parametrize("name", ["out.snap", "out.snap.gz"])
@pytest.mark.parametrize(
    "error", [OSError(5, "Input/output error"), KeyboardInterrupt()], ids=["oserror", "interrupt"]
)
def test_failed_capture_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, name: str
) -> None:
    """An error or Ctrl-C mid-walk removes the temporary files and writes no output."""
    monkeypatch.setattr(_capture, "walk", _failing_walk(error))
    out = tmp_path / name
    with pytest.raises(type(error)):
        _capture.capture(str(tmp_path), str(out))
    assert list(tmp_path.iterdir()) == []


def test_output_appearing_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    """Without force, a file created at OUTPUT while the snapshot was written is kept."""
    out = tmp_path / "out.snap"

    def write(temp: str) -> int:
        out.write_text("arrived first")
        Path(temp).write_text("ours")
        return 1

    with pytest.raises(FileExistsError):
        _capture.write_atomically(str(out), write)
    assert out.read_text() == "arrived first"
    assert leftovers(tmp_path) == []


def test_atomic_write_gives_a_normal_file_mode(tmp_path: Path) -> None:
    """The published file gets the mode open() would give, not mkstemp's 600."""
    out = tmp_path / "out.snap"
    _capture.write_atomically(str(out), lambda temp: Path(temp).write_text("x"))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_runtime_env_is_recorded_only_for_the_live_root() -> None:
    """ML_RUNTIME_* variables describe the running system, so only '/' records them."""
    env = {"ML_RUNTIME_EDITOR": "JupyterLab", "ML_RUNTIME_KERNEL": "Python 3.10", "HOME": "/x"}
    assert _capture.runtime_env("/", env) == {
        "ML_RUNTIME_EDITOR": "JupyterLab",
        "ML_RUNTIME_KERNEL": "Python 3.10",
    }
    assert _capture.runtime_env("/tmp", env) == {}
    meta = _capture.snapshot_meta(
        "/",
        name=None,
        description=None,
        cross_mounts=False,
        report=_capture.WalkReport(),
        environ=env,
    )
    assert meta["description"] == "JupyterLab Python 3.10 runtime: root filesystem under '/'"
    assert json.loads(meta["runtime_env"]) == {
        "ML_RUNTIME_EDITOR": "JupyterLab",
        "ML_RUNTIME_KERNEL": "Python 3.10",
    }


# -- addon-mount snapshot ---------------------------------------------------------


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(snapshot_command, args)
    return result.exit_code, result.stdout, result.stderr


def test_snapshot_command_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """'snapshot ROOT -o FILE' writes a snapshot, then refuses to overwrite it without --force."""
    root = make_root(tmp_path / "root")
    out = tmp_path / "out.snap"
    assert run([str(root), "-o", str(out)]) == (
        0,
        "",
        f"wrote {out}: 19 entries from {root}\n",
    )
    assert list(load_runtime(out)) == list(load_runtime(root))
    status, _, err = run([str(root), "-o", str(out)])
    assert (status, err) == (
        2,
        f"addon-mount: error: {str(out)!r} exists; pass --force to overwrite it\n",
    )
    assert run([str(root), "-o", str(out), "--force"])[0] == 0


def test_snapshot_command_from_tar(tmp_path: Path) -> None:
    """'snapshot --from-tar' records a tarball's entries as they load directly."""
    root = make_root(tmp_path / "root")
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname=".")
    out = tmp_path / "out.snap"
    status, _, err = run(["--from-tar", str(tarball), "-o", str(out)])
    assert status == 0, err
    snapshot = load_runtime(out)
    assert snapshot.name == "rootfs"
    assert list(snapshot) == list(load_runtime(tarball)) == list(load_runtime(root))


def test_snapshot_command_print_script(tmp_path: Path) -> None:
    """'snapshot --print-script' prints capture.py, or writes it with -o."""
    status, out, _ = run(["--print-script"])
    assert (status, out) == (0, CAPTURE_SOURCE)
    target = tmp_path / "capture.py"
    assert run(["--print-script", "-o", str(target)])[0] == 0
    assert target.read_text(encoding="utf-8") == CAPTURE_SOURCE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing -o/--output: the snapshot file to write"),
        (["ROOT", "--from-tar", "T", "-o", "x"], "give ROOT or --from-tar, not both"),
        (["--print-script", "ROOT"], "--print-script takes no ROOT or --from-tar"),
        (
            ["--from-tar", "T", "--cross-mounts", "-o", "x"],
            "--cross-mounts applies to a directory, not to --from-tar",
        ),
        (
            ["--from-tar", "NOTAR", "-o", "x"],
            "cannot read runtime tarball 'NOTAR': not a readable tar archive: invalid header",
        ),
        (["MISSING", "-o", "x"], "cannot read 'MISSING': No such file or directory"),
    ],
)
def test_snapshot_command_errors_are_one_line_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Usage and input errors exit 2 with one 'addon-mount: error:' line and no traceback."""
    (tmp_path / "T").write_bytes(b"")
    (tmp_path / "NOTAR").write_text("not a tar archive\n" * 40)
    names = {"ROOT": str(tmp_path), "T": str(tmp_path / "T"), "x": str(tmp_path / "x")}
    names.update({"NOTAR": str(tmp_path / "NOTAR"), "MISSING": str(tmp_path / "MISSING")})
    expanded = [names.get(a, a) for a in args]
    status, out, err = run(expanded)
    for key, value in names.items():
        message = message.replace(f"'{key}'", repr(value))
    assert (status, out, err) == (2, "", f"addon-mount: error: {message}\n")
