"""The library's structured logger.

The library configures nothing: the application (the CLI, a test suite)
chooses rendering with ``structlog.configure``. Until it does, events are
dropped, so importing addon-mount never prints to a host program's stdout.
"""

from __future__ import annotations

from typing import Any

import structlog


class _Quiet:
    """A logger that drops every event (structlog's default would print to stdout)."""

    def bind(self, **_: Any) -> _Quiet:
        return self

    def _drop(self, *_: Any, **__: Any) -> None:
        return None

    debug = info = warning = error = critical = exception = _drop


_QUIET = _Quiet()


def get_logger() -> Any:
    """The ``addon_mount`` logger if the application configured structlog, else a no-op."""
    if structlog.is_configured():
        return structlog.get_logger("addon_mount")
    return _QUIET
