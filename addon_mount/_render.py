"""Report renderers: text for people, JSON for scripts, SARIF for CI annotations."""

from __future__ import annotations

import enum
import importlib
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:  # rich is imported when text is rendered: JSON and SARIF do without it
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

from ._findings import RULES, Severity
from ._report import UNENCODABLE, Finding, Report, Status, printable, status_of

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}
_STATUS_STYLES = {
    Status.FAILED: "bold red",
    Status.WARNED: "bold yellow",
    Status.PASSED: "bold green",
}


def make_console(**options: Any) -> Console:
    """A rich Console whose reader going away (``| head``) raises BrokenPipeError.

    rich's own answer is ``SystemExit(1)``; the CLI treats a closed pipe as a
    reader that has seen enough, and exits 0 as ``git log | head`` does.
    """
    from rich.console import Console  # noqa: PLC0415 - see the imports above

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(**options)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value, UNENCODABLE)
    if isinstance(value, dict):
        return {printable(k, UNENCODABLE): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return attrs.evolve(value, **{f.name: _clean(getattr(value, f.name)) for f in fields})
    return value


def render_json(report: Report) -> str:
    """The report as JSON (schema 1, see the README)."""
    return json.dumps(_clean_json(report.to_json()), indent=2, ensure_ascii=False) + "\n"


#: Columns of text written where no terminal says how wide it is (a pipe, a
#: file), unless COLUMNS does: wide enough that tables keep their full names.
PLAIN_WIDTH: Final = 200
#: The narrowest a report is laid out for; a narrower terminal wraps it.
MIN_WIDTH: Final = 40
#: The width of a terminal that does not tell its size.
TERMINAL_WIDTH: Final = 80


def output_style(stream: IO[str] | None, color: bool | None = None) -> tuple[bool, int]:
    """Colour and width for a text report written to *stream* (``None``: a file).

    Colour: *color* when given; otherwise on when *stream* is a terminal,
    unless ``NO_COLOR`` is set (to anything but the empty string) or ``TERM``
    is ``dumb``. Width: ``COLUMNS`` when set; otherwise the terminal's (80
    if it does not say), or :data:`PLAIN_WIDTH` for a pipe or a file; never
    under :data:`MIN_WIDTH`.
    """
    is_terminal = False
    width = PLAIN_WIDTH
    if stream is not None:
        try:
            is_terminal = stream.isatty()
        except ValueError:  # closed
            is_terminal = False
    if is_terminal and stream is not None:
        try:
            width = os.get_terminal_size(stream.fileno()).columns or TERMINAL_WIDTH
        except (OSError, ValueError):  # a terminal-like stream without a descriptor
            width = TERMINAL_WIDTH
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    if color is None:
        color = (
            is_terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"
        )
    return color, max(width, MIN_WIDTH)


def import_rich() -> None:
    """Import what rendering text needs, now.

    The test harness calls it before a workload starts: pyfakefs drops the
    modules first imported while it patches, which would leave rich's
    classes split between two copies of its modules.
    """
    for name in ("rich.console", "rich.table", "rich.text"):
        importlib.import_module(name)


def report_text(report: Report, *, strict: bool = False, width: int = PLAIN_WIDTH) -> str:
    """The text report as a string, without colour, laid out for *width* columns."""
    buffer = io.StringIO()
    render_text(report, buffer, strict=strict, color=False, width=width)
    return buffer.getvalue()


def render_text(
    report: Report,
    out: IO[str],
    *,
    strict: bool = False,
    color: bool | None = None,
    width: int | None = None,
) -> None:
    """Write the report for people: a status line per add-on, findings, then the plan.

    *color* and *width* default to what suits *out* (see :func:`output_style`).
    Lines longer than *width* wrap, their continuation indented under the
    text they continue; the add-on x runtime table becomes one row per pair
    when its columns do not fit.
    """
    report = _clean(report)
    from rich.text import Text  # noqa: PLC0415 - see the imports above

    detected_color, detected_width = output_style(out, color)
    console = make_console(
        file=out,
        width=max(width or detected_width, MIN_WIDTH),
        force_terminal=detected_color,
        no_color=not detected_color,
        color_system="standard" if detected_color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )
    runtimes = [r.name for r in report.runtimes]
    shown_runtimes = ", ".join(runtimes) or "none"
    _wrapped(
        console,
        Text.assemble(("addon-mount", "bold"), ": "),
        Text(
            f"{_plural(len(report.addons), 'add-on')} in "
            f"{_plural(len(runtimes), 'runtime')} ({shown_runtimes})"
        ),
    )
    console.print()
    for addon in report.addons:
        findings = report.findings_for(addon.name)
        status = status_of(findings, strict=strict)
        counts = _counts(findings)
        _wrapped(
            console,
            Text(""),
            Text.assemble(
                (f"{addon.name}", "bold"),
                (f" ({addon.registered_name})" if addon.registered_name else "", "dim"),
                ": ",
                (status, _STATUS_STYLES[status]),
                (f" ({counts})" if counts else "", ""),
            ),
            indent=2,
        )
        for finding, where in _grouped(findings):
            _print_finding(console, finding, where if len(runtimes) > 1 else [])
        console.print()
    if len(runtimes) > 1 and report.addons:
        console.print(Text("Add-on x runtime", "italic"))
        console.print(_matrix(console, report, strict=strict))
        console.print()
    _print_plan(console, report)
    passed = sum(
        1
        for a in report.addons
        if status_of(report.findings_for(a.name), strict=strict) is not Status.FAILED
    )
    failed = len(report.addons) - passed
    listed = _listed(report.findings)
    errors = sum(1 for f in listed if f.severity is Severity.ERROR)
    warnings = sum(1 for f in listed if f.severity is Severity.WARNING)
    _wrapped(
        console,
        Text("Summary: ", "bold"),
        Text.assemble(
            (f"{passed} passed", "green" if passed else ""),
            ", ",
            (f"{failed} failed", "red" if failed else ""),
            f"; {_plural(errors, 'error')}, {_plural(warnings, 'warning')}",
        ),
    )


def _wrapped(console: Console, lead: Text, body: Text, *, indent: int | None = None) -> None:
    """Print *lead* then *body*, wrapped at the console's width under *body*'s first column.

    Continuation lines are indented by *lead*'s width (or *indent*); a word
    longer than a line (a long path) is folded.
    """
    from rich.text import Text  # noqa: PLC0415 - rich is imported only for text

    hang = lead.cell_len if indent is None else indent
    lines = body.wrap(console, max(console.width - hang, MIN_WIDTH // 2), overflow="fold")
    for i, line in enumerate(lines):
        line.rstrip()
        console.print(Text.assemble(lead if i == 0 else " " * hang, line), soft_wrap=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _listed(findings: Iterable[Finding]) -> list[Finding]:
    """The findings as the report lists them: one for each problem, whatever its runtimes."""
    return [finding for finding, _ in _grouped(findings)]


def _counts(findings: Iterable[Finding]) -> str:
    # Counted as listed, so the numbers in the status line are the findings below it.
    parts = []
    findings = _listed(findings)
    for severity, word in (
        (Severity.ERROR, "error"),
        (Severity.WARNING, "warning"),
        (Severity.INFO, "note"),
    ):
        n = sum(1 for f in findings if f.severity is severity)
        if n:
            parts.append(_plural(n, word))
    return ", ".join(parts)


def _grouped(findings: Iterable[Finding]) -> list[tuple[Finding, list[str]]]:
    """The same finding in several runtimes, shown once with the runtimes it holds in."""
    groups: dict[tuple[str | None, str, str | None, str], tuple[Finding, list[str]]] = {}
    for finding in findings:
        key = (finding.addon, finding.code, finding.path, finding.message)
        if key in groups:
            groups[key][1].append(finding.runtime or "")
        else:
            groups[key] = (finding, [finding.runtime] if finding.runtime else [])
    return list(groups.values())


def _print_finding(console: Console, finding: Finding, runtimes: list[str]) -> None:
    from rich.text import Text  # noqa: PLC0415 - rich is imported only for text

    lead = Text("  ")
    lead.append(f"{finding.severity.value:<7}", _STYLES[finding.severity])
    lead.append(" ")
    head = Text()
    head.append(f"{finding.code} ", "bold")
    head.append(f"{finding.kind}", "dim")
    if finding.path:
        head.append(f"  {finding.path}")
    if runtimes:
        head.append(f"  [{', '.join(runtimes)}]", "magenta")
    _wrapped(console, lead, head)
    _wrapped(console, Text("    "), Text(finding.message))
    _wrapped(console, Text("    fix: ", "bold"), Text(finding.hint))


def _matrix(console: Console, report: Report, *, strict: bool) -> Table | Group:
    """The add-on x runtime table; one row per add-on and runtime when that is too wide,
    and a table per add-on when even that would break a name."""
    from rich.table import Table  # noqa: PLC0415 - rich is imported only for text
    from rich.text import Text  # noqa: PLC0415

    def cell(addon: str, runtime: str) -> Text:
        findings = report.findings_for(addon, runtime)
        status = status_of(findings, strict=strict)
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
        word = status.word
        return Text(f"{word} {errors}E {warnings}W", _STATUS_STYLES[status])

    wide = Table()
    wide.add_column(Text("add-on"), style="bold")
    for runtime in report.runtimes:
        wide.add_column(Text(runtime.name))
    for addon in report.addons:
        wide.add_row(Text(addon.name), *(cell(addon.name, r.name) for r in report.runtimes))
    unbounded = console.options.update_width(sys.maxsize)
    if console.measure(wide, options=unbounded).maximum <= console.width:
        return wide
    long = Table()
    long.add_column(Text("add-on"), style="bold", no_wrap=True)
    long.add_column(Text("runtime"), no_wrap=True)
    long.add_column(Text("result"), no_wrap=True)
    for i, addon in enumerate(report.addons):
        if i:
            long.add_section()
        for j, runtime in enumerate(report.runtimes):
            long.add_row(
                Text(addon.name if j == 0 else ""),
                Text(runtime.name),
                cell(addon.name, runtime.name),
            )
    if console.measure(long, options=unbounded).maximum <= console.width:
        return long
    # Names too long to sit side by side: a table per add-on, its name above it,
    # so that no name is broken in two (they are copied into commands).
    from rich.console import Group  # noqa: PLC0415

    blocks = []
    for addon in report.addons:
        block = Table(title=Text(addon.name, "bold"), title_justify="left")
        block.add_column(Text("runtime"), overflow="fold")
        block.add_column(Text("result"), no_wrap=True)
        for runtime in report.runtimes:
            block.add_row(Text(runtime.name), cell(addon.name, runtime.name))
        blocks.append(block)
    return Group(*blocks)


def _print_plan(console: Console, report: Report) -> None:
    from rich.text import Text  # noqa: PLC0415 - rich is imported only for text

    if not report.links:
        console.print(Text("Plan: no links would be created.", "bold"))
        console.print()
        return
    by_runtime: dict[str, list[tuple[bool, str]]] = {}
    failed = {(f.addon, f.runtime, f.path) for f in report.findings if f.severity is Severity.ERROR}
    for link in report.links:
        broken = (link.addon, link.runtime, link.path) in failed
        suffix = "   (broken, see above)" if broken else ""
        by_runtime.setdefault(link.runtime, []).append(
            (broken, f"{link.path} -> {link.target}{suffix}")
        )
    # Runtimes with the same plan share one listing: twenty runtimes, one plan.
    plans: dict[tuple[tuple[bool, str], ...], list[str]] = {}
    for runtime in (r.name for r in report.runtimes):
        plans.setdefault(tuple(by_runtime.get(runtime, [])), []).append(runtime)
    for lines, runtimes in plans.items():
        where = ", ".join(runtimes)
        if not lines:
            _wrapped(
                console,
                Text("Plan: ", "bold"),
                Text(f"no links would be created in {where}.", "bold"),
            )
            console.print()
            continue
        _wrapped(
            console, Text("Plan: ", "bold"), Text(f"links created at start-up in {where}", "bold")
        )
        for broken, line in lines:
            style = "red" if broken else "green"
            _wrapped(console, Text(f"  {'!' if broken else '+'} ", style), Text(line, style))
        console.print()


# -- SARIF -------------------------------------------------------------------------

_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _artifact_location(source: str) -> dict[str, str]:
    path = Path(source)
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return {"uri": path.resolve().as_uri()}
    # A relative reference names the base it is relative to (SARIF 2.1.0, 3.4.4).
    return {"uri": relative, "uriBaseId": "SRCROOT"}


def _line_of(source: str, path: str | None, cache: dict[str, list[str]]) -> int | None:
    """The line of metadata.json that names *path*, for an annotation on that line."""
    if path is None or not source.endswith(".json"):
        return None
    if source not in cache:
        try:
            cache[source] = Path(source).read_text("utf-8", "replace").splitlines()
        except OSError:
            cache[source] = []
    needle = json.dumps(path)
    for number, line in enumerate(cache[source], start=1):
        if needle in line:
            return number
    return None


def render_sarif(report: Report, version: str) -> str:
    """The report as SARIF 2.1.0: one run, a rule per code, a result per finding."""
    codes = sorted(RULES)
    rules = [
        {
            "id": code,
            "name": "".join(w.capitalize() for w in RULES[code].kind.split("-")) + code[2:],
            "shortDescription": {"text": RULES[code].title},
            "fullDescription": {"text": f"{RULES[code].title}. Example: {RULES[code].example}"},
            "help": {"text": RULES[code].hint},
            "defaultConfiguration": {"level": _SARIF_LEVELS[RULES[code].severity]},
            "properties": {"kind": RULES[code].kind},
        }
        for code in codes
    ]
    cache: dict[str, list[str]] = {}
    addons = {a.name: a for a in report.addons}
    results = []
    for finding in report.findings:
        source = finding.source
        addon = addons.get(finding.addon or "")
        if source is None and addon is not None:
            source = addon.metadata_file or addon.archive_file or addon.bundle
        text = finding.message
        if finding.path and finding.path not in text:
            # Archive findings name the member ('opt/x'); annotations need the workload path.
            text += f" (workload path {finding.path})"
        if finding.runtime:
            text += f" (runtime {finding.runtime})"
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": codes.index(finding.code),
            "level": _SARIF_LEVELS[finding.severity],
            "message": {"text": f"{text}. Fix: {finding.hint}"},
            "properties": {
                "kind": finding.kind,
                "addon": finding.addon,
                "runtime": finding.runtime,
                "path": finding.path,
            },
        }
        if source is not None:
            location: dict[str, Any] = {"artifactLocation": _artifact_location(source)}
            line = _line_of(source, finding.path, cache)
            if line is not None:
                location["region"] = {"startLine": line}
            entry: dict[str, Any] = {"physicalLocation": location}
            if finding.path:
                entry["logicalLocations"] = [
                    {"name": finding.path, "fullyQualifiedName": finding.path, "kind": "resource"}
                ]
            result["locations"] = [entry]
        results.append(result)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "addon-mount",
                        "version": version,
                        "semanticVersion": version,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": Path.cwd().resolve().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(_clean_json(sarif), indent=2, ensure_ascii=False) + "\n"
