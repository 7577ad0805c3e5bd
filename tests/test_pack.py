"""pack: a staging tree or a sloppy tarball in, a reproducible and checked bundle out."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

import addon_mount
from addon_mount._pack import PackError, normalized_mode, pack, source_date_epoch

from .conftest import needs_tool, run_cli


def tree(root: Path) -> Path:
    """A staging tree: a tool, a private file, a hard link, macOS litter."""
    (root / "opt/tool/bin").mkdir(parents=True)
    (root / "opt/tool/bin/run").write_text("#!/bin/sh\n")
    (root / "opt/tool/bin/run").chmod(0o4700)
    (root / "opt/tool/key").write_text("secret\n")
    (root / "opt/tool/key").chmod(0o600)
    os.link(root / "opt/tool/key", root / "opt/tool/key2")
    (root / "opt/tool/._key").write_bytes(b"\0")
    (root / "opt/tool/__MACOSX").mkdir()
    (root / "opt/tool/__MACOSX/x").write_bytes(b"\0")
    (root / "opt/tool/lib").symlink_to("bin")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """Every path under *root* with its mode, mtime and content: to prove it did not change."""
    seen: dict[str, tuple[int, int, bytes | str]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data: bytes | str = (
            str(p.readlink()) if p.is_symlink() else p.read_bytes() if p.is_file() else b""
        )
        seen[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return seen


def test_same_input_same_bytes(tmp_path: Path) -> None:
    """Packing the same tree twice, at different times, gives byte-identical archives."""
    stage = tree(tmp_path / "stage")
    first = pack(stage, tmp_path / "a", name="tool", environ={})
    os.utime(stage / "opt/tool/key", (1, 1))
    second = pack(stage, tmp_path / "b", name="tool", environ={})
    assert first.archive.read_bytes() == second.archive.read_bytes()
    assert first.metadata.read_bytes() == second.metadata.read_bytes()


def test_archive_is_normalized(tmp_path: Path) -> None:
    """Sorted relative names, owner 0:0 without names, a+rX modes, fixed times, gzip header."""
    stage = tree(tmp_path / "stage")
    result = pack(stage, tmp_path / "out", name="tool", environ={"SOURCE_DATE_EPOCH": "1700000000"})
    raw = result.archive.read_bytes()
    # gzip: no FNAME flag, mtime 0, OS 255.
    assert raw[:4] == b"\x1f\x8b\x08\x00"
    assert raw[4:8] == b"\0\0\0\0"
    with tarfile.open(result.archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "opt",
        "opt/tool",
        "opt/tool/bin",
        "opt/tool/bin/run",
        "opt/tool/key",
        "opt/tool/key2",
        "opt/tool/lib",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", 1700000000)
    }
    modes = {m.name: m.mode for m in members}
    assert modes["opt/tool/bin/run"] == 0o755  # setuid cleared, x for all
    assert modes["opt/tool/key"] == 0o644
    key2 = members[names.index("opt/tool/key2")]
    assert key2.islnk()
    assert key2.linkname == "opt/tool/key"
    assert json.loads(result.metadata.read_text()) == {
        "name": "tool",
        "spec": {"paths": ["/opt/tool"]},
    }


def test_gnu_tar_lists_what_is_expected(tmp_path: Path) -> None:
    """GNU tar reads the archive and lists the members, owners and modes expected."""
    needs_tool("tar", "tar")
    stage = tree(tmp_path / "stage")
    result = pack(stage, tmp_path / "out", name="tool", environ={"SOURCE_DATE_EPOCH": "0"})
    listing = subprocess.run(
        ["tar", "--numeric-owner", "-tvzf", str(result.archive)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout.splitlines()
    assert [line.split()[0] for line in listing] == [
        "drwxr-xr-x",
        "drwxr-xr-x",
        "drwxr-xr-x",
        "-rwxr-xr-x",
        "-rw-r--r--",
        "hrw-r--r--",
        "lrwxrwxrwx",
    ]
    assert {line.split()[1] for line in listing} == {"0/0"}
    assert listing[-1].endswith("opt/tool/lib -> bin")
    assert listing[5].endswith("opt/tool/key2 link to opt/tool/key")


def test_input_is_never_modified(tmp_path: Path) -> None:
    """The staging tree is the same, mode, time and bytes, after pack."""
    stage = tree(tmp_path / "stage")
    before = snapshot(stage)
    pack(stage, tmp_path / "out", name="tool", environ={})
    assert snapshot(stage) == before


def test_changes_are_listed(tmp_path: Path) -> None:
    """What pack left out or changed is listed, with the members concerned."""
    stage = tree(tmp_path / "stage")
    result = pack(stage, tmp_path / "out", name="tool", environ={})
    described = [c.describe() for c in result.changes]
    assert described[0] == (
        "left out macOS metadata (2 members): opt/tool/._key, opt/tool/__MACOSX/"
    )
    assert "cleared setuid, setgid and sticky bits (1 member): opt/tool/bin/run" in described
    assert (
        "modes made readable by all, a+rX (2 members): opt/tool/bin/run 700 -> 755, "
        "opt/tool/key 600 -> 644"
    ) in described
    assert "every mtime set to 1980-01-01T00:00:00Z (SOURCE_DATE_EPOCH unset)" in described


def sloppy_tarball(path: Path) -> Path:
    """A tarball as a Mac makes it: './' names, a user's owner, AppleDouble files, unsorted."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, _, mode, data in [
            ("./opt/tool/z.txt", "f", 0o600, b"z"),
            ("./opt/tool/._z.txt", "f", 0o644, b"\0"),
            ("./opt/tool/a.txt", "f", 0o640, b"a"),
            ("./opt/tool/a.txt", "f", 0o640, b"A"),
        ]:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.uname = mode, 501, 20, "joe"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def test_a_sloppy_tarball_is_repaired(tmp_path: Path) -> None:
    """Names lose './', parents are added, the last duplicate wins, members are sorted."""
    result = pack(sloppy_tarball(tmp_path / "in.tgz"), tmp_path / "out", name="tool", environ={})
    with tarfile.open(result.archive) as tar:
        assert tar.getnames() == ["opt", "opt/tool", "opt/tool/a.txt", "opt/tool/z.txt"]
        a = tar.extractfile("opt/tool/a.txt")
        assert a is not None
        assert a.read() == b"A"
    whats = {c.what for c in result.changes}
    assert {
        "names made relative (no './' or '/')",
        "members sorted by name",
        "duplicate members: kept the last copy",
        "added the directories the archive implies",
        "left out macOS metadata",
        "owner set to 0:0 (was 501:20)",
    } <= whats


def test_a_bundle_keeps_its_metadata(tmp_path: Path) -> None:
    """A bundle given as SOURCE keeps its metadata.json byte for byte."""
    src = tmp_path / "bundle"
    src.mkdir()
    sloppy_tarball(src / "addon.tar.gz")
    (src / "metadata.json").write_text('{"name": "tool", "spec": {"paths": ["/opt/tool"]}}')
    result = pack(src, tmp_path / "out", environ={})
    assert not result.metadata_generated
    assert result.metadata.read_bytes() == (src / "metadata.json").read_bytes()


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        ("tree", {"name": "My.Tool"}, "name 'My.Tool' breaks the naming rule"),
        ("tree", {}, "give the add-on's name with --name NAME"),
        ("tree", {"name": "t", "metadata": "m.json"}, "give --metadata, or --name and --path"),
        ("inside", {"name": "t"}, "is inside the staging tree"),
        ("escape", {"name": "t"}, "member '../etc/passwd' leaves the archive's root"),
        ("missing", {"name": "t"}, "does not exist"),
        ("notgz", {"name": "t"}, "cannot read"),
    ],
)
def test_what_pack_refuses(
    tmp_path: Path, setup: str, kwargs: dict[str, str], message: str
) -> None:
    """Each input pack cannot handle is a PackError saying why."""
    source = tmp_path / "src"
    output = tmp_path / "out"
    if setup in ("tree", "inside"):
        tree(source)
        output = source / "out" if setup == "inside" else output
    elif setup == "escape":
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.addfile(tarfile.TarInfo("../etc/passwd"), io.BytesIO())
        source.write_bytes(buffer.getvalue())
    elif setup == "notgz":
        source.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(PackError, match=message.replace("(", r"\(").replace(".", r"\.")):
        pack(source, output, environ={}, **kwargs)  # type: ignore[arg-type]


def test_existing_output_needs_force(tmp_path: Path) -> None:
    """An existing bundle is not overwritten without force."""
    stage = tree(tmp_path / "stage")
    pack(stage, tmp_path / "out", name="tool", environ={})
    with pytest.raises(PackError, match="exists; pass --force"):
        pack(stage, tmp_path / "out", name="tool", environ={})
    pack(stage, tmp_path / "out", name="tool", environ={}, force=True)


@pytest.mark.parametrize(
    ("kind", "mode", "expected"),
    [
        ("f", 0o600, 0o644),
        ("f", 0o700, 0o755),
        ("d", 0o700, 0o755),
        ("f", 0o6755, 0o755),
        ("f", 0o640, 0o644),
        ("f", 0o710, 0o755),
        ("l", 0o755, 0o777),
    ],
)
def test_normalized_mode_is_a_plus_r_capital_x(kind: str, mode: int, expected: int) -> None:
    """a+rX: read for all; x for all on directories and where any x was set; no special bits."""
    assert normalized_mode(kind, mode) == expected


def test_source_date_epoch_must_be_a_number() -> None:
    """A SOURCE_DATE_EPOCH that is not seconds is refused."""
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "42"}) == (42, "SOURCE_DATE_EPOCH")
    with pytest.raises(PackError, match="expected a number of seconds"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})


def test_pack_command_runs_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command lists the changes, shows the check's report and exits with its status."""
    stage = tree(tmp_path / "stage")
    (stage / "etc").mkdir()
    (stage / "etc/profile.d").mkdir()
    (stage / "etc/profile.d/tool.sh").write_text("")
    args = ["pack", str(stage), "-o", str(tmp_path / "out"), "--name", "tool"]
    status, out, _ = run_cli([*args, "--path", "/opt/tool", "--path", "/etc/profile.d"], capsys)
    assert status == 1
    assert "Changes:\n  - left out macOS metadata" in out
    assert "AM301 collision  /etc/profile.d" in out


def test_pack_then_check_and_dry_run_from_a_staging_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's end to end: pack a staging tree, it passes, register --dry-run prints curl."""
    stage = tree(tmp_path / "stage")
    assert (
        run_cli(["pack", str(stage), "-o", str(tmp_path / "b"), "--name", "tool"], capsys)[0] == 0
    )
    assert addon_mount.check([tmp_path / "b"]).ok
    status, out, _ = run_cli(
        ["register", str(tmp_path / "b"), "-w", "https://ml.example.site", "--dry-run"], capsys
    )
    assert status == 0
    assert "-F tarball=@" in out


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command's refusals are one line and exit 2."""
    status, _, err = run_cli(["pack", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")], capsys)
    assert status == 2
    assert err == f"addon-mount: error: {str(tmp_path / 'nothing')!r} does not exist\n"


def _tarball(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """A .tar.gz of (name, kind, data-or-link target) in the order given."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
                tar.addfile(info)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("link", ["opt/tool/a-link", "opt/tool/z-link"])
def test_hard_links_keep_their_data_in_either_order(tmp_path: Path, link: str) -> None:
    """A hard link that sorts before its target still carries the target's bytes, per GNU tar."""
    needs_tool("tar", "tar")
    source = _tarball(
        tmp_path / "in.tar.gz",
        [
            ("opt", "d", b""),
            ("opt/tool", "d", b""),
            ("opt/tool/m-data", "f", b"payload\n"),
            (link, "h", "opt/tool/m-data"),
        ],
    )
    result = pack(source, tmp_path / "out", name="tool", paths=["/opt/tool"], environ={})
    extracted = tmp_path / "x"
    extracted.mkdir()
    subprocess.run(["tar", "-xzf", str(result.archive), "-C", str(extracted)], check=True)
    assert (extracted / "opt/tool/m-data").read_bytes() == b"payload\n"
    assert (extracted / link).read_bytes() == b"payload\n"
    assert (extracted / "opt/tool/m-data").samefile(extracted / link)


def test_a_staging_trees_own_metadata_is_used_not_packed(tmp_path: Path) -> None:
    """metadata.json at the top of a staging tree is the metadata, not a member."""
    stage = tmp_path / "stage"
    (stage / "opt/tool").mkdir(parents=True)
    (stage / "opt/tool/run").write_text("x\n")
    meta = json.dumps({"name": "tool", "spec": {"paths": ["/opt/tool"]}}).encode()
    (stage / "metadata.json").write_bytes(meta)
    result = pack(stage, tmp_path / "out", environ={})
    with tarfile.open(result.archive) as tar:
        assert tar.getnames() == ["opt", "opt/tool", "opt/tool/run"]
    assert result.metadata.read_bytes() == meta
    assert any("bundle's own files" in c.what for c in result.changes)


def test_an_epoch_past_year_9999_is_refused() -> None:
    """A SOURCE_DATE_EPOCH no tar or calendar can hold is one clear error."""
    with pytest.raises(PackError, match="at most 253402300799"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "99999999999999999"})


def _pack_as(uid: int | None, stage: Path, output: Path) -> str:
    """The PackError message of packing *stage*, as *uid* (in a forked child) or as we are."""
    if uid is None:
        with pytest.raises(PackError) as caught:
            pack(stage, output, name="tool", environ={})
        return str(caught.value)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                pack(stage, output, name="tool", environ={})
                message = "packed"
            except PackError as exc:
                message = str(exc)
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_an_unreadable_file_is_a_read_error_and_leaves_no_bundle(tmp_path: Path) -> None:
    """A member pack cannot read is named as unreadable, and no output directory is left.

    Root reads every file, so as root pack runs in a child that became uid 8536.
    """
    scratch = Path(tempfile.mkdtemp(prefix="addon-mount-pack-"))
    try:
        scratch.chmod(0o755)
        stage = scratch / "stage"
        (stage / "opt/tool").mkdir(parents=True)
        (stage / "opt/tool/secret").write_text("x\n")
        (stage / "opt/tool/secret").chmod(0)
        writable = scratch / "w"
        writable.mkdir()
        output = writable / "out"
        uid = None
        if os.getuid() == 0:
            os.chown(writable, 8536, 8536)
            uid = 8536
        message = _pack_as(uid, stage, output)
        assert message.startswith("cannot read 'opt/tool/secret': Permission denied"), message
        assert not output.exists()
    finally:
        shutil.rmtree(scratch)


def test_derived_paths_leave_room_for_clouderas_add_ons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """etc/hadoop/x.xml asks for /etc/hadoop/x.xml, not the /etc/hadoop the Hadoop CLI makes."""
    stage = tmp_path / "stage"
    (stage / "etc/hadoop").mkdir(parents=True)
    (stage / "etc/hadoop/x.xml").write_text("x")
    args = ["pack", str(stage), "--name", "tool"]
    status, out, _ = run_cli([*args, "-o", str(tmp_path / "a")], capsys)
    assert status == 0, out
    paths = json.loads((tmp_path / "a/metadata.json").read_text())["spec"]["paths"]
    assert paths == ["/etc/hadoop/x.xml"]
    # Without the add-ons, /etc/hadoop is free, and that check passes too.
    status, out, _ = run_cli(
        [*args, "-o", str(tmp_path / "b"), "--cloudera-addons", "none"], capsys
    )
    assert status == 0, out
    paths = json.loads((tmp_path / "b/metadata.json").read_text())["spec"]["paths"]
    assert paths == ["/etc/hadoop"]
    # ... but the default check of that bundle names the Hadoop CLI.
    report = addon_mount.check([tmp_path / "b"])
    assert [e.code for e in report.errors] == ["AM301"]
    assert "the Hadoop CLI add-on's start-up makes" in report.errors[0].message


def test_pack_refuses_a_cloudera_addons_value_naming_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cloudera-addons '' is refused before anything is written."""
    stage = tree(tmp_path / "stage")
    args = ["pack", str(stage), "-o", str(tmp_path / "o"), "--name", "t", "--cloudera-addons", ""]
    status, _, err = run_cli(args, capsys)
    assert status == 2
    assert "--cloudera-addons: names no add-on" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("members", "below"),
    [
        ([("opt/tool", "f", "x"), ("opt/tool/y", "f", "y")], "'opt/tool/y' is below 'opt/tool'"),
        (
            [("opt/tool/d", "d", ""), ("opt/tool/d/x", "f", "x"), ("opt/tool/d", "f", "file")],
            "'opt/tool/d/x' is below 'opt/tool/d'",
        ),
    ],
)
def test_a_tarball_tar_cannot_extract_is_refused(
    tmp_path: Path, members: list[tuple[str, str, bytes | str]], below: str
) -> None:
    """Members below a file (two tarballs made into one) are refused, and nothing is written."""
    source = _tarball(tmp_path / "in.tar.gz", members)
    with pytest.raises(PackError, match=re.escape(below) + ".*'Not a directory'"):
        pack(source, tmp_path / "out", name="tool", paths=["/opt/tool"])
    assert not (tmp_path / "out").exists()
    # check fails the same archive, as GNU tar does (tests/test_tar_semantics.py).
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "metadata.json").write_text('{"name": "tool", "spec": {"paths": ["/opt/tool"]}}')
    shutil.copy(source, bundle / "addon.tar.gz")
    report = addon_mount.check([bundle], cloudera_addons="none")
    assert "AM202" in {f.code for f in report.errors}


def test_pack_refuses_a_dash_for_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle is a directory: '-o -' is refused, and no directory named '-' is made."""
    stage = tree(tmp_path / "stage")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(["pack", str(stage), "-o", "-", "--name", "tool"], capsys)
    assert status == 2
    assert "-o takes a directory, not '-'" in err
    assert not (tmp_path / "-").exists()


def test_a_name_that_is_not_utf8_is_shown_once_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal shows the name's bytes as one backslash escape each."""
    stage = tree(tmp_path / "stage")
    (stage / "opt/tool").joinpath(os.fsdecode(b"\xff\xfe")).write_text("x")
    status, _, err = run_cli(["pack", str(stage), "-o", str(tmp_path / "o"), "--name", "t"], capsys)
    assert status == 2
    assert "the name 'opt/tool/\\xff\\xfe' is not UTF-8" in err
