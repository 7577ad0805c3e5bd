"""libarchive's tar edge cases, each checked as an add-on's addon.tar.gz.

The corpus lives beside the repository (``../shared/corpus/libarchive-tar``)
and is read in place; each file is copied into a temporary bundle next to a
valid metadata.json. Every file must give a report, never a traceback.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from addon_mount import RULES, Bundle, RuntimeImage, read_archive, read_bundle, simulate
from addon_mount._archive import DIRECTORY, FILE, HARDLINK
from addon_mount._builders import metadata_json
from addon_mount._cli import main
from addon_mount._render import render_json, render_sarif, render_text

from .conftest import cml_entries

CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "libarchive-tar"
FILES = sorted(p for p in CORPUS.iterdir() if p.name != "README.md") if CORPUS.is_dir() else []
ABSENT = pytest.mark.skip(reason=f"the libarchive corpus is not at {CORPUS}")
CORPUS_FILES = [pytest.param(p, id=p.name) for p in FILES] or [
    pytest.param(None, id="corpus-absent", marks=ABSENT)
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


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is absent")
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
def test_library_gives_a_report_for_every_corpus_file(tmp_path: Path, source: Path) -> None:
    """read_bundle and simulate report on each corpus file; the reports render as UTF-8."""
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
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reports on each corpus file with exit 0 or 1, valid JSON and no traceback."""
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
