"""addon-mount: dry-run Cloudera AI custom runtime add-ons in memory.

The check API::

    import addon_mount

    report = addon_mount.check(["bundles/oracle-driver"], runtime="cml-workbench-python")
    if not report.ok:
        for finding in report.errors:
            print(finding)      # error AM301 collision /etc/profile.d: cannot link ...

The public names are those in ``__all__``: :func:`check` and its errors, the
:class:`Report` and what it holds, the finding vocabulary, :class:`Limits`,
and the runtimes. :mod:`addon_mount.testing` (and its pytest plugin) runs
your own code inside a simulated workload. Modules whose names start with an
underscore are internal and may change without notice.
"""

from __future__ import annotations

from ._check import BundleError, CheckError, check
from ._findings import RULES, Rule, Severity
from ._limits import DEFAULT_LIMITS, Limits
from ._report import AddonSummary, Finding, Link, Report, RuntimeSummary
from ._runtime import DEFAULT_RUNTIME, Entry, RuntimeImage, RuntimeLoadError
from ._runtime_sources import builtin_names, load_runtime

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_RUNTIME",
    "RULES",
    "AddonSummary",
    "BundleError",
    "CheckError",
    "Entry",
    "Finding",
    "Limits",
    "Link",
    "Report",
    "Rule",
    "RuntimeImage",
    "RuntimeLoadError",
    "RuntimeSummary",
    "Severity",
    "builtin_names",
    "check",
    "load_runtime",
]
