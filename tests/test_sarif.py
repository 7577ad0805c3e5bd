"""SARIF output, checked by hand against the SARIF 2.1.0 essentials; --output and --strict."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from addon_mount import RULES
from addon_mount._builders import metadata_json, targz

from .conftest import run_cli

LEVELS = {"error": "error", "warning": "warning", "info": "note"}

run = run_cli


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundle with metadata, archive and start-up findings, checked from tmp_path."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "bundles" / "tool"
    directory.mkdir(parents=True)
    paths = ["/opt/tool", "/usr/bin/env", "/home/cdsw/tool", "/opt/missing"]
    (directory / "metadata.json").write_bytes(metadata_json("tool", paths, version="1"))
    members = [
        ("opt/tool", "d", 0o755, ""),
        ("opt/tool/java", "l", 0o777, "/usr/lib/jvm/java"),
        ("usr/bin/env", "f", 0o755, "x"),
        ("home/cdsw/tool", "f", 0o644, "x"),
        ("extra/x", "f", 0o644, ""),
    ]
    (directory / "addon.tar.gz").write_bytes(targz(members))
    return directory


@pytest.fixture
def sarif_and_json(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SARIF report of the bundle and, for comparison, its JSON report."""
    status, out, _ = run(["check", "bundles/tool", "--format", "sarif"], capsys)
    assert status == 1
    sarif = json.loads(out)
    _, out, _ = run(["check", "bundles/tool", "--format", "json"], capsys)
    return sarif, json.loads(out)


def test_sarif_log_has_version_schema_and_one_run(
    sarif_and_json: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The log is SARIF 2.1.0 with a $schema and exactly one run by addon-mount."""
    sarif, _ = sarif_and_json
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    assert len(sarif["runs"]) == 1
    driver = sarif["runs"][0]["tool"]["driver"]
    assert driver["name"] == "addon-mount"
    assert isinstance(driver["version"], str)
    assert driver["version"]


def test_sarif_has_one_rule_per_finding_code_with_help(
    sarif_and_json: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Every finding code is a rule with a description, help text and default level."""
    sarif, _ = sarif_and_json
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(RULES)
    for rule in rules:
        code = RULES[rule["id"]]
        assert re.fullmatch(r"[A-Z][A-Za-z]+\d{3}", rule["name"])
        assert rule["shortDescription"]["text"] == code.title
        assert rule["fullDescription"]["text"].startswith(code.title)
        assert rule["help"]["text"] == code.hint
        assert rule["defaultConfiguration"]["level"] == LEVELS[code.severity.value]


def test_sarif_has_one_result_per_finding(
    sarif_and_json: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Each finding is a result with its rule, level, and a message holding message and fix."""
    sarif, report = sarif_and_json
    run_ = sarif["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    results = run_["results"]
    findings = report["findings"]
    assert [r["ruleId"] for r in results] == [f["code"] for f in findings]
    assert {r["ruleId"] for r in results} == {
        "AM112",
        "AM140",
        "AM212",
        "AM230",
        "AM300",
        "AM301",
    }
    for result, finding in zip(results, findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == LEVELS[finding["severity"]]
        text = result["message"]["text"]
        assert text.startswith(finding["message"])
        assert text.endswith(f"Fix: {finding['hint']}")


def test_sarif_locations_are_the_uploaded_files(
    sarif_and_json: tuple[dict[str, Any], dict[str, Any]], bundle: Path
) -> None:
    """Results point at metadata.json (on the path's line) or addon.tar.gz, relative to SRCROOT."""
    sarif, _ = sarif_and_json
    run_ = sarif["runs"][0]
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"] == bundle.parents[1].as_uri() + "/"
    lines = (bundle / "metadata.json").read_text().splitlines()
    where = {}
    for result in run_["results"]:
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "SRCROOT"
        assert artifact["uri"] in ("bundles/tool/metadata.json", "bundles/tool/addon.tar.gz")
        where[result["ruleId"]] = artifact["uri"].rsplit("/", 1)[1]
        region = location["physicalLocation"].get("region")
        if region is not None:
            path = result["properties"]["path"]
            assert f'"{path}"' in lines[region["startLine"] - 1]
    assert where == {
        "AM112": "metadata.json",
        "AM140": "metadata.json",
        "AM212": "addon.tar.gz",
        "AM230": "addon.tar.gz",
        "AM300": "metadata.json",
        "AM301": "metadata.json",
    }


def test_sarif_messages_name_the_workload_path_and_runtime(
    sarif_and_json: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """A result about a path names it in its message (and the runtime, for start-up results)."""
    sarif, _ = sarif_and_json
    results = {r["ruleId"]: r for r in sarif["runs"][0]["results"]}
    for result in results.values():
        path = result["properties"]["path"]
        if path is not None:
            assert path in result["message"]["text"]
            assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == path
    # The archive names the member 'opt/tool/java'; the message adds the workload path.
    assert "(workload path /opt/tool/java)" in results["AM212"]["message"]["text"]
    assert "(runtime cml-workbench-python)" in results["AM301"]["message"]["text"]


# -- --output with every format, and --strict ----------------------------------------


@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_output_file_holds_what_stdout_would(
    bundle: Path, tmp_path: Path, output_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output FILE writes the report of any format to FILE, and nothing to stdout."""
    status, printed, _ = run(["check", str(bundle), "--format", output_format], capsys)
    target = tmp_path / f"report.{output_format}"
    args = ["check", str(bundle), "--format", output_format, "--output", str(target)]
    assert run(args, capsys) == (status, "", "")
    assert status == 1
    assert target.read_text("utf-8") == printed


def test_strict_makes_warnings_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle with only warnings exits 0, and 1 with --strict, in every format."""
    monkeypatch.chdir(tmp_path)
    bundle = tmp_path / "tool"
    bundle.mkdir()
    (bundle / "metadata.json").write_bytes(metadata_json("tool", ["/opt/tool-addon"], version="1"))
    (bundle / "addon.tar.gz").write_bytes(targz([("opt/tool-addon", "f", 0o644, "x")]))
    status, out, _ = run(["check", "tool", "--format", "json"], capsys)
    assert status == 0
    assert [(f["code"], f["severity"]) for f in json.loads(out)["findings"]] == [
        ("AM112", "warning")
    ]
    for output_format in ("text", "json", "sarif"):
        status, out, _ = run(["check", "tool", "--strict", "--format", output_format], capsys)
        assert status == 1, output_format
    status, out, _ = run(["check", "tool", "--strict"], capsys)
    assert "tool (custom-addon-tool): FAILED (1 warning)" in out
