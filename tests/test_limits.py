"""Resource limits: each one is a flag, each exceeded one a clear finding and a clean stop."""

from __future__ import annotations

import gc
import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import attrs
import pytest

from addon_mount import DEFAULT_LIMITS, Limits
from addon_mount._archive import read_archive
from addon_mount._builders import metadata_json, targz
from addon_mount._check import read_bundle
from addon_mount._cli import main
from addon_mount._metadata import parse_metadata

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "README.md"
MIB = 1 << 20
GIB = 1 << 30

try:  # isal compresses 2 GiB of zeros ten times faster than zlib
    from isal import isal_zlib as fast_zlib
except ImportError:  # pragma: no cover - isal is a dev dependency
    fast_zlib = zlib  # type: ignore[misc]


# -- raw tar building: headers written by hand, so sizes and types can lie ----------


def header(name: bytes, size: int = 0, typeflag: bytes = b"0", mode: int = 0o644) -> bytes:
    """One ustar header block with a correct checksum."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"%07o\0" % mode
    block[108:124] = b"0000000\x000000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def pax_record(key: str, value: str) -> bytes:
    """A pax extended header record: '<length> <key>=<value>\\n'."""
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length += len(str(length)) - len(str(len(body)))
    return str(length).encode() + body


def gz(*blocks: bytes) -> bytes:
    return gzip.compress(b"".join(blocks) + b"\0" * 1024, mtime=0)


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "addon.tar.gz"
    path.write_bytes(data)
    return path


def messages(index: Any) -> list[tuple[str, str]]:
    return [(f.code, f.message) for f in index.findings]


# -- each archive limit -----------------------------------------------------------


def test_total_bytes_limit_stops_reading(tmp_path: Path) -> None:
    """Member sizes are summed; the member that passes the total stops the read with AM240."""
    members = [(f"opt/{i}", "f", 0o644, b"x" * 600) for i in range(3)]
    index = read_archive(write(tmp_path, targz(members)), limits=Limits(max_total_bytes=1000))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz holds more than 1,000 bytes uncompressed; stopped reading "
            "(raise the limit with --max-total-bytes)",
        )
    ]
    assert (index.member_count, set(index.members), index.complete) == (2, {"opt/0"}, False)


def test_member_count_limit_stops_reading(tmp_path: Path) -> None:
    """The member past --max-members stops the read with AM240."""
    members = [(f"opt/{i}", "f", 0o644, b"") for i in range(5)]
    index = read_archive(write(tmp_path, targz(members)), limits=Limits(max_members=3))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz has more than 3 members; stopped reading "
            "(raise the limit with --max-members)",
        )
    ]
    assert (index.member_count, len(index.members), index.complete) == (4, 3, False)


def test_member_size_limit_stops_before_the_data(tmp_path: Path) -> None:
    """A member larger than --max-member-bytes is AM240 naming it, its size and the limit."""
    data = gz(header(b"opt/big", 2000), padded(b"y" * 2000))
    index = read_archive(write(tmp_path, data), limits=Limits(max_member_bytes=1000))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz member 'opt/big' is 2,000 bytes, more than 1,000; stopped reading "
            "(raise the limit with --max-member-bytes)",
        )
    ]
    assert index.total_bytes == 0


def test_size_field_of_a_directory_is_not_counted(tmp_path: Path) -> None:
    """tar ignores a directory's size field, so a huge one is neither a limit nor a byte."""
    data = gz(header(b"opt/d/", 8 * 10**9, b"5", 0o755), header(b"opt/d/f", 3), padded(b"abc"))
    index = read_archive(write(tmp_path, data), limits=Limits(max_member_bytes=1000))
    assert messages(index) == []
    assert (index.total_bytes, index.members["opt/d/f"].size) == (3, 3)


def test_path_length_limit_leaves_the_member_out(tmp_path: Path) -> None:
    """A name longer than --max-path-length is AM240; the read goes on."""
    long_name = "opt/" + "n" * 296
    members = [(long_name, "f", 0o644, b""), ("opt/ok", "f", 0o644, b"")]
    index = read_archive(write(tmp_path, targz(members)), limits=Limits(max_path_length=200))
    assert messages(index) == [
        (
            "AM240",
            f"member {long_name[:80]!r}... has a name of 300 bytes in 2 components; limits are "
            "200 bytes (--max-path-length) and 128 components (--max-path-depth); "
            "the member is left out",
        )
    ]
    assert set(index.members) == {"opt/ok"}
    assert index.complete


def test_path_depth_limit_leaves_the_member_out(tmp_path: Path) -> None:
    """A name deeper than --max-path-depth is AM240 naming the depth and both flags."""
    deep = "/".join("d" * 10)
    index = read_archive(
        write(tmp_path, targz([(deep, "f", 0o644, b"")])), limits=Limits(max_path_depth=5)
    )
    assert messages(index) == [
        (
            "AM240",
            f"member {deep!r} has a name of 19 bytes in 10 components; limits are 4,096 bytes "
            "(--max-path-length) and 5 components (--max-path-depth); the member is left out",
        )
    ]
    assert index.members == {}


def test_pax_header_larger_than_the_limit_stops_reading(tmp_path: Path) -> None:
    """A member whose pax header exceeds --max-header-bytes stops the read with AM240."""
    record = pax_record("comment", "c" * 3000)
    data = gz(
        header(b"opt/a"),
        header(b"././@PaxHeader", len(record), b"x"),
        padded(record),
        header(b"opt/b"),
    )
    index = read_archive(write(tmp_path, data), limits=Limits(max_header_bytes=2048))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz has a member after 'opt/a' whose headers (pax headers, GNU long "
            "names, sparse maps) need more than 2,048 bytes; stopped reading "
            "(raise the limit with --max-header-bytes)",
        )
    ]
    assert set(index.members) == {"opt/a"}
    # Under the default limit the same archive reads to the end.
    assert set(read_archive(write(tmp_path, data)).members) == {"opt/a", "opt/b"}


def test_global_pax_headers_are_summed_over_the_archive(tmp_path: Path) -> None:
    """Global pax headers outlive their member, so their sizes add up against the limit."""
    blocks = []
    for i in range(4):
        # 600 bytes of record each: every member's own headers stay under 2,100 bytes.
        record = pax_record(f"comment{i}", "g" * 586)
        assert len(record) == 600
        blocks += [header(b"pax_global_header", len(record), b"g"), padded(record)]
        blocks.append(header(b"opt/%d" % i))
    index = read_archive(write(tmp_path, gz(*blocks)), limits=Limits(max_header_bytes=2100))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz has more than 2,100 bytes of global pax headers; stopped reading "
            "(raise the limit with --max-header-bytes)",
        )
    ]
    assert set(index.members) == {"opt/0", "opt/1", "opt/2"}


def test_gnu_long_name_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    """A GNU long name claiming 4 GiB is refused from its header, before any of it is read."""
    data = gz(header(b"././@LongLink", 4 * GIB, b"L"), padded(b"a" * 5000))
    index = read_archive(write(tmp_path, data))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz has a member at the start whose headers (pax headers, GNU long "
            "names, sparse maps) need more than 1,048,576 bytes; stopped reading "
            "(raise the limit with --max-header-bytes)",
        )
    ]


def test_read_headers_are_not_kept(tmp_path: Path) -> None:
    """Headers already read are dropped as the read goes on: memory does not grow with them."""
    from addon_mount._tarstream import Header, TarStream

    path = write(tmp_path, targz([(f"opt/{i}", "f", 0o644, b"") for i in range(2000)]))
    alive: list[int] = []
    with path.open("rb") as f:
        for count, _ in enumerate(TarStream(f), start=1):
            if count in (500, 2000):
                alive.append(sum(isinstance(o, Header) for o in gc.get_objects()))
    # Counted after 500 and after 2,000 headers: a kept list would have grown by 1,500.
    assert len(alive) == 2
    assert alive[1] - alive[0] < 10


def _every(n: int, call: Any) -> Any:
    seen = [0]

    def progress(offset: int) -> None:
        seen[0] += 1
        if seen[0] % n == 0:
            call(offset)

    return progress


# -- metadata limits --------------------------------------------------------------


def test_huge_metadata_file_is_not_read_whole(tmp_path: Path) -> None:
    """A 4 GiB (sparse) metadata.json is AM241 after reading just past the limit."""
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "addon.tar.gz").write_bytes(targz([("opt/x", "f", 0o644, b"")]))
    with (bundle / "metadata.json").open("wb") as f:
        f.truncate(4 * GIB)
    read = read_bundle(bundle)
    assert [(f.code, f.message) for f in read.findings] == [
        (
            "AM241",
            "metadata.json is larger than the limit of 1,048,576 bytes (--max-metadata-bytes)",
        )
    ]
    assert read.spec is None


def test_metadata_size_limit_is_overridable() -> None:
    """--max-metadata-bytes applies to the bytes given to parse_metadata."""
    data = metadata_json("tool", ["/opt/tool"])
    assert parse_metadata(data, fallback_name="b").spec is not None
    small = parse_metadata(data, fallback_name="b", limits=Limits(max_metadata_bytes=20))
    assert [(f.code, f.message) for f in small.findings] == [
        ("AM241", "metadata.json is larger than the limit of 20 bytes (--max-metadata-bytes)")
    ]


def test_number_of_paths_limit() -> None:
    """More entries in spec.paths than --max-paths is one AM241 and no path is checked."""
    data = metadata_json("tool", ["/opt/a", "/opt/b", "/opt/c", "opt/d"])
    result = parse_metadata(data, fallback_name="b", limits=Limits(max_paths=3))
    assert [(f.code, f.message) for f in result.findings] == [
        ("AM241", "spec.paths has 4 entries, more than the limit of 3 (--max-paths)")
    ]
    assert result.spec is None


@pytest.mark.parametrize(
    ("path", "limits", "message"),
    [
        (
            "/opt/" + "p" * 295,
            Limits(max_path_length=200),
            "spec.paths[0] is 300 bytes in 2 components; the limit is 200 bytes "
            "(--max-path-length) and 128 components (--max-path-depth)",
        ),
        (
            "/a/b/c/d/e/f",
            Limits(max_path_depth=5),
            "spec.paths[0] is 12 bytes in 6 components; the limit is 4096 bytes "
            "(--max-path-length) and 5 components (--max-path-depth)",
        ),
    ],
)
def test_requested_path_length_and_depth_limits(path: str, limits: Limits, message: str) -> None:
    """A requested path past --max-path-length or --max-path-depth is AM241 naming both."""
    result = parse_metadata(metadata_json("tool", [path]), fallback_name="b", limits=limits)
    assert [(f.code, f.message, f.path) for f in result.findings] == [("AM241", message, path)]


def test_json_depth_limit_names_its_flag() -> None:
    """Nesting deeper than --max-json-depth is AM110 naming the depth, the limit and the flag."""
    data = b'{"name": "x", "spec": {"paths": [[[["/opt"]]]]}}'
    result = parse_metadata(data, fallback_name="b", limits=Limits(max_json_depth=4))
    assert [(f.code, f.message) for f in result.findings] == [
        (
            "AM110",
            "metadata.json nests 6 levels deep; expected at most 4 "
            "(--max-json-depth; the format needs 3)",
        )
    ]


# -- every limit is documented and overridable ------------------------------------


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(Limits)])
def test_every_limit_has_a_flag_and_a_documented_default(
    field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each limit is a --max-... flag of 'check' and a row of the Limits table in the docs."""
    flag = Limits.flag(field)
    default = getattr(DEFAULT_LIMITS, field)
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    help_text = capsys.readouterr().out
    assert flag in help_text
    rows = [line for line in DOC.read_text().splitlines() if f"`{flag}`" in line]
    assert len(rows) == 1, f"{flag} needs one row in {DOC.name}"
    assert f"{default:,}" in rows[0] or str(default) in rows[0]


def test_cli_flag_lowers_a_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-members given on the command line is the limit applied (exit 1, AM240)."""
    bundle = tmp_path / "tool"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("tool", ["/opt/tool"]))
    members = [("opt/tool", "d", 0o755, b"")] + [
        (f"opt/tool/{i}", "f", 0o644, b"") for i in range(5)
    ]
    (bundle / "addon.tar.gz").write_bytes(targz(members))
    with pytest.raises(SystemExit) as exc:
        main(["check", str(bundle), "--format", "json"])
    assert exc.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["check", str(bundle), "--format", "json", "--max-members", "2"])
    assert exc.value.code == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["message"] for f in findings if f["code"] == "AM240"] == [
        "addon.tar.gz has more than 2 members; stopped reading (raise the limit with --max-members)"
    ]


# -- big generated inputs ---------------------------------------------------------


def _stream_gzip(path: Path, parts: list[tuple[bytes, int]]) -> Path:
    """Write gzip of each (chunk, repeat) in turn, never holding the whole in memory."""
    compressor = fast_zlib.compressobj(1, fast_zlib.DEFLATED, 31)
    with path.open("wb") as f:
        for chunk, repeat in parts:
            for _ in range(repeat):
                f.write(compressor.compress(chunk))
        f.write(compressor.flush())
    return path


@pytest.fixture(scope="module")
def zeros_2gib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """addon.tar.gz with one 2 GiB member of zeros: 2 to 10 MB compressed."""
    path = tmp_path_factory.mktemp("zeros") / "addon.tar.gz"
    zeros = bytes(MIB)
    return _stream_gzip(
        path, [(header(b"opt/zeros", 2 * GIB), 1), (zeros, 2 * GIB // MIB), (bytes(1024), 1)]
    )


def peak_of(code: str, *args: str) -> dict[str, Any]:
    """Run *code* in a fresh interpreter; its printed JSON plus its peak RSS in MiB."""
    script = (
        "import json, resource, sys\n"
        f"{code}\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result['peak_mib'] = rss / (1 << 20 if sys.platform == 'darwin' else 1 << 10)\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


READ = (
    "from addon_mount._archive import read_archive\n"
    "index = read_archive(sys.argv[1])\n"
    "result = {'members': index.member_count, 'bytes': index.total_bytes,\n"
    "          'findings': [[f.code, f.message] for f in index.findings]}"
)


@pytest.mark.slow
def test_two_gib_member_is_read_in_bounded_memory(zeros_2gib: Path) -> None:
    """A 2 GiB member (a few MB compressed) streams through with default limits, < 200 MB."""
    pytest.importorskip("resource")
    assert zeros_2gib.stat().st_size < 16 * MIB
    result = peak_of(READ, str(zeros_2gib))
    assert (result["members"], result["bytes"], result["findings"]) == (1, 2 * GIB, [])
    assert result["peak_mib"] < 200


@pytest.mark.slow
def test_two_gib_member_over_a_lowered_limit_stops_at_its_header(zeros_2gib: Path) -> None:
    """With --max-member-bytes 1 GiB the 2 GiB member is refused before its data is read."""
    index = read_archive(zeros_2gib, limits=Limits(max_member_bytes=GIB))
    assert messages(index) == [
        (
            "AM240",
            "addon.tar.gz member 'opt/zeros' is 2,147,483,648 bytes, more than 1,073,741,824; "
            "stopped reading (raise the limit with --max-member-bytes)",
        )
    ]


@pytest.mark.slow
def test_header_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A 256 MiB GNU long name (under 1 MB gzipped) stops with AM240, in < 200 MB."""
    pytest.importorskip("resource")
    path = _stream_gzip(
        tmp_path / "addon.tar.gz",
        [(header(b"././@LongLink", 256 * MIB, b"L"), 1), (b"a" * MIB, 256), (header(b"x"), 1)],
    )
    assert path.stat().st_size < 2 * MIB
    result = peak_of(READ, str(path))
    assert [code for code, _ in result["findings"]] == ["AM240"]
    assert "--max-header-bytes" in result["findings"][0][1]
    assert result["peak_mib"] < 200


@pytest.fixture(scope="module")
def many_members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose archive holds 300,000 empty files under opt/many."""
    bundle = tmp_path_factory.mktemp("many") / "many"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("many", ["/opt/many"]))
    template = bytearray(header(b"opt/many/0000000"))
    template[148:156] = b" " * 8
    base = sum(template) - sum(b"0000000")
    blocks = []
    for i in range(300_000):
        digits = b"%07d" % i
        template[9:16] = digits
        template[148:156] = b"%06o\0 " % (base + sum(digits))
        blocks.append(bytes(template))
    _stream_gzip(bundle / "addon.tar.gz", [(b"".join(blocks), 1), (bytes(1024), 1)])
    return bundle


@pytest.mark.slow
def test_300k_members_stop_early_at_the_member_limit(
    many_members: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --max-members 20000 the CLI stops at member 20,001 of 300,000: exit 1, AM240."""
    with pytest.raises(SystemExit) as exc:
        main(["check", str(many_members), "--format", "json", "--max-members", "20000"])
    report = json.loads(capsys.readouterr().out)
    assert exc.value.code == 1
    assert report["addons"][0]["members"] == 20_001
    assert [f["message"] for f in report["findings"] if f["code"] == "AM240"] == [
        "addon.tar.gz has more than 20,000 members; stopped reading "
        "(raise the limit with --max-members)"
    ]


@pytest.mark.slow
def test_300k_members_with_a_generated_name_each(many_members: Path) -> None:
    """The generated archive is what it claims: valid headers with distinct names."""
    index = read_archive(many_members / "addon.tar.gz", limits=Limits(max_members=3))
    assert sorted(index.members) == ["opt/many/0000000", "opt/many/0000001", "opt/many/0000002"]
