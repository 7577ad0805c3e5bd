"""Tests for the as-cdsw audit of what links reach, and for findings reported once each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from addon_mount import Entry, RuntimeImage, check
from addon_mount._builders import MemberSpec, targz
from addon_mount._render import render_json

from .conftest import BundleFactory, cml_entries

TOOL: list[MemberSpec] = [
    ("opt/tool", "d", 0o755, ""),
    ("opt/tool/bin", "d", 0o755, ""),
    ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\necho tool\n"),
]


def codes(report: object) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.path) for f in report.findings)  # type: ignore[attr-defined]


def test_unreadable_file_below_a_link(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A file cdsw may not read inside a linked directory is an error naming it."""
    report = check(
        bundle("x", ["/opt/tool"], [*TOOL, ("opt/tool/key.pem", "f", 0o600, "k")]), runtime
    )
    assert codes(report) == [("AM322", "/opt/tool/key.pem")]
    assert report.errors[0].message == (
        "/opt/tool/key.pem (through /opt/tool) is a file cdsw (uid 8536) may not read: "
        "owner uid 0, group 0, mode 600"
    )


def test_unsearchable_directory_is_the_one_cause(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """A directory cdsw may not search is reported once; what is below it is not repeated."""
    members = [
        *TOOL,
        ("opt/tool/private", "d", 0o700, ""),
        *[(f"opt/tool/private/k{i}", "f", 0o600, "k") for i in range(5)],
    ]
    report = check(bundle("x", ["/opt/tool"], members), runtime)
    assert codes(report) == [("AM322", "/opt/tool/private")]
    assert "may not read or search: owner uid 0, group 0, mode 700" in report.errors[0].message


def test_program_cdsw_cannot_run(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A program with x bits for its owner only, owned by another uid: one error, not two."""
    members = [*TOOL[:2], ("opt/tool/bin/run", "f", 0o700, "#!/bin/sh\n")]
    report = check(bundle("x", ["/opt/tool"], members, uid=501), runtime)
    assert codes(report) == [("AM323", "/opt/tool/bin/run")]
    assert report.errors[0].message == (
        "/opt/tool/bin/run is a program cdsw (uid 8536) may not run or read: "
        "owner uid 501, group 501, mode 700"
    )


def test_command_without_x_bit_is_a_warning(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A file in a bin directory that nobody may execute is a warning."""
    report = check(
        bundle("x", ["/usr/local/bin/tool"], [("usr/local/bin/tool", "f", 0o644, "")]), runtime
    )
    assert [(f.code, f.severity.value) for f in report.findings] == [("AM324", "warning")]


def test_many_members_one_finding_with_every_path(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """2,000 unreadable files are one finding: its count and examples in text, all paths in JSON."""
    members = [*TOOL, *[(f"opt/tool/data/f{i:04}", "f", 0o600, "") for i in range(2000)]]
    report = check(bundle("x", ["/opt/tool"], members), runtime)
    (finding,) = report.findings
    assert finding.code == "AM322"
    assert finding.count == 2000
    assert finding.message.endswith(
        "; and 1,999 more like it: '/opt/tool/data/f0001', '/opt/tool/data/f0002', "
        "'/opt/tool/data/f0003' and 1,996 more"
    )
    data = json.loads(render_json(report))
    (shown,) = data["findings"]
    assert shown["count"] == 2000
    assert len(shown["paths"]) == 2000


def test_rejected_members_are_one_finding_and_explain_the_missing_path(
    tmp_path: Path, runtime: RuntimeImage
) -> None:
    """Absolute names give one AM210 with the count; AM300 says members were left out."""
    import tarfile

    from addon_mount._builders import metadata_json

    bundle = tmp_path / "abs"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("abs", ["/opt/tool"]))
    with tarfile.open(bundle / "addon.tar.gz", "w:gz") as tar:
        for i in range(50):
            tar.addfile(tarfile.TarInfo(f"/opt/tool/f{i}"))
    report = check(bundle, runtime)
    assert sorted((f.code, f.count) for f in report.findings) == [("AM210", 50), ("AM300", 1)]
    missing = next(f for f in report.findings if f.code == "AM300")
    assert missing.message == (
        "/opt/tool would dangle: the archive has no member 'opt/tool'; 50 members below it "
        "were left out (see AM210 above)"
    )


def test_near_name_is_suggested(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A path missing from the archive names the near name it has beside it."""
    report = check(
        bundle("x", ["/opt/simba-spark"], [("opt/simba/lib.so", "f", 0o644, "")]), runtime
    )
    missing = next(f for f in report.findings if f.code == "AM300")
    assert missing.message == (
        "/opt/simba-spark would dangle: the archive has no member 'opt/simba-spark'; it has "
        "'opt/simba' (the layout must mirror the absolute path: 'opt/simba-spark')"
    )


def test_cut_short_archive_says_why(tmp_path: Path, runtime: RuntimeImage) -> None:
    """A path beyond where a truncated archive stops is said to be unknown, not simply missing."""
    from addon_mount._builders import metadata_json, tar_bytes

    data = tar_bytes([("opt/a", "f", 0o644, "a" * 5000), ("opt/b", "f", 0o644, "b")])
    import gzip

    bundle = tmp_path / "cut"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("cut", ["/opt/a", "/opt/b"]))
    (bundle / "addon.tar.gz").write_bytes(gzip.compress(data[:3000]))
    report = check(bundle, runtime)
    missing = [f for f in report.findings if f.code == "AM300"]
    assert [f.path for f in missing] == ["/opt/b"]
    assert "could not be read to the end" in missing[0].message


def test_symlink_to_a_path_the_addon_links_is_not_into_the_runtime(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """AM212 is only for targets no enabled add-on ships and links."""
    members = [*TOOL, ("usr/local/bin/tool", "l", 0o777, "/opt/tool/bin/run")]
    shipped = check(bundle("x", ["/opt/tool", "/usr/local/bin/tool"], members), runtime)
    assert shipped.findings == ()
    elsewhere = check(bundle("y", ["/usr/local/bin/tool"], members[3:]), runtime)
    assert "AM212" in {f.code for f in elsewhere.findings}


def _runtime(name: str, *extra: Entry) -> RuntimeImage:
    return RuntimeImage.from_entries([*cml_entries(), *extra], name=name)


def test_interpreters_are_looked_up_per_runtime(bundle: BundleFactory) -> None:
    """A #! interpreter one runtime has and another lacks fails only in the second."""
    members = [
        *TOOL[:2],
        ("opt/tool/bin/a", "f", 0o755, "#!/usr/bin/perl\n"),
        ("opt/tool/bin/b", "f", 0o755, "#!/usr/bin/env perl\n"),
        ("opt/tool/bin/c", "f", 0o755, "#!/opt/tool/bin/own\n"),
        ("opt/tool/bin/own", "f", 0o755, "\x7fELF"),
    ]
    with_perl = _runtime("with-perl", Entry("/usr/bin/perl", "f", 0o755))
    without = _runtime("without")
    report = check(bundle("x", ["/opt/tool"], members), [with_perl, without])
    assert sorted((f.code, f.runtime, f.path) for f in report.findings) == [
        ("AM340", "without", "/opt/tool/bin/a"),
        ("AM340", "without", "/opt/tool/bin/b"),
    ]


def test_interpreter_cdsw_may_not_run_counts_as_missing(bundle: BundleFactory) -> None:
    """An interpreter that is there but not executable by cdsw fails like a missing one."""
    members = [*TOOL[:2], ("opt/tool/bin/a", "f", 0o755, "#!/usr/bin/perl\n")]
    image = _runtime("locked", Entry("/usr/bin/perl", "f", 0o700))
    report = check(bundle("x", ["/opt/tool"], members), image)
    assert [f.code for f in report.findings] == ["AM340"]


def test_windows_line_endings_after_the_interpreter(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """#!/bin/sh followed by CRLF fails to start: the finding says why."""
    members = [*TOOL[:2], ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\r\necho\r\n")]
    report = check(bundle("x", ["/opt/tool"], members), runtime)
    assert [f.code for f in report.findings] == ["AM341"]


def test_stray_macos_files_are_one_warning(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """AppleDouble files, .DS_Store and __MACOSX/ are one warning listing them."""
    members = [
        *TOOL,
        ("opt/tool/._run", "f", 0o644, ""),
        ("opt/tool/bin/._run", "f", 0o644, ""),
        ("opt/tool/.DS_Store", "f", 0o644, ""),
    ]
    report = check(bundle("x", ["/opt/tool"], members), runtime)
    (finding,) = report.findings
    assert (finding.code, finding.count) == ("AM250", 3)


def test_a_sloppy_bundle_shows_every_problem_in_one_run(
    tmp_path: Path, runtime: RuntimeImage
) -> None:
    """No name, a bad path, absolute members, a collision, unreadable content: all at once."""
    import tarfile

    bundle = tmp_path / "sloppy"
    bundle.mkdir()
    (bundle / "metadata.json").write_text(
        json.dumps({"spec": {"paths": ["/opt/tool", "usr/bin/x", "/etc/hosts"]}})
    )
    (bundle / "addon.tar.gz").write_bytes(
        targz([*TOOL, ("opt/tool/key.pem", "f", 0o600, "k"), ("etc/hosts", "f", 0o644, "")])
    )
    with tarfile.open(bundle / "more.tar", "w"):
        pass  # not an archive the bundle uses: only addon.tar.gz counts
    report = check(bundle, runtime)
    assert sorted({f.code for f in report.findings}) == ["AM111", "AM130", "AM301", "AM322"]
    assert len(report.findings) == 4


@pytest.mark.parametrize("uid", [0, 8536])
def test_content_owned_by_cdsw_passes(
    runtime: RuntimeImage, bundle: BundleFactory, uid: int
) -> None:
    """Readable-by-all content passes whoever owns it; cdsw's own 600 file passes too."""
    members = [*TOOL, ("opt/tool/key.pem", "f", 0o644 if uid == 0 else 0o600, "k")]
    report = check(bundle("x", ["/opt/tool"], members, uid=uid, gid=uid), runtime)
    assert report.findings == ()
