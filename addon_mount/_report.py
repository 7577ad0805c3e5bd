"""The report: every finding and link of one check, and its JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._findings import RULES, Severity

JSON_SCHEMA_VERSION = 1


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

    @property
    def kind(self) -> str:
        return RULES[self.code].kind

    @property
    def title(self) -> str:
        return RULES[self.code].title

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


def _finding_order(f: Finding) -> tuple[str, str, int, str, str]:
    return (f.addon or "", f.runtime or "", f.severity.rank, f.path or "", f.code)


def _sorted_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=_finding_order))


@attrs.frozen
class Report:
    """What a check found. ``ok`` is true when no finding is an error."""

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


def status_of(findings: Iterable[Finding], *, strict: bool = False) -> str:
    """The status line word for a set of findings."""
    severities = {f.severity for f in findings}
    if Severity.ERROR in severities or (strict and Severity.WARNING in severities):
        return "FAILED"
    if Severity.WARNING in severities:
        return "PASSED with warnings"
    return "PASSED"
