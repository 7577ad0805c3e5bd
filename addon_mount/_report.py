"""The report: every finding and link of one check, and its JSON form."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any, Final

import attrs

from ._findings import RULES, Severity

JSON_SCHEMA_VERSION = 1


# Member names that are not UTF-8 reach the report as lone surrogates (tarfile's
# surrogateescape), which no UTF-8 output can hold; control and bidi characters in
# names would drive the reader's terminal. Each is shown as an escape instead.
UNENCODABLE: Final = re.compile("[\ud800-\udfff]")
UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # the byte surrogateescape stands for
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, pattern: re.Pattern[str] = UNPRINTABLE) -> str:
    """*text* with unwritable or terminal-controlling characters shown as escapes."""
    return pattern.sub(_escape, text) if pattern.search(text) else text


@attrs.frozen
class Finding:
    """One problem found, with the data that explains it and its fix.

    ``addon`` is the add-on's name (or the bundle directory's name where the
    metadata gave none); ``runtime`` is set for findings of the simulated
    start-up, which depend on the runtime. ``source`` is the input file the
    finding is about (metadata.json or the archive), for SARIF locations.
    """

    code: str
    message: str
    addon: str | None = None
    runtime: str | None = None
    path: str | None = None
    hint: str = attrs.field(
        default=attrs.Factory(lambda self: RULES[self.code].hint, takes_self=True)
    )
    severity: Severity = attrs.field(
        default=attrs.Factory(lambda self: RULES[self.code].severity, takes_self=True)
    )
    source: str | None = None
    #: Every path of a finding that stands for several (``path`` is the first).
    paths: tuple[str, ...] = ()
    #: What findings of one code share when they have one cause (an interpreter's
    #: name): :func:`aggregate` keeps different causes apart.
    cause: str | None = attrs.field(default=None, kw_only=True, repr=False)

    @property
    def count(self) -> int:
        """How many places this finding stands for (1 unless aggregated)."""
        return max(1, len(self.paths))

    @property
    def kind(self) -> str:
        return RULES[self.code].kind

    @property
    def title(self) -> str:
        return RULES[self.code].title

    def __str__(self) -> str:
        """One line, as the text report heads it: ``error AM301 collision /etc/x: <message>``."""

        where = f" {self.path}" if self.path else ""
        about = ", ".join(
            part
            for part in (
                f"add-on {self.addon}" if self.addon else "",
                f"runtime {self.runtime}" if self.runtime else "",
            )
            if part
        )
        tail = f" [{about}]" if about else ""
        return printable(
            f"{self.severity.value} {self.code} {self.kind}{where}: {self.message}{tail}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "severity": str(self.severity),
            "addon": self.addon,
            "runtime": self.runtime,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "source": self.source,
            "count": self.count,
            "paths": list(self.paths) if self.paths else ([self.path] if self.path else []),
        }


@attrs.frozen
class Link:
    """A symlink the simulated start-up created: ``path`` -> ``target``."""

    path: str
    target: str
    addon: str
    runtime: str

    def to_json(self) -> dict[str, str]:
        return {
            "path": self.path,
            "target": self.target,
            "addon": self.addon,
            "runtime": self.runtime,
        }


@attrs.frozen
class AddonSummary:
    """An add-on as checked: its name, registered name, requested paths and inputs."""

    name: str
    registered_name: str | None
    paths: tuple[str, ...]
    bundle: str
    metadata_file: str | None = None
    archive_file: str | None = None
    members: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "registered_name": self.registered_name,
            "paths": list(self.paths),
            "bundle": self.bundle,
            "metadata_file": self.metadata_file,
            "archive_file": self.archive_file,
            "members": self.members,
        }


@attrs.frozen
class RuntimeSummary:
    """A runtime the add-ons were checked in."""

    name: str
    description: str
    entries: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "entries": self.entries}


def _finding_order(f: Finding) -> tuple[int, str, str, str, str]:
    # Errors first, then warnings, then notes; within each, by add-on, runtime, path, code.
    return (f.severity.rank, f.addon or "", f.runtime or "", f.path or "", f.code)


def _sorted_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=_finding_order))


@attrs.frozen
class Report:
    """What a check found. ``ok`` is true when no finding is an error.

    ``findings`` come errors first, then warnings, then notes (info); within
    a severity, by add-on, runtime, path and code.
    """

    addons: tuple[AddonSummary, ...]
    runtimes: tuple[RuntimeSummary, ...]
    links: tuple[Link, ...]
    findings: tuple[Finding, ...] = attrs.field(converter=_sorted_findings)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def findings_for(self, addon: str, runtime: str | None = None) -> tuple[Finding, ...]:
        """The findings about *addon* (and, if given, in *runtime* or in no runtime)."""
        return tuple(
            f
            for f in self.findings
            if f.addon == addon and (runtime is None or f.runtime in (None, runtime))
        )

    def status(self, addon: str, runtime: str | None = None, *, strict: bool = False) -> str:
        """``FAILED``, ``PASSED with warnings`` or ``PASSED`` for *addon*."""
        return status_of(self.findings_for(addon, runtime), strict=strict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": JSON_SCHEMA_VERSION,
            "ok": self.ok,
            "addons": [a.to_json() for a in self.addons],
            "runtimes": [r.to_json() for r in self.runtimes],
            "links": [link.to_json() for link in self.links],
            "findings": [f.to_json() for f in self.findings],
        }


class Status(enum.StrEnum):
    """An add-on's verdict, as its status line says it."""

    FAILED = "FAILED"
    WARNED = "PASSED with warnings"
    PASSED = "PASSED"

    @property
    def word(self) -> str:
        """The short word the add-on x runtime table shows."""
        return {"FAILED": "fail", "PASSED with warnings": "warn", "PASSED": "pass"}[self.value]


def status_of(findings: Iterable[Finding], *, strict: bool = False) -> Status:
    """The verdict for a set of findings (with *strict*, a warning fails)."""
    severities = {f.severity for f in findings}
    if Severity.ERROR in severities or (strict and Severity.WARNING in severities):
        return Status.FAILED
    if Severity.WARNING in severities:
        return Status.WARNED
    return Status.PASSED


#: Examples named in the message of an aggregated finding; JSON lists every path.
EXAMPLES_SHOWN = 3


def aggregate(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per add-on, runtime, code and input for the per-member codes.

    Codes whose rule says ``per_member`` (an archive member, a file below a
    link) can come by the thousand for one cause; each group becomes one
    finding whose message is the first one's, with the count and the next
    examples, and whose ``paths`` holds them all. Order is kept.
    """
    groups: dict[tuple[object, ...], list[Finding]] = {}
    order: list[tuple[object, ...] | Finding] = []
    for finding in findings:
        if not RULES[finding.code].per_member:
            order.append(finding)
            continue
        key = (
            finding.code,
            finding.addon,
            finding.runtime,
            finding.source,
            finding.severity,
            finding.cause,
        )
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(finding)
    result: list[Finding] = []
    for item in order:
        if isinstance(item, Finding):
            result.append(item)
            continue
        group = groups[item]
        first = group[0]
        if len(group) == 1:
            result.append(first)
            continue
        paths = tuple(f.path for f in group if f.path)
        more = len(group) - 1
        examples = ", ".join(repr(p) for p in paths[1 : 1 + EXAMPLES_SHOWN])
        rest = more - min(more, EXAMPLES_SHOWN)
        message = (
            f"{first.message}; and {more:,} more like it"
            + (f": {examples}" if examples else "")
            + (f" and {rest:,} more" if rest and examples else "")
        )
        result.append(attrs.evolve(first, message=message, paths=paths))
    return result
