"""Every start-up example `addon-mount explain` shows is what a check of it reports.

Each example is rebuilt as a bundle and checked against the embedded default
runtime; the few that need something no built-in runtime has (a dangling or
looping symlink, a live session) use the runtime their fixture ships.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from addon_mount import RULES, check
from addon_mount._builders import MemberSpec, write_bundle

from .conftest import REPO

FIXTURES = REPO / "fixtures" / "broken"
TOOL: list[MemberSpec] = [("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\n")]

# code: (bundles as [(name, paths, members, owner uid)], runtime or None for the default)
EXAMPLES: dict[str, tuple[list[tuple[str, list[str], list[MemberSpec], int]], Path | None]] = {
    "AM210": (
        [("x", ["/opt/x"], [("opt/x", "f", 0o644, ""), ("opt/../y", "f", 0o644, "")], 0)],
        None,
    ),
    "AM212": ([("x", ["/opt/x"], [("opt/x", "l", 0o777, "/usr/share/x")], 0)], None),
    "AM250": ([("x", ["/opt/tool"], [*TOOL, ("opt/tool/._run", "f", 0o644, "")], 0)], None),
    "AM300": ([("x", ["/usr/bin/tool"], [("usr/bin/other", "f", 0o755, "")], 0)], None),
    "AM301": ([("x", ["/usr/bin/env"], [("usr/bin/env", "f", 0o755, "")], 0)], None),
    "AM302": ([("x", ["/usr/bin/env/extra"], [("usr/bin/env/extra", "f", 0o644, "")], 0)], None),
    "AM303": (
        [("x", ["/opt/data/tool"], [("opt/data/tool", "f", 0o644, "")], 0)],
        FIXTURES / "broken-parent" / "runtime.tar",
    ),
    "AM304": (
        [("x", ["/opt/loop/tool"], [("opt/loop/tool", "f", 0o644, "")], 0)],
        FIXTURES / "broken-parent" / "runtime.tar",
    ),
    "AM310": (
        [
            ("a", ["/opt/tool"], TOOL, 0),
            ("b", ["/opt/tool/bin"], TOOL, 0),
        ],
        None,
    ),
    "AM311": ([("tool", ["/opt/tool"], TOOL, 0), ("tool", ["/opt/tool"], TOOL, 0)], None),
    "AM312": ([("live", ["/opt/tool"], TOOL, 0)], FIXTURES / "in-place" / "runtime.tar"),
    "AM320": ([("x", ["/var/lib/tool"], [("var/lib/tool", "f", 0o644, "")], 0)], None),
    "AM321": ([("x", ["/opt/tool/key.pem"], [("opt/tool/key.pem", "f", 0o600, "")], 0)], None),
    "AM322": ([("x", ["/opt/tool"], [*TOOL, ("opt/tool/key.pem", "f", 0o600, "")], 0)], None),
    "AM323": ([("x", ["/opt/tool"], [("opt/tool/bin/run", "f", 0o700, "#!/bin/sh\n")], 501)], None),
    "AM324": ([("x", ["/usr/local/bin/tool"], [("usr/local/bin/tool", "f", 0o644, "")], 0)], None),
    "AM330": ([("x", ["/opt/vendor/tool"], [("opt/vendor/tool", "f", 0o644, "")], 0)], None),
    "AM340": (
        [("x", ["/opt/tool"], [("opt/tool/bin/report", "f", 0o755, "#!/usr/bin/php\n")], 0)],
        None,
    ),
    "AM341": (
        [("x", ["/opt/tool"], [("opt/tool/bin/run", "f", 0o755, "#!/usr/bin/python3\r\n")], 0)],
        None,
    ),
    "AM343": (
        [("x", ["/opt/tool"], [("opt/tool/bin/run", "f", 0o755, "\ufeff#!/bin/sh\n")], 0)],
        None,
    ),
    "AM390": (
        [("x", ["/opt/vendor/tool"], [("opt/vendor/tool", "f", 0o644, "")], 0)],
        FIXTURES / "unexpected-error" / "runtime.tar",
    ),
}


def test_every_start_up_code_has_an_example_here() -> None:
    """The table covers every AM3xx code (but AM342, whose ELF example is its fixture's,
    and AM313, doctor's, whose example is the next test's)."""
    start_up = {code for code in RULES if code.startswith("AM3")}
    assert start_up - set(EXAMPLES) == {"AM313", "AM342"}


def test_the_doctor_example_is_what_doctor_reports() -> None:
    """AM313's example: tool is mounted, requests /opt/tool, and nothing is there."""
    from addon_mount import Entry, RuntimeImage
    from addon_mount._doctor import diagnose

    from .conftest import cml_entries

    mount = "/runtime-addons/custom-addon-tool"
    image = RuntimeImage.from_entries(
        [
            *cml_entries(),
            Entry(mount, "d", 0o755),
            Entry(f"{mount}/opt", "d", 0o755),
            Entry(f"{mount}/opt/tool", "d", 0o755),
        ],
        name="session",
    )
    problems = diagnose(image, {"tool": ["/opt/tool"]})["problems"]
    assert [(p["code"], p["path"], p["addon"]) for p in problems] == [
        ("AM313", "/opt/tool", "tool")
    ]
    assert '"/opt/tool" is requested by tool' in RULES["AM313"].example


@pytest.mark.parametrize("code", sorted(EXAMPLES))
def test_explain_example_is_what_a_check_reports(code: str, tmp_path: Path) -> None:
    """Checking the example gives its code, at the path the example quotes."""
    specs, runtime = EXAMPLES[code]
    bundles = [
        write_bundle(tmp_path / f"{i}-{name}", name, paths, members, uid=uid, gid=uid)
        for i, (name, paths, members, uid) in enumerate(specs)
    ]
    report = check(bundles, runtime)
    found = [f for f in report.findings if f.code == code]
    assert found, f"{code}: {[(f.code, f.message) for f in report.findings]}"
    quoted = re.findall(r'"(/[^"]*)"', RULES[code].example)
    if quoted:
        assert any(f.path and f.path.startswith(quoted[0]) for f in found), (
            code,
            quoted,
            [f.path for f in found],
        )


def test_elf_loader_example_is_its_fixture() -> None:
    """AM342's example is the broken-executable fixture's static program."""
    report = check(FIXTURES / "broken-executable")
    (finding,) = [f for f in report.findings if f.code == "AM342"]
    assert finding.path == "/opt/tool/bin/static"
    assert "/lib/ld-musl-x86_64.so.1" in RULES["AM342"].example
