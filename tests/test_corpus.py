"""libarchive's tar edge cases, each checked as an add-on's addon.tar.gz.

The corpus lives beside the repository (``../shared/corpus/libarchive-tar``)
and is read in place; each file is copied into a temporary bundle next to a
valid metadata.json. Every file must give a report, never a traceback, and
list as GNU tar and bsdtar list it. Without the corpus the tests skip, except
with CI=true, where they fail.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from addon_mount import RULES, RuntimeImage
from addon_mount._archive import DIRECTORY, FILE, HARDLINK, read_archive
from addon_mount._builders import metadata_json
from addon_mount._check import Bundle, read_bundle, simulate
from addon_mount._cli import main
from addon_mount._render import render_json, render_sarif, render_text
from addon_mount._tarstream import TarStream

from .conftest import cml_entries
from .test_tar_semantics import ListingError, extract, index_tree, listing, require_tools

CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "libarchive-tar"
FILES = sorted(p for p in CORPUS.iterdir() if p.name != "README.md") if CORPUS.is_dir() else []
CORPUS_FILES = [pytest.param(p, id=p.name) for p in FILES] or [
    pytest.param(None, id="corpus-absent")
]

GZIP_SUFFIXES = {".gz", ".tgz"}
# What each other kind of file is, as the AM200 message must name it.
NOT_GZIP = {
    ".tar": "an uncompressed tar archive",
    ".bz2": "bzip2-compressed data",
    ".xz": "xz-compressed data",
    ".zst": "zstd-compressed data",
    ".lz4": "lz4-compressed data",
    ".lzo": "lzop-compressed data",
    ".Z": "compress (.Z) data",
    ".lrz": "lrzip-compressed data",
    ".grz": "grzip-compressed data",
    ".lz": "lzip-compressed data",
    ".lzma": "lzma-compressed data",
}
# gzip files that cannot be read to the end: the code and a part of the message.
UNREADABLE = {
    "test_empty.gz": ("AM201", "addon.tar.gz is empty: its gzip data holds no tar archive"),
    "test_expand.gz": (
        "AM201",
        "before the first member (uncompressed offset 0): unexpected end of data inside a header",
    ),
    "test_read_format_raw.data.gz": ("AM201", "unexpected end of data inside a header"),
    "test_read_too_many_filters.gz": ("AM201", "unexpected end of data inside a header"),
    "test_read_format_tar_V_negative_size.tar.gz": (
        "AM201",
        "addon.tar.gz is corrupt: member '' has a negative size "
        "(-309,485,009,821,344,931,285,827,584) in its header",
    ),
    "test_read_format_tar_acl_oob_read.tar.gz": (
        "AM201",
        "after 'file' (uncompressed offset 2,560): invalid header: bad checksum",
    ),
    "test_read_format_tar_invalid_pax_size.tar.gz": ("AM201", "invalid header"),
    "test_read_format_tar_pax_g_large.tar.gz": (
        "AM240",
        "addon.tar.gz has more than 1,048,576 bytes of global pax headers; stopped reading "
        "(raise the limit with --max-header-bytes)",
    ),
}


def absent(what: Path) -> None:
    """Skip a test whose corpus file is missing; with CI=true, fail it."""
    reason = f"the libarchive corpus is not at {what}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def present(source: Path | None) -> Path:
    if source is None:
        absent(CORPUS)
    assert source is not None
    return source


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        absent(path)
    return path


def make_bundle(tmp_path: Path, source: Path) -> Path:
    """A bundle of *source* as addon.tar.gz, requesting the archive's own top-level names.

    Requesting what the archive holds makes the simulated start-up walk its odd
    members instead of stopping at a missing path.
    """
    bundle = tmp_path / "corpus"
    bundle.mkdir()
    shutil.copyfile(source, bundle / "addon.tar.gz")
    tops = {n.split("/")[0] for n in read_archive(bundle / "addon.tar.gz").members if n}
    paths = sorted("/" + t for t in tops if t.isascii() and t.isprintable() and t != "..")
    (bundle / "metadata.json").write_bytes(metadata_json("corpus", paths[:20] or ["/opt/corpus"]))
    return bundle


def check_in_library(bundle_dir: Path) -> tuple[Bundle, str]:
    """read_bundle, simulate and every renderer; the JSON report, which must parse."""
    bundle = read_bundle(bundle_dir)
    report = simulate([bundle], [RuntimeImage.from_entries(cml_entries(), name="tiny")])
    assert {f.code for f in report.findings} <= set(RULES)
    text = io.StringIO()
    render_text(report, text)
    text.getvalue().encode("utf-8")
    render_sarif(report, "0").encode("utf-8")
    rendered = render_json(report)
    rendered.encode("utf-8")
    assert len(json.loads(rendered)["findings"]) == len(report.findings)
    return bundle, rendered


def archive_codes(bundle: Bundle) -> set[str]:
    return {f.code for f in bundle.findings if f.code.startswith("AM2")}


@pytest.mark.parametrize("source", CORPUS_FILES)
def test_library_gives_a_report_for_every_corpus_file(tmp_path: Path, source: Path | None) -> None:
    """read_bundle and simulate report on each corpus file; the reports render as UTF-8."""
    source = present(source)
    bundle, _ = check_in_library(make_bundle(tmp_path, source))
    assert bundle.archive is not None
    findings = {f.code: f.message for f in bundle.archive.findings}
    if source.suffix in GZIP_SUFFIXES:
        assert "AM200" not in findings
        if source.name in UNREADABLE:
            code, part = UNREADABLE[source.name]
            assert part in findings[code]
            assert not bundle.archive.complete
        else:
            assert bundle.archive.complete, findings
            assert not {"AM201", "AM240"} & set(findings)
    else:
        assert source.suffix in NOT_GZIP, f"no expectation for {source.name}: add its suffix"
        assert findings == {
            "AM200": f"addon.tar.gz is {NOT_GZIP[source.suffix]}, not a gzip-compressed tar archive"
        }
        assert bundle.archive.member_count == 0


@pytest.mark.parametrize("source", CORPUS_FILES)
def test_cli_exits_zero_or_one_with_valid_json(
    tmp_path: Path, source: Path | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reports on each corpus file with exit 0 or 1, valid JSON and no traceback."""
    source = present(source)
    bundle = make_bundle(tmp_path, source)
    with pytest.raises(SystemExit) as exc:
        main(["check", str(bundle), "--format", "json"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, 1), err
    assert "Traceback" not in err
    assert "internal error" not in err
    report = json.loads(out)
    assert report["ok"] is (exc.value.code == 0)
    assert report["addons"][0]["name"] == "corpus"


def test_non_utf8_names_render_as_byte_escapes(tmp_path: Path) -> None:
    """A pax name holding a byte that is not UTF-8 shows as \\xfc in JSON and text output."""
    bundle, rendered = check_in_library(
        make_bundle(tmp_path, corpus_file("test_pax_filename_encoding.tar.gz"))
    )
    assert bundle.archive is not None
    # 'c' and a combining caron, then the Latin-1 byte 0xfc (not UTF-8).
    assert set(bundle.archive.members) == {"abc\u030cmno\udcfcxyz"}
    duplicate = next(f for f in json.loads(rendered)["findings"] if f["code"] == "AM220")
    assert duplicate["path"] == "/abc\u030cmno\\xfcxyz"
    assert duplicate["message"] == (
        "member 'abc\u030cmno\\udcfcxyz' appears more than once; extraction keeps the last copy"
    )
    text = io.StringIO()
    render_text(simulate([bundle], []), text)
    assert "  warning AM220 duplicate-entry  /abc\u030cmno\\xfcxyz\n" in text.getvalue()


def test_solaris_acl_headers_are_not_members(tmp_path: Path) -> None:
    """Solaris 'A' ACL headers describe the next member: no duplicate, no extra file."""
    bundle, _ = check_in_library(
        make_bundle(tmp_path, corpus_file("test_compat_solaris_tar_acl.tar.gz"))
    )
    assert bundle.archive is not None
    assert archive_codes(bundle) == set()
    types = {n: m.type for n, m in bundle.archive.members.items()}
    assert types == {
        "file-with-posix-acls": FILE,
        "dir-with-posix-acls": DIRECTORY,
        "file-with-nfsv4-acls": FILE,
        "dir-with-nfsv4-acls": DIRECTORY,
    }


def test_gnu_volume_label_is_not_a_member(tmp_path: Path) -> None:
    """A GNU volume label ('V') is counted but not indexed: tar extracts nothing for it."""
    bundle, _ = check_in_library(
        make_bundle(tmp_path, corpus_file("test_read_format_tar_empty_with_gnulabel.tar.gz"))
    )
    assert bundle.archive is not None
    assert bundle.archive.member_count == 1
    assert bundle.archive.members == {}
    assert archive_codes(bundle) == set()


def test_sparse_members_have_their_expanded_size() -> None:
    """GNU sparse members are indexed with the size they extract to."""
    index = read_archive(corpus_file("test_read_format_gtar_sparse_1_13.tar.gz"))
    assert {n: m.size for n, m in index.members.items()} == {
        "sparse": 3_145_728,
        "sparse2": 99_000_001,
        "non-sparse": 0,
    }
    assert index.total_bytes == 3_145_728 + 99_000_001
    assert index.findings == []


def test_old_tar_hardlink_is_indexed_as_a_link() -> None:
    """A pre-POSIX archive's hard link points at the earlier member it names."""
    index = read_archive(corpus_file("test_compat_tar_hardlink_1.tar.gz"))
    link = index.members["xmcd-3.3.2/README"]
    assert (link.type, link.linkname) == (HARDLINK, "xmcd-3.3.2/docs_d/READMf")
    assert index.findings == []


def test_leading_slashes_are_unsafe() -> None:
    """Absolute member names are AM210 and left out of the index."""
    index = read_archive(corpus_file("tar-test_leading_slash.tar.gz"))
    assert [f.code for f in index.findings] == ["AM210", "AM210"]
    assert index.findings[0].message.endswith(
        "has an absolute name; extracting it would write outside the add-on"
    )
    assert index.members == {}


# --- the listing, against GNU tar and bsdtar -------------------------------------

# How ``-tv`` shows each header type (its first column); other types: GNU '?', bsdtar '-'.
GNU_LETTERS = {b"0": "-", b"5": "d", b"D": "d", b"2": "l", b"1": "h", b"S": "-", b"7": "C"}
GNU_LETTERS |= {b"3": "c", b"4": "b", b"6": "p", b"V": "V"}
BSD_LETTERS = {**GNU_LETTERS, b"7": "-"}
# bsdtar folds a Solaris ACL header into the member after it and shows no volume
# label; GNU tar lists both, and extracts neither as a member of its own (an 'A'
# header is extracted as a file that the next member replaces).
NOT_LISTED_BY_BSDTAR = {b"A", b"V"}
# Where GNU tar's listing disagrees with bsdtar's and ours, and why.
GNU_LISTS_OTHERWISE = {
    # A V7 header 'directory1/' with size 1 and no data block. tar -t skips one
    # block and so never sees 'directory2/'; tar -x (like bsdtar, and like us)
    # reads no data for a directory, and extracts both directories.
    name: [("d", "directory1/")]
    for name in ("test_compat_tar_directory_1.tar", "test_compat_tar_directory_1.tar.gz")
}


def bsd_letter(type_: bytes, size: int) -> str:
    # bsdtar shows a hard link with a nonzero size field as a regular file ('-'):
    # it takes the link for a file with content (see test_tar_semantics).
    if type_ == b"1" and size > 0:
        return "-"
    return BSD_LETTERS.get(type_, "-")


def our_listing(source: Path) -> list[tuple[bytes, str, int]]:
    """(type, name, size) of each header the reader yields, whatever the file's compression."""
    raw = source.read_bytes()
    if not raw.startswith(b"\x1f\x8b"):
        # Only the tar inside is compared: decompress it as bsdtar does, gzip it again.
        tar = subprocess.run(["bsdcat", str(source)], capture_output=True, check=True).stdout
        raw = gzip.compress(tar, compresslevel=1)
    return [(h.type, h.name, h.size) for h in TarStream(io.BytesIO(raw))]


@pytest.mark.parametrize("source", CORPUS_FILES)
def test_listing_matches_gnu_tar_and_bsdtar(source: Path | None) -> None:
    """Each archive both tools list without error lists the same names and types for us.

    Types are compared as ``-tv`` shows them, so a directory named by a trailing
    slash, a hard link or a symlink must read as the tools read it.
    """
    source = present(source)
    require_tools()
    try:
        gnu = listing("tar", source)
        bsd = listing("bsdtar", source)
    except ListingError as exc:
        pytest.skip(f"not listed cleanly by both tools: {exc}")
    ours = our_listing(source)
    assert bsd == [(bsd_letter(t, size), n) for t, n, size in ours if t not in NOT_LISTED_BY_BSDTAR]
    if source.name in GNU_LISTS_OTHERWISE:
        assert gnu == GNU_LISTS_OTHERWISE[source.name]
    else:
        assert gnu == [(GNU_LETTERS.get(t, "?"), n) for t, n, _ in ours]


def test_directory_with_a_size_extracts_as_both_tools_extract_it() -> None:
    """The V7 directory with a size and no data: both directories, as tar -x and bsdtar make."""
    require_tools()
    source = corpus_file("test_compat_tar_directory_1.tar.gz")
    index = read_archive(source)
    assert index.findings == []
    assert index_tree(index) == {"directory1": "d", "directory2": "d"}
    for tool in ("tar", "bsdtar"):
        status, stderr, tree = extract(tool, source)
        assert (status, stderr, tree) == (0, "", index_tree(index)), tool
