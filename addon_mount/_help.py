"""The end of every command's ``--help``: examples, then the exit statuses.

Each command passes its own to :func:`epilog`; click prints the result after
the options, line for line (the ``\\b`` markers stop click from rewrapping).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The statuses every command shares: success, and "could not run".
OK: tuple[int, str] = (0, "success")
CANNOT_RUN: tuple[int, str] = (2, "could not run: a usage error, a missing or unreadable input")


def epilog(examples: Sequence[tuple[str, str]], statuses: Sequence[tuple[int, str]]) -> str:
    """``Examples:`` (each command line with what it does) and ``Exit status:``, for click."""
    lines = ["\b", "Examples:"]
    for command, what in examples:
        lines.append(f"  $ {command}")
        lines.append(f"      {what}")
    lines += ["", "\b", "Exit status:"]
    lines += [f"  {status}  {meaning}" for status, meaning in statuses]
    return "\n".join(lines)
