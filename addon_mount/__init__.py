"""addon-mount: dry-run Cloudera AI custom runtime add-ons in memory.

The check API::

    import addon_mount

    report = addon_mount.check(["bundles/oracle-driver"], runtime="cml-workbench-python")
    if not report.ok:
        for finding in report.errors:
            print(finding.code, finding.path, finding.message)
"""

from __future__ import annotations

from ._archive import ArchiveIndex, Member, read_archive
from ._check import Bundle, BundleError, CheckError, check, read_bundle, simulate
from ._findings import KINDS, RULES, Rule, Severity
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import AddonSpec, ParsedMetadata, parse_metadata
from ._report import AddonSummary, Finding, Link, Report, RuntimeSummary
from ._runtime import (
    DEFAULT_RUNTIME,
    Entry,
    RuntimeImage,
    RuntimeLoadError,
    SnapshotError,
    builtin_names,
    load_builtin,
    load_runtime,
)
from ._workload import CDSW_GID, CDSW_UID, StagedAddon, Workload

__all__ = [
    "CDSW_GID",
    "CDSW_UID",
    "DEFAULT_LIMITS",
    "DEFAULT_RUNTIME",
    "KINDS",
    "RULES",
    "AddonSpec",
    "AddonSummary",
    "ArchiveIndex",
    "Bundle",
    "BundleError",
    "CheckError",
    "Entry",
    "Finding",
    "Limits",
    "Link",
    "Member",
    "ParsedMetadata",
    "Report",
    "Rule",
    "RuntimeImage",
    "RuntimeLoadError",
    "RuntimeSummary",
    "Severity",
    "SnapshotError",
    "StagedAddon",
    "Workload",
    "builtin_names",
    "check",
    "load_builtin",
    "load_runtime",
    "parse_metadata",
    "read_archive",
    "read_bundle",
    "simulate",
]
