"""Tests for the text report's layout and colour, and for findings as one line."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len

import addon_mount
from addon_mount import Finding, Report, Severity
from addon_mount._render import PLAIN_WIDTH, output_style, render_text, report_text

from .conftest import FIXTURES

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Three add-ons in every built-in runtime: an error, a pass and a warning, long
# runtime lists, long fixes and link targets.
BUNDLES = [FIXTURES / "broken" / "collision", FIXTURES / "docs-example"]
BUNDLES.append(FIXTURES / "broken" / "missing-parent")
TABLE_BORDERS = "┏┃┡│└├"
# Five runtimes: a column each fits 200 columns (all twelve built-ins do not).
FIVE = ["cml-conda", "cml-cuda", "cml-jupyterlab-python", "cml-r", "cml-workbench-python"]


@pytest.fixture(scope="module")
def report() -> Report:
    """The three fixture add-ons checked in the five runtimes of the current generation."""
    return addon_mount.check(BUNDLES, runtime=FIVE)


def table_lines(text: str) -> list[str]:
    """The lines of the add-on x runtime table."""
    return [line for line in text.splitlines() if line and line[0] in TABLE_BORDERS]


@pytest.mark.parametrize("width", [60, 80, 120, PLAIN_WIDTH])
def test_every_line_fits_the_width(report: Report, width: int) -> None:
    """No line is wider than the width given, and the table's rows are all one width."""
    text = report_text(report, width=width)
    assert max(cell_len(line) for line in text.splitlines()) <= width
    rows = table_lines(text)
    assert rows
    assert len({cell_len(row) for row in rows}) == 1


def test_wrapped_lines_hang_under_their_text(report: Report) -> None:
    """At 80 columns a long fix wraps with its continuation under the text after 'fix: '."""
    lines = report_text(report, width=80).splitlines()
    fix = next(i for i, line in enumerate(lines) if line.startswith("    fix: Choose a path the"))
    assert lines[fix + 1].startswith(" " * 9)
    assert lines[fix + 1][9] != " "
    message = next(i for i, line in enumerate(lines) if line.startswith("    cannot link"))
    assert lines[message + 1].startswith("    ")
    assert lines[message + 1][4] != " "
    head = next(i for i, line in enumerate(lines) if line.startswith("  error   AM301"))
    assert lines[head + 1].startswith(" " * 10)
    assert "cml-workbench-python]" in lines[head + 1]


def test_wide_table_when_it_fits_one_row_per_pair_when_not(report: Report) -> None:
    """The table has a column per runtime at 200 columns, a row per add-on and runtime at 80."""
    wide = table_lines(report_text(report, width=PLAIN_WIDTH))
    assert "cml-jupyterlab-python" in wide[1]
    assert "cml-workbench-python" in wide[1]
    assert len(wide) == 3 + len(report.addons) + 1  # top, header, rule, rows, bottom
    narrow = table_lines(report_text(report, width=80))
    assert narrow[1].split() == ["┃", "add-on", "┃", "runtime", "┃", "result", "┃"]
    pairs = [line for line in narrow if re.search(r"│ (fail|warn|pass) \dE \dW │", line)]
    assert len(pairs) == len(report.addons) * len(report.runtimes)
    assert not any("…" in line for line in narrow)


def test_report_is_the_same_text_at_any_width(report: Report) -> None:
    """Wrapping only moves words: the report's words are the same at 80 and 200 columns."""

    def words(text: str) -> list[str]:
        prose = [line for line in text.splitlines() if not line or line[0] not in TABLE_BORDERS]
        return " ".join(prose).split()

    assert words(report_text(report, width=80)) == words(report_text(report, width=PLAIN_WIDTH))


def test_colour_is_ansi_when_asked_and_plain_otherwise(report: Report) -> None:
    """color=True styles severities and statuses; color=False writes no escape at all."""
    coloured = io.StringIO()
    render_text(report, coloured, color=True, width=100)
    assert "\x1b[1;31mFAILED\x1b[0m" in coloured.getvalue()
    assert ANSI.sub("", coloured.getvalue()) == report_text(report, width=100)
    plain = io.StringIO()
    render_text(report, plain, color=False, width=100)
    assert "\x1b" not in plain.getvalue()


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (its size comes from COLUMNS)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "stream", "color", "expected"),
    [
        ({}, FakeTerminal(), None, (True, 93)),
        ({"NO_COLOR": "1"}, FakeTerminal(), None, (False, 93)),
        ({"NO_COLOR": ""}, FakeTerminal(), None, (True, 93)),  # empty: not set, per no-color.org
        ({"TERM": "dumb"}, FakeTerminal(), None, (False, 93)),
        ({"NO_COLOR": "1"}, FakeTerminal(), True, (True, 93)),
        ({}, FakeTerminal(), False, (False, 93)),
        ({}, io.StringIO(), None, (False, 93)),
        ({}, None, None, (False, 93)),
        ({"COLUMNS": ""}, None, True, (True, PLAIN_WIDTH)),
        ({"COLUMNS": "10"}, None, None, (False, 40)),  # never narrower than 40
    ],
)
def test_output_style_follows_the_stream_and_environment(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    stream: io.StringIO | None,
    color: bool | None,
    expected: tuple[bool, int],
) -> None:
    """Colour on a terminal unless NO_COLOR or TERM=dumb; flags win; COLUMNS sets the width."""
    for name in ("NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "93")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert output_style(stream, color) == expected


# -- findings as one line, in order ----------------------------------------------------------


def test_finding_str_is_one_line_like_the_report(report: Report) -> None:
    """str(finding) is severity, code, kind, path and message, then add-on and runtime."""
    finding = report.errors[0]
    assert str(finding) == (
        "error AM301 collision /etc/profile.d: cannot link /etc/profile.d: the runtime already "
        "has a directory (owner uid 8536, mode 755) there [add-on profile, runtime cml-conda]"
    )
    bare = Finding("AM100", "bundle has no metadata.json")
    assert str(bare) == "error AM100 invalid-bundle: bundle has no metadata.json"


def test_finding_str_escapes_terminal_controls() -> None:
    """A member name with control characters cannot drive the terminal through str()."""
    finding = Finding("AM300", "no member 'opt/\x1b[2Jx'", addon="a", path="/opt/\x1b[2Jx")
    assert "\x1b" not in str(finding)
    assert "\n" not in str(Finding("AM300", "two\nlines"))


def test_findings_come_errors_then_warnings_then_notes() -> None:
    """Whatever the add-on, runtime or path, errors come first, then warnings, then notes."""
    findings = [
        Finding("AM230", "unused", addon="a", path="/a"),
        Finding("AM330", "missing parent", addon="a", runtime="r", path="/a/b"),
        Finding("AM301", "collision", addon="z", runtime="r", path="/z"),
        Finding("AM112", "unknown field", addon="b"),
        Finding("AM300", "missing", addon="b", runtime="r", path="/b"),
    ]
    report = Report((), (), (), findings)
    assert [f.severity for f in report.findings] == [
        Severity.ERROR,
        Severity.ERROR,
        Severity.WARNING,
        Severity.WARNING,
        Severity.INFO,
    ]
    assert [f.code for f in report.findings] == ["AM300", "AM301", "AM330", "AM112", "AM230"]


def test_counts_are_what_is_listed(report: Report) -> None:
    """Status lines and the summary count the findings listed, each once for all its runtimes."""
    text = report_text(report, width=PLAIN_WIDTH)
    listed = re.findall(r"^  (error|warning|info) +AM\d{3}", text, re.MULTILINE)
    statuses = re.findall(r"\((\d+) errors?(?:, (\d+) warnings?)?", text)
    summary = re.search(r"Summary: .*; (\d+) errors?, (\d+) warnings?", text)
    assert summary is not None
    assert int(summary.group(1)) == listed.count("error") == sum(int(e) for e, _ in statuses)
    assert int(summary.group(2)) == listed.count("warning")
    # Each finding holds in several runtimes here, so the per-runtime list is longer.
    assert len(report.errors) > listed.count("error")
