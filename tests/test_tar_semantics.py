"""The archive index reads odd tar headers as GNU tar and bsdtar do.

Each archive is crafted header by header (tarfile will not write these), then
listed and extracted by the real tools, which are the oracle: the platform's
unpacker is most likely one of them. Without bsdtar or GNU tar the tests skip,
except with CI=true, where they fail.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from addon_mount import RuntimeImage
from addon_mount._archive import HARDLINK, ArchiveIndex, read_archive
from addon_mount._builders import (
    BLOCK,
    END,
    data,
    gnu_long_name,
    header,
    metadata_json,
    pax,
)
from addon_mount._check import read_bundle, simulate

from .conftest import cml_entries

# Both tools print a byte that is not printable here as \ooo; others pass through.
TOOL_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}
TOOLS = ("tar", "bsdtar")


def write_archive(tmp_path: Path, *parts: bytes) -> Path:
    """The parts, then the end-of-archive blocks, gzip-compressed as addon.tar.gz."""
    path = tmp_path / "addon.tar.gz"
    path.write_bytes(gzip.compress(b"".join(parts) + END, mtime=0))
    return path


# --- the tools as oracle ---------------------------------------------------------


def require_tools() -> None:
    """Skip (fail with CI=true) unless GNU tar and bsdtar are both installed."""
    problems = []
    if shutil.which("bsdtar") is None:
        problems.append("bsdtar is not installed (apt-get install libarchive-tools)")
    gnu = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=False)
    if "GNU tar" not in gnu.stdout:
        problems.append("tar is not GNU tar")
    if problems:
        reason = "; ".join(problems) + ": the real tools are this test's oracle"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def run_tool(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, env=TOOL_ENV, check=False, timeout=120)


def unescape(text: str) -> str:
    r"""A name as the tools print it (\ooo and C escapes), back to what we decode."""
    simple = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v"}

    def byte(match: re.Match[str]) -> str:
        code = match.group(1)
        raw = bytes([int(code, 8)]) if len(code) == 3 else simple.get(code, code.encode())
        return raw.decode("latin-1")

    raw = re.sub(r"\\([0-7]{3}|.)", byte, text).encode("latin-1")
    return raw.decode("utf-8", "surrogateescape")


class ListingError(Exception):
    """A tool could not list the archive cleanly."""


def listing(tool: str, path: Path) -> list[tuple[str, str]]:
    """(type letter of ``-tv``, name) per member, in archive order, as *tool* lists them."""
    names = run_tool([tool, "-tf", str(path)])
    long = run_tool([tool, "-tvf", str(path)])
    for done in (names, long):
        if done.returncode != 0:
            first = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            raise ListingError(f"{tool} exits {done.returncode}: {first[0] if first else ''}")
    # Escaped names never hold a newline: one line per member in both forms.
    lines = names.stdout.decode("latin-1").split("\n")[:-1]
    letters = [line[:1] for line in long.stdout.decode("latin-1").split("\n")[:-1]]
    assert len(lines) == len(letters), (lines, letters)
    return [(letter, unescape(name)) for letter, name in zip(letters, lines, strict=True)]


def extract(tool: str, path: Path) -> tuple[int, str, dict[str, str]]:
    """Extract as this user into a fresh directory: exit status, stderr, and what was made.

    What was made maps each path (relative, no trailing '/') to 'f', 'd' or 'l'.
    """
    with tempfile.TemporaryDirectory() as root:
        done = run_tool([tool, "-xf", str(path), "-C", root])
        tree: dict[str, str] = {}
        for top, dirs, files in os.walk(root):
            for name in dirs + files:
                made = Path(top, name)
                kind = "l" if made.is_symlink() else "d" if made.is_dir() else "f"
                tree[str(made.relative_to(root))] = kind
    return done.returncode, done.stderr.decode("utf-8", "replace"), tree


def index_tree(index: ArchiveIndex) -> dict[str, str]:
    """What the index says an extraction makes, in :func:`extract`'s terms."""
    tree = {name: "d" for name in index.directories if name}
    for name, member in index.members.items():
        if name:
            tree[name] = "f" if member.type == HARDLINK else member.type
    return tree


def assert_tools_agree(path: Path, index: ArchiveIndex, *, clean: bool = True) -> dict[str, str]:
    """Both tools extract exactly what the index holds; their stderr, by tool."""
    errors = {}
    for tool in TOOLS:
        status, stderr, tree = extract(tool, path)
        assert tree == index_tree(index), tool
        if clean:
            assert (status, stderr) == (0, ""), tool
        errors[tool] = stderr
    return errors


def codes(index: ArchiveIndex) -> list[str]:
    return [f.code for f in index.findings]


# --- 1. a regular header whose name ends in '/' -----------------------------------


@pytest.mark.parametrize(
    ("typeflag", "gnu_letter"),
    [
        pytest.param(b"0", "d", id="regular"),
        pytest.param(b"\0", "d", id="old-regular"),
        # GNU tar lists a contiguous file as 'C' but extracts this one as a directory.
        pytest.param(b"7", "C", id="contiguous"),
    ],
)
def test_regular_header_with_trailing_slash_is_a_directory(
    tmp_path: Path, typeflag: bytes, gnu_letter: str
) -> None:
    """A '0', '\\0' or '7' header named 'opt/tool/' is the directory opt/tool, with its mode."""
    require_tools()
    path = write_archive(
        tmp_path,
        header(b"opt/tool/", typeflag, mode=0o700),
        header(b"opt/tool/x", b"0", size=3) + data(b"abc"),
    )
    index = read_archive(path)
    assert codes(index) == []
    member = index.members["opt/tool"]
    assert (member.type, member.mode, member.size) == ("d", 0o700, 0)
    assert listing("tar", path) == [(gnu_letter, "opt/tool/"), ("-", "opt/tool/x")]
    assert listing("bsdtar", path) == [("d", "opt/tool/"), ("-", "opt/tool/x")]
    assert_tools_agree(path, index)


def test_path_below_a_slash_named_regular_header_is_not_missing(tmp_path: Path) -> None:
    """Requesting /opt/tool/x below a '0' header named 'opt/tool/' gives no AM300."""
    write_archive(
        tmp_path,
        header(b"opt/tool/", b"0", mode=0o755),
        header(b"opt/tool/x", b"0", size=3) + data(b"abc"),
    )
    (tmp_path / "metadata.json").write_bytes(metadata_json("slash", ["/opt/tool/x"]))
    report = simulate(
        [read_bundle(tmp_path)], [RuntimeImage.from_entries(cml_entries(), name="tiny")]
    )
    # Only the warning that /opt/tool is not in the runtime; once read as a file,
    # opt/tool hid opt/tool/x and the link was a false AM300.
    assert [f.code for f in report.findings] == ["AM330"]


def test_slash_named_regular_header_with_data_reads_as_tar_extracts_it(tmp_path: Path) -> None:
    """A directory by trailing slash has no data: the bytes after it are read as a header.

    GNU tar -t skips the size the header gives, but GNU tar -x and bsdtar read
    the next block as a header, as we do; here it is not one, so both tools
    report damage and the index reports AM201.
    """
    require_tools()
    path = write_archive(
        tmp_path,
        header(b"opt/d/", b"0", size=5, mode=0o700) + data(b"hello"),
        header(b"opt/after", b"0"),
    )
    index = read_archive(path)
    assert codes(index) == ["AM201"]
    assert index.findings[0].message == (
        "addon.tar.gz is corrupt or truncated after 'opt/d/' (uncompressed offset 512): "
        "invalid header: bad checksum"
    )
    assert listing("tar", path) == [("d", "opt/d/"), ("-", "opt/after")]
    gnu_status, gnu_err, _ = extract("tar", path)
    assert gnu_status == 2
    assert "tar: Skipping to next header" in gnu_err
    _, bsd_err, _ = extract("bsdtar", path)
    assert "Damaged tar archive" in bsd_err


# --- 2. the type comes from the full name ---------------------------------------


# A file whose name, cut to the 100-byte field, ends in '/'; a directory whose cut name does not.
LONG_FILE = b"opt/tool/" + b"a" * 90 + b"/file.txt"
LONG_DIR = b"opt/tool/" + b"b" * 120 + b"/"


def test_type_comes_from_the_full_gnu_long_name(tmp_path: Path) -> None:
    """'\\0' headers after GNU long names are typed by the long name, not the cut one.

    The cut name of the file ends in '/': typing by it made the file a directory,
    its data was read as the next header, and a valid archive was a false AM201.
    """
    require_tools()
    assert LONG_FILE[:100].endswith(b"/")
    assert not LONG_DIR[:100].endswith(b"/")
    path = write_archive(
        tmp_path,
        gnu_long_name(LONG_FILE) + header(LONG_FILE, b"\0", size=3) + data(b"abc"),
        gnu_long_name(LONG_DIR) + header(LONG_DIR, b"\0", mode=0o700),
        gnu_long_name(LONG_DIR + b"inner") + header(LONG_DIR + b"inner", b"\0", size=2),
        data(b"hi"),
    )
    index = read_archive(path, keep_contents=True)
    assert codes(index) == []
    file, directory = LONG_FILE.decode(), LONG_DIR.decode().rstrip("/")
    assert (index.members[file].type, index.members[file].size) == ("f", 3)
    assert (index.members[directory].type, index.members[directory].mode) == ("d", 0o700)
    assert index.contents is not None
    assert index.contents[directory + "/inner"] == b"hi"
    expected = [("-", file), ("d", directory + "/"), ("-", directory + "/inner")]
    assert listing("tar", path) == expected
    assert listing("bsdtar", path) == expected
    assert_tools_agree(path, index)


def test_type_comes_from_the_pax_path(tmp_path: Path) -> None:
    """A '0' header whose pax path ends in '/' is a directory, as both tools extract it."""
    require_tools()
    path = write_archive(
        tmp_path,
        pax({b"path": b"opt/paxdir/"}) + header(b"opt/paxdir", b"0", mode=0o700),
        pax({b"path": b"opt/paxfile"}) + header(b"opt/paxfile/", b"0", size=1) + data(b"x"),
    )
    index = read_archive(path)
    assert codes(index) == []
    assert index.members["opt/paxdir"].type == "d"
    assert (index.members["opt/paxfile"].type, index.members["opt/paxfile"].size) == ("f", 1)
    expected = [("d", "opt/paxdir/"), ("-", "opt/paxfile")]
    assert listing("tar", path) == expected
    assert listing("bsdtar", path) == expected
    assert_tools_agree(path, index)


# --- 3. '..' components ---------------------------------------------------------


def dotdot_message(name: str) -> str:
    return (
        f"member {name!r} has a '..' component; tar skips members whose name has one, "
        "so it is not extracted"
    )


def test_members_named_with_dotdot_are_skipped_like_tar(tmp_path: Path) -> None:
    """A name with a '..' component is AM210 and left out, even inside the root.

    GNU tar says "Member name contains '..'" and bsdtar "Path contains '..'",
    and neither extracts it; a symlink *target* with '..' that stays inside,
    and a name component merely starting with '..', are extracted by both.
    """
    require_tools()
    path = write_archive(
        tmp_path,
        header(b"opt/tool/x/../y", b"0", size=3) + data(b"abc"),
        header(b"opt/tool/link/../l2", b"2", mode=0o777, linkname=b"y"),
        header(b"opt/tool/d/../", b"5", mode=0o700),
        header(b"opt/tool/..", b"5", mode=0o700),
        header(b"opt/tool/ok", b"2", mode=0o777, linkname=b"../tool/y"),
        header(b"opt/..x/f", b"0"),
    )
    index = read_archive(path)
    assert [(f.code, f.path, f.message) for f in index.findings] == [
        ("AM210", "/opt/tool/y", dotdot_message("opt/tool/x/../y")),
        ("AM210", "/opt/tool/l2", dotdot_message("opt/tool/link/../l2")),
        ("AM210", "/opt/tool", dotdot_message("opt/tool/d/../")),
        ("AM210", "/opt", dotdot_message("opt/tool/..")),
    ]
    assert index.findings[0].severity == "error"
    assert set(index.members) == {"opt/tool/ok", "opt/..x/f"}
    errors = assert_tools_agree(path, index, clean=False)
    for name in ("opt/tool/x/../y", "opt/tool/link/../l2", "opt/tool/d/../", "opt/tool/.."):
        assert f"tar: {name}: Member name contains '..'" in errors["tar"]
        assert f"{name}: Path contains '..'" in errors["bsdtar"]


def test_hard_link_to_a_dotdot_target_is_not_created(tmp_path: Path) -> None:
    """A hard link whose target has a '..' component is AM211: neither tool creates it.

    bsdtar refuses the target; GNU tar cuts it at the last '..' ('y') and fails.
    """
    require_tools()
    path = write_archive(
        tmp_path,
        header(b"opt/tool/y", b"0", size=3) + data(b"abc"),
        header(b"opt/tool/h", b"1", linkname=b"opt/tool/x/../y"),
    )
    index = read_archive(path)
    assert [(f.code, f.path, f.message) for f in index.findings] == [
        (
            "AM211",
            "/opt/tool/h",
            "hard link 'opt/tool/h' -> 'opt/tool/x/../y' has a '..' component in its "
            "target; tar does not create the link",
        )
    ]
    assert set(index.members) == {"opt/tool/y"}
    errors = assert_tools_agree(path, index, clean=False)
    assert "tar: opt/tool/h: Cannot hard link to" in errors["tar"]
    assert "opt/tool/h: Path contains '..'" in errors["bsdtar"]


# --- where the tools disagree -----------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "bsdtar_makes"),
    [
        pytest.param(
            # bsdtar types any unknown header named with a trailing slash as a directory.
            [header(b"opt/t/", b"Z", mode=0o700)],
            {"opt": "d", "opt/t": "d"},
            id="unknown-type-with-slash",
        ),
        pytest.param(
            # In a pax archive bsdtar reads the size of a hard link as its content
            # (rewriting the target); GNU tar reads no data, so the block after
            # the link is the next member's header.
            [
                pax({b"mtime": b"1"}) + header(b"opt/a", b"0", size=3) + data(b"abc"),
                pax({b"mtime": b"1"}) + header(b"opt/h", b"1", size=BLOCK, linkname=b"opt/a"),
                header(b"opt/hidden", b"0"),
            ],
            {"opt": "d", "opt/a": "f", "opt/h": "f"},
            id="pax-hard-link-with-size",
        ),
    ],
)
def test_where_the_tools_disagree_the_index_follows_gnu_tar(
    tmp_path: Path, parts: list[bytes], bsdtar_makes: dict[str, str]
) -> None:
    """Where GNU tar and bsdtar extract different trees, the index is GNU tar's."""
    require_tools()
    path = write_archive(tmp_path, *parts)
    index = read_archive(path)
    assert codes(index) == []
    assert extract("tar", path)[2] == index_tree(index)
    assert extract("bsdtar", path)[2] == bsdtar_makes != index_tree(index)


# --- members GNU tar cannot put where the archive says ----------------------------------


def require_gnu_tar() -> None:
    """Skip (fail with CI=true) unless tar is GNU tar."""
    found = shutil.which("tar") is not None and "GNU tar" in run_tool(
        ["tar", "--version"]
    ).stdout.decode("utf-8", "replace")
    if not found:
        reason = "tar is not GNU tar: GNU tar is this test's oracle"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _d(name: bytes) -> bytes:
    return header(name, b"5", mode=0o755)


def _f(name: bytes) -> bytes:
    return header(name, b"0", size=2) + data(b"x\n")


def _l(name: bytes) -> bytes:
    return header(name, b"2", mode=0o777, linkname=b"sub")


CLASHES = {
    "empty directory, then a file": [_d(b"d"), _f(b"d")],
    "file, then a directory": [_f(b"d"), _d(b"d")],
    "file, then a member below it": [_f(b"d"), _f(b"d/x")],
    "file, then a member two below it": [_f(b"d"), _f(b"d/e/x")],
    "member, then a file over its directory": [_f(b"d/x"), _f(b"d")],
    "symlink, then a directory": [_d(b"sub"), _l(b"d"), _d(b"d"), _f(b"d/x")],
    "file, then a symlink": [_f(b"d"), _l(b"d")],
    "member, then a symlink over its directory": [_d(b"sub"), _f(b"d/x"), _l(b"d")],
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_a_member_gnu_tar_cannot_extract_is_am202(tmp_path: Path, case: str) -> None:
    """GNU tar fails exactly where the index says AM202, and makes what the index holds."""
    require_gnu_tar()
    path = write_archive(tmp_path, *CLASHES[case])
    index = read_archive(path)
    status, stderr, tree = extract("tar", path)
    assert tree == index_tree(index)
    assert (status != 0) == ("AM202" in codes(index)), stderr
    if status != 0:
        [finding] = [f for f in index.findings if f.code == "AM202"]
        reason = "Not a directory" if "Not a directory" in stderr else "File exists"
        assert f"('{reason}')" in finding.message
