"""The library's structured logger.

The library configures nothing: the application (the CLI, a test suite)
chooses rendering with ``structlog.configure``. Until it does, events are
dropped, so importing addon-mount never prints to a host program's stdout.

An application may instead set a threshold with :func:`set_threshold`: events
below it cost nothing, and structlog is imported and configured only when the
first event at or above it is emitted (the CLI does this, since importing
structlog costs more than a small check).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50, "exception": 40}


class _Quiet:
    """A logger that drops every event (structlog's default would print to stdout)."""

    def bind(self, **_: Any) -> _Quiet:
        return self

    def _drop(self, *_: Any, **__: Any) -> None:
        return None

    debug = info = warning = error = critical = exception = _drop


class _Threshold:
    """Forwards events at or above a level to structlog, configuring it on first use."""

    def __init__(
        self, level: int, configure: Callable[[], None], context: dict[str, Any] | None = None
    ) -> None:
        self.level = level
        self.configure = configure
        self.context = context or {}

    def bind(self, **context: Any) -> _Threshold:
        return _Threshold(self.level, self.configure, {**self.context, **context})

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method not in LEVELS:
            raise AttributeError(method)
        if LEVELS[method] < self.level:
            return _QUIET._drop

        def emit(event: str, **fields: Any) -> None:
            import structlog  # noqa: PLC0415 - imported only when an event is kept

            if not structlog.is_configured():
                self.configure()
            getattr(structlog.get_logger("addon_mount"), method)(event, **self.context, **fields)

        return emit


_QUIET = _Quiet()
_threshold: _Threshold | None = None


def set_threshold(level: int | None, configure: Callable[[], None] | None = None) -> None:
    """Keep events at or above *level*, configuring structlog with *configure* first.

    ``set_threshold(None)`` goes back to the default (structlog's own configuration).
    """
    global _threshold  # noqa: PLW0603 - one switch for the whole process, like structlog's
    _threshold = None if level is None or configure is None else _Threshold(level, configure)


def get_logger() -> Any:
    """A logger for the library's events (see the module docstring for where they go)."""
    if _threshold is not None:
        return _threshold
    structlog = sys.modules.get("structlog")
    if structlog is not None and structlog.is_configured():
        return structlog.get_logger("addon_mount")
    return _QUIET
