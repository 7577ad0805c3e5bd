"""Tests for the archive index: a streamed, safe listing of addon.tar.gz."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from pathlib import Path

import pytest

from addon_mount._archive import normalize_name, read_archive, sniff
from addon_mount._builders import MemberSpec, tar_bytes, targz


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "addon.tar.gz"
    path.write_bytes(data)
    return path


def index_of(tmp_path: Path, members: list[MemberSpec], **kw: object):  # type: ignore[no-untyped-def]
    return read_archive(write(tmp_path, targz(members)), addon="a", **kw)  # type: ignore[arg-type]


def codes(index) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in index.findings]


def test_members_are_indexed_by_normalized_name(tmp_path: Path) -> None:
    """'./usr/bin/x' and 'usr/bin/x' both index as 'usr/bin/x'; parents are implied."""
    index = index_of(tmp_path, [("./usr/bin/x", "f", 0o755, "data"), ("opt/y/", "d", 0o700, "")])
    assert set(index.members) == {"usr/bin/x", "opt/y"}
    assert index.members["usr/bin/x"].size == 4
    assert index.members["usr/bin/x"].mode == 0o755
    assert index.members["opt/y"].mode == 0o700
    assert {"", "usr", "usr/bin", "opt", "opt/y"} <= index.directories
    implied = index.get("usr/bin")
    assert implied is not None
    assert implied.is_dir
    assert implied.mode == 0o755
    assert codes(index) == []


def test_root_member_is_kept_as_empty_name(tmp_path: Path) -> None:
    """An archive made with 'tar -C root .' records the root's own mode under ''."""
    index = index_of(tmp_path, [("./", "d", 0o700, ""), ("./opt/x", "f", 0o644, "")])
    assert index.members[""].mode == 0o700


def test_owner_is_kept(tmp_path: Path) -> None:
    """Numeric owners are kept as the archive gives them."""
    index = read_archive(write(tmp_path, targz([("opt/x", "f", 0o644, "")], uid=1000)))
    assert (index.members["opt/x"].uid, index.members["opt/x"].gid) == (1000, 1000)


def test_contents_are_not_held_unless_asked(tmp_path: Path) -> None:
    """Contents are kept only with keep_contents=True."""
    path = write(tmp_path, targz([("opt/x", "f", 0o644, "hello")]))
    assert read_archive(path).contents is None
    kept = read_archive(path, keep_contents=True).contents
    assert kept == {"opt/x": b"hello"}


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "an empty file"),
        (tar_bytes([("opt/x", "f", 0o644, "x")]), "an uncompressed tar archive"),
        (bz2.compress(b"x" * 100), "bzip2-compressed data"),
        (lzma.compress(b"x"), "xz-compressed data"),
        (b"\x28\xb5\x2f\xfd" + b"\0" * 20, "zstd-compressed data"),
        (b"PK\x03\x04" + b"\0" * 40, "a zip archive"),
        (b'{"name": "x"}', "JSON text"),
        (b"hello world", "data of an unknown format"),
    ],
)
def test_not_gzip_names_what_it_is(tmp_path: Path, data: bytes, what: str) -> None:
    """Anything but gzip is AM200 naming the actual format."""
    index = read_archive(write(tmp_path, data))
    assert codes(index) == ["AM200"]
    assert index.findings[0].message == f"addon.tar.gz is {what}, not a gzip-compressed tar archive"
    assert not index.complete


def test_truncated_archive_names_where_it_broke(tmp_path: Path) -> None:
    """A cut-off archive is AM201 naming the last member read and the offset."""
    noise = random.Random(0).randbytes
    data = targz([("opt/a", "f", 0o644, noise(5000)), ("opt/b", "f", 0o644, noise(90_000))])
    index = read_archive(write(tmp_path, data[: len(data) // 2]))
    assert codes(index) == ["AM201"]
    message = index.findings[0].message
    assert message.startswith(
        "addon.tar.gz is corrupt or truncated after 'opt/b' (uncompressed offset "
    )
    assert message.endswith("the compressed data ends early: the file is cut short")
    assert not index.complete


def test_gzip_of_garbage_is_corrupt(tmp_path: Path) -> None:
    """Valid gzip around something that is not a tar is AM201."""
    index = read_archive(write(tmp_path, gzip.compress(b"not a tar at all" * 100)))
    assert codes(index) == ["AM201"]


@pytest.mark.parametrize(
    ("member", "code"),
    [
        (("/etc/passwd", "f", 0o644, ""), "AM210"),
        (("../../etc/passwd", "f", 0o644, ""), "AM210"),
        (("opt/../../etc/passwd", "f", 0o644, ""), "AM210"),
        (("opt/tool/x/../y", "f", 0o644, ""), "AM210"),
        (("opt/tool/x/../link", "l", 0o777, "y"), "AM210"),
        (("opt/link", "l", 0o777, "../../etc"), "AM211"),
        (("opt/hard", "h", 0o644, "etc/passwd"), "AM211"),
        (("opt/suid", "f", 0o4755, ""), "AM214"),
        (("opt/sgid", "f", 0o2755, ""), "AM214"),
    ],
)
def test_unsafe_members_are_reported_and_left_out(
    tmp_path: Path, member: MemberSpec, code: str
) -> None:
    """Members that escape the root or raise privileges are errors, and are not staged."""
    index = index_of(tmp_path, [member])
    assert codes(index) == [code]
    assert index.findings[0].severity == "error"
    assert normalize_name(member[0].lstrip("/")) not in index.members


def test_device_and_fifo_members_are_unsafe(tmp_path: Path) -> None:
    """Character devices and FIFOs are AM213."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind in (("opt/null", tarfile.CHRTYPE), ("opt/pipe", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
    index = read_archive(write(tmp_path, gzip.compress(buffer.getvalue())))
    assert codes(index) == ["AM213", "AM213"]
    assert "a character device" in index.findings[0].message
    assert "a FIFO" in index.findings[1].message
    assert index.members == {}


def test_symlink_into_runtime_is_a_warning(tmp_path: Path) -> None:
    """A symlink to an absolute runtime path is kept, with an AM212 warning."""
    index = index_of(
        tmp_path,
        [("opt/java", "l", 0o777, "/usr/lib/jvm")],
        staging_root="/runtime-addons/custom-addon-a",
    )
    assert codes(index) == ["AM212"]
    assert index.findings[0].severity == "warning"
    assert index.members["opt/java"].linkname == "/usr/lib/jvm"


def test_symlink_into_own_mount_is_fine(tmp_path: Path) -> None:
    """An absolute symlink into the add-on's own mount point is not reported."""
    index = index_of(
        tmp_path,
        [("opt/x", "l", 0o777, "/runtime-addons/custom-addon-a/opt/y")],
        staging_root="/runtime-addons/custom-addon-a",
    )
    assert codes(index) == []


def test_relative_symlink_inside_is_fine(tmp_path: Path) -> None:
    """A relative symlink that stays inside the add-on is not reported."""
    index = index_of(
        tmp_path, [("opt/tool/bin/run", "f", 0o755, ""), ("opt/tool/run", "l", 0o777, "bin/run")]
    )
    assert codes(index) == []


def test_hard_link_to_earlier_member_is_fine(tmp_path: Path) -> None:
    """A hard link to an earlier member is indexed with its target."""
    index = index_of(tmp_path, [("opt/a", "f", 0o644, "x"), ("opt/b", "h", 0o644, "opt/a")])
    assert codes(index) == []
    assert index.members["opt/b"].linkname == "opt/a"


def test_duplicates_warn_once(tmp_path: Path) -> None:
    """A file member repeated is one AM220 warning; repeated directories are not reported."""
    index = index_of(
        tmp_path,
        [
            ("opt/a", "f", 0o644, "1"),
            ("opt/a", "f", 0o644, "2"),
            ("opt/a", "f", 0o644, "3"),
            ("opt", "d", 0o755, ""),
            ("opt", "d", 0o755, ""),
        ],
    )
    assert codes(index) == ["AM220"]
    assert index.members["opt/a"].size == 1


def test_missing_file_is_an_error_to_the_caller(tmp_path: Path) -> None:
    """An archive that cannot be opened raises ArchiveError (the check cannot run)."""
    from addon_mount._archive import ArchiveError

    with pytest.raises(ArchiveError, match="cannot open"):
        read_archive(tmp_path / "absent.tar.gz")


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("./a/b/", "a/b"),
        (".", ""),
        ("./", ""),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/../../b", None),
        ("..", None),
    ],
)
def test_normalize_name(name: str, normal: str | None) -> None:
    """Names normalize like paths; those that climb out give None."""
    assert normalize_name(name) == normal


def test_sniff_recognises_gzip() -> None:
    """gzip's magic bytes say gzip."""
    assert sniff(gzip.compress(b"x")) == "gzip"


def test_archive_is_never_written(tmp_path: Path) -> None:
    """Reading an archive leaves the input byte-for-byte and the directory unchanged."""
    path = write(tmp_path, targz([("opt/x", "f", 0o644, "x"), ("../evil", "f", 0o644, "x")]))
    before = path.read_bytes()
    read_archive(path, keep_contents=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["addon.tar.gz"]
    assert not (tmp_path.parent / "evil").exists()
