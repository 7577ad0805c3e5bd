"""End-to-end: every fixture bundle through the CLI, against the embedded default runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from addon_mount._cli import cli
from addon_mount._findings import KINDS, RULES

from .conftest import FIXTURES, REPO

# fixture -> (exit status, kind it shows, codes expected)
BROKEN = {
    "invalid-bundle": (1, "invalid-bundle", {"AM101"}),
    "invalid-metadata": (1, "invalid-metadata", {"AM111"}),
    "invalid-name": (1, "invalid-name", {"AM120"}),
    "invalid-path": (1, "invalid-path", {"AM130", "AM131"}),
    "unsupported": (0, "unsupported", {"AM141"}),
    "risky-path": (0, "risky-path", {"AM140"}),
    "invalid-archive": (1, "invalid-archive", {"AM200"}),
    "unsafe-entry": (1, "unsafe-entry", {"AM210", "AM212"}),
    "duplicate-entry": (0, "duplicate-entry", {"AM220"}),
    "unused-entry": (0, "unused-entry", {"AM230"}),
    "limit-exceeded": (1, "limit-exceeded", {"AM241"}),
    "missing-entry": (1, "missing-entry", {"AM300", "AM230"}),
    "collision": (1, "collision", {"AM301"}),
    "addon-collision": (1, "addon-collision", {"AM310", "AM230"}),
    "permission-denied": (1, "permission-denied", {"AM320", "AM321"}),
    "missing-parent": (0, "missing-parent", {"AM330"}),
    "broken-parent": (1, "broken-parent", {"AM303", "AM304"}),
    "unreadable-content": (1, "unreadable-content", {"AM322", "AM323", "AM324"}),
    "stray-file": (0, "stray-file", {"AM250"}),
    "in-place": (0, "in-place", {"AM312"}),
    "broken-executable": (1, "broken-executable", {"AM340", "AM341", "AM342"}),
    "unexpected-error": (1, "unexpected-error", {"AM390"}),
}


def bundle_args(name: str) -> list[str]:
    directory = FIXTURES / "broken" / name
    if (directory / "runtime.tar").exists():
        # A fixture that needs a runtime of its own ships it as a docker-export tarball.
        return [str(directory), "--runtime", str(directory / "runtime.tar")]
    if (directory / "metadata.json").exists():
        return [str(directory)]
    return [str(p) for p in sorted(directory.iterdir())]


def run_json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["check", "--format", "json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_every_kind_has_a_fixture() -> None:
    """Each documented kind is shown by one fixture (and each fixture by this test)."""
    assert {kind for _, kind, _ in BROKEN.values()} == set(KINDS)
    assert sorted(BROKEN) == sorted(p.name for p in (FIXTURES / "broken").iterdir())


def test_docs_example_passes() -> None:
    """The docs' example links both paths and has no finding."""
    status, report = run_json(str(FIXTURES / "docs-example"))
    assert status == 0
    assert report["ok"] is True
    assert report["findings"] == []
    assert [(link["path"], link["target"]) for link in report["links"]] == [  # type: ignore[index]
        (
            "/usr/bin/custom_folder",
            "/runtime-addons/custom-addon-docs-example/usr/bin/custom_folder",
        ),
        ("/usr/custom_file", "/runtime-addons/custom-addon-docs-example/usr/custom_file"),
    ]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_fixture(name: str) -> None:
    """Each broken bundle gives its kind, exactly its codes, and the right exit status."""
    expected_status, kind, codes = BROKEN[name]
    status, report = run_json(*bundle_args(name))
    findings = report["findings"]
    assert isinstance(findings, list)
    assert {f["code"] for f in findings} == codes
    assert kind in {f["kind"] for f in findings}
    assert status == expected_status
    assert report["ok"] is (expected_status == 0)
    for f in findings:
        assert f["hint"] == RULES[f["code"]].hint
        assert f["severity"] in ("error", "warning", "info")


def test_json_contract() -> None:
    """The JSON report has every documented key, with the documented types."""
    status, report = run_json(*bundle_args("addon-collision"))
    assert status == 1
    assert report["schema"] == 1
    assert set(report) >= {"schema", "ok", "addons", "runtimes", "links", "findings"}
    addons = report["addons"]
    assert isinstance(addons, list)
    assert [a["name"] for a in addons] == ["tool-a", "tool-b"]
    assert addons[0]["registered_name"] == "custom-addon-tool-a"
    assert addons[1]["paths"] == ["/opt/tool/bin"]
    runtimes = report["runtimes"]
    assert isinstance(runtimes, list)
    assert runtimes[0]["name"] == "cml-workbench-python"
    assert runtimes[0]["entries"] > 1000
    links = report["links"]
    assert isinstance(links, list)
    assert set(links[0]) >= {"path", "target", "addon", "runtime"}
    findings = report["findings"]
    assert isinstance(findings, list)
    for f in findings:
        assert set(f) >= {"code", "kind", "severity", "addon", "runtime", "path", "message", "hint"}


def test_fixtures_match_their_generator() -> None:
    """The committed fixtures are what scripts/make_fixtures.py generates."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_fixtures.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_fixture_inputs_are_not_modified() -> None:
    """A check leaves every fixture file byte-for-byte as it was."""
    files = sorted(p for p in FIXTURES.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    for name in BROKEN:
        run_json(*bundle_args(name))
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    assert sorted(p for p in FIXTURES.rglob("*") if p.is_file()) == files


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    """`python -m addon_mount` runs the CLI with the documented exit statuses."""
    ok = subprocess.run(
        [sys.executable, "-m", "addon_mount", "check", str(FIXTURES / "docs-example")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "docs-example (custom-addon-docs-example): PASSED" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "addon_mount", "check", str(FIXTURES / "broken" / "collision")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout
    assert "\x1b[" not in bad.stdout  # no colour when piped


# Each case of the content audit and the archive reader, as a bundle in fixtures/cases:
# (runtime, {(code, count)} it must give and nothing else).
CASES = {
    "mac-tarball": (None, {("AM322", 1), ("AM323", 1), ("AM250", 3)}),
    "wrapper-not-executable": (None, {("AM324", 1)}),
    "crlf-script": (None, {("AM341", 1)}),
    "missing-interpreter": (None, {("AM340", 1)}),
    "many-absolute": (None, {("AM210", 2000), ("AM300", 1)}),
    "link-to-own-path": (None, set()),
    "near-name": (None, {("AM300", 1), ("AM230", 1)}),
    "dotdot-member": (None, {("AM210", 1), ("AM300", 1), ("AM330", 1)}),
    "regular-header-dir": (None, {("AM330", 1)}),
    "gnu-long-dir": (None, set()),
    "file-with-members": (None, {("AM202", 1)}),
    "bom-script": (None, {("AM343", 1)}),
    "conda-bin": ("cml-conda", {("AM320", 1)}),
}


def test_every_case_has_a_bundle() -> None:
    """The case table and fixtures/cases hold the same cases."""
    assert sorted(CASES) == sorted(p.name for p in (FIXTURES / "cases").iterdir())


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str) -> None:
    """Each case gives exactly its findings, each once, with its count."""
    runtime, expected = CASES[name]
    args = [str(FIXTURES / "cases" / name), "--cloudera-addons", "none"]
    if runtime:
        args += ["--runtime", runtime]
    _, report = run_json(*args)
    findings = report["findings"]
    assert isinstance(findings, list)
    assert {(f["code"], f["count"]) for f in findings} == expected
    assert len(findings) == len(expected)


def test_case_messages_say_why() -> None:
    """The messages of the cases name the cause: a near name, members left out, a fix."""
    _, near = run_json(str(FIXTURES / "cases" / "near-name"), "--cloudera-addons", "none")
    _, many = run_json(str(FIXTURES / "cases" / "many-absolute"), "--cloudera-addons", "none")
    _, conda = run_json(
        str(FIXTURES / "cases" / "conda-bin"), "--runtime", "cml-conda", "--cloudera-addons", "none"
    )
    messages = [
        f["message"]
        for report in (near, many, conda)
        for f in report["findings"]  # type: ignore[union-attr]
    ]
    assert any("it has 'opt/simba'" in m for m in messages)
    assert any("2,000 members below it were left out (see AM210 above)" in m for m in messages)
    assert any("and 1,999 more like it" in m for m in messages)
    assert any(
        "may not write in /opt/conda/bin: owner uid 0, group 0, mode 755; in this runtime "
        "cdsw may link /opt/tool instead" in m
        for m in messages
    )
