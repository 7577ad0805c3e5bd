"""Report renderers: text for people, JSON for scripts, SARIF for CI annotations."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:  # rich is imported when text is rendered: JSON and SARIF do without it
    from rich.console import Console
    from rich.table import Table

from ._findings import RULES, Severity
from ._report import Finding, Report, status_of

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}
_STATUS_STYLES = {
    "FAILED": "bold red",
    "PASSED with warnings": "bold yellow",
    "PASSED": "bold green",
}


# Member names that are not UTF-8 reach the report as lone surrogates (tarfile's
# surrogateescape), which no UTF-8 output can hold; control and bidi characters in
# names would drive the reader's terminal. Each is shown as an escape instead.
_UNENCODABLE: Final = re.compile("[\ud800-\udfff]")
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # the byte surrogateescape stands for
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, pattern: re.Pattern[str] = _UNPRINTABLE) -> str:
    """*text* with unwritable or terminal-controlling characters shown as escapes."""
    return pattern.sub(_escape, text) if pattern.search(text) else text


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value, _UNENCODABLE)
    if isinstance(value, dict):
        return {printable(k, _UNENCODABLE): _clean_json(v) for k, v in value.items()}
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


def render_text(
    report: Report, out: IO[str], *, strict: bool = False, color: bool | None = None
) -> None:
    """Write the report for people: a status line per add-on, findings, then the plan.

    Colour follows rich's detection (a terminal, ``NO_COLOR`` unset) unless
    *color* forces it on or off.
    """
    report = _clean(report)
    from rich.console import Console  # noqa: PLC0415 - see the imports above
    from rich.text import Text  # noqa: PLC0415

    console = Console(
        file=out,
        no_color=None if color is None else not color,
        force_terminal=True if color else None,
        highlight=False,
        soft_wrap=True,
        color_system={True: "standard", False: None, None: "auto"}[color],
    )
    if not console.is_terminal:
        # Piped or written to a file: no terminal width to honour, so tables keep
        # their full names instead of being cut to 80 columns.
        console.width = 200
    runtimes = [r.name for r in report.runtimes]
    shown_runtimes = ", ".join(runtimes) or "none"
    console.print(
        Text.assemble(
            ("addon-mount", "bold"),
            f": {len(report.addons)} add-on{'s' if len(report.addons) != 1 else ''} in "
            f"{len(runtimes)} runtime{'s' if len(runtimes) != 1 else ''} ({shown_runtimes})",
        )
    )
    console.print()
    for addon in report.addons:
        findings = report.findings_for(addon.name)
        status = status_of(findings, strict=strict)
        counts = _counts(findings)
        line = Text.assemble(
            (f"{addon.name}", "bold"),
            (f" ({addon.registered_name})" if addon.registered_name else "", "dim"),
            ": ",
            (status, _STATUS_STYLES[status]),
            (f" ({counts})" if counts else "", ""),
        )
        console.print(line)
        for finding, where in _grouped(findings):
            _print_finding(console, finding, where if len(runtimes) > 1 else [])
        console.print()
    if len(runtimes) > 1 and report.addons:
        console.print(_matrix(report, strict=strict))
        console.print()
    _print_plan(console, report)
    passed = sum(
        1
        for a in report.addons
        if status_of(report.findings_for(a.name), strict=strict) != "FAILED"
    )
    failed = len(report.addons) - passed
    console.print(
        Text.assemble(
            ("Summary: ", "bold"),
            (f"{passed} passed", "green" if passed else ""),
            ", ",
            (f"{failed} failed", "red" if failed else ""),
            f"; {_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')}",
        )
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counts(findings: Iterable[Finding]) -> str:
    parts = []
    findings = list(findings)
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
    groups: dict[tuple[str, str | None, str], tuple[Finding, list[str]]] = {}
    for finding in findings:
        key = (finding.code, finding.path, finding.message)
        if key in groups:
            groups[key][1].append(finding.runtime or "")
        else:
            groups[key] = (finding, [finding.runtime] if finding.runtime else [])
    return list(groups.values())


def _print_finding(console: Console, finding: Finding, runtimes: list[str]) -> None:
    from rich.text import Text  # noqa: PLC0415 - rich is imported only for text

    head = Text("  ")
    head.append(f"{finding.severity.value:<7}", _STYLES[finding.severity])
    head.append(f" {finding.code} ", "bold")
    head.append(f"{finding.kind}", "dim")
    if finding.path:
        head.append(f"  {finding.path}")
    if runtimes:
        head.append(f"  [{', '.join(runtimes)}]", "magenta")
    console.print(head)
    console.print(Text("    " + finding.message))
    console.print(Text.assemble(("    fix: ", "bold"), finding.hint))


def _matrix(report: Report, *, strict: bool) -> Table:
    from rich.table import Table  # noqa: PLC0415 - rich is imported only for text
    from rich.text import Text  # noqa: PLC0415

    table = Table(title="Add-on x runtime", title_justify="left", show_lines=False)
    table.add_column("add-on", style="bold")
    for runtime in report.runtimes:
        table.add_column(runtime.name)
    for addon in report.addons:
        row: list[Text | str] = [addon.name]
        for runtime in report.runtimes:
            findings = report.findings_for(addon.name, runtime.name)
            status = status_of(findings, strict=strict)
            errors = sum(1 for f in findings if f.severity is Severity.ERROR)
            warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
            word = {"FAILED": "fail", "PASSED with warnings": "warn", "PASSED": "pass"}[status]
            row.append(Text(f"{word} {errors}E {warnings}W", _STATUS_STYLES[status]))
        table.add_row(*row)
    return table


def _print_plan(console: Console, report: Report) -> None:
    from rich.text import Text  # noqa: PLC0415 - rich is imported only for text

    if not report.links:
        console.print(Text("Plan: no links would be created.", "bold"))
        console.print()
        return
    by_runtime: dict[str, list[str]] = {}
    failed = {(f.addon, f.runtime, f.path) for f in report.findings if f.severity is Severity.ERROR}
    for link in report.links:
        broken = (link.addon, link.runtime, link.path) in failed
        mark = "!" if broken else "+"
        suffix = "   (broken, see above)" if broken else ""
        by_runtime.setdefault(link.runtime, []).append(
            f"  {mark} {link.path} -> {link.target}{suffix}"
        )
    # Runtimes with the same plan share one listing: twenty runtimes, one plan.
    plans: dict[tuple[str, ...], list[str]] = {}
    for runtime in (r.name for r in report.runtimes):
        plans.setdefault(tuple(by_runtime.get(runtime, [])), []).append(runtime)
    for lines, runtimes in plans.items():
        where = ", ".join(runtimes)
        if not lines:
            console.print(Text(f"Plan: no links would be created in {where}.", "bold"))
            console.print()
            continue
        console.print(Text(f"Plan: links created at start-up in {where}", "bold"))
        for line in lines:
            style = "red" if line.startswith("  !") else "green"
            console.print(Text(line, style))
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
