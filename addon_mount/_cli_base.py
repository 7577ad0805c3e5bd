"""What every command shares: exit statuses, the one-line failure, writing a report.

The library returns a report; the commands map it to exit statuses:
0 no error findings, 1 at least one error finding, 2 the command could not run.
"""

from __future__ import annotations

import io
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Final

import click

from ._files import atomic_write
from ._render import output_style, render_json, render_sarif, render_text
from ._report import Report

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CANNOT_RUN = 2


#: --cloudera-addons, the same for check, pack and register.
cloudera_addons_option = click.option(
    "--cloudera-addons",
    default="default",
    show_default=True,
    metavar="none|default|all|NAME,...",
    help="Also check each runtime with these of Cloudera's own add-ons attached "
    "('addon-mount runtimes' lists them): 'default' is the newest Spark, the Hadoop "
    "CLI and cmladdon; 'none' checks each runtime alone only.",
)


def package_version() -> str:
    # Imported here: importlib.metadata costs a check's start-up ~9 ms it rarely needs.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("addon-mount")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


# A leading label ("fix:", "once registered:") or first column ("error   ", "ok   ").
_LABEL: Final = re.compile(r"^(\s*(?:[A-Za-z][\w ]{0,20}:\s+|[a-z]+ {2,}))")
_SEVERITY: Final = re.compile(r"^(\s*)(error|warning|info|note)(?=\s)")
_STYLE: Final = {"error": "red", "warning": "yellow", "info": "blue", "note": "blue"}


def echo_for_terminal(text: str) -> None:
    """Print *text* as is to a pipe or file; on a terminal, fitted to its width and coloured.

    A long line wraps under its text: past a leading label (``fix:``,
    ``error``) or its own indent. Severity words at a line's start take the
    check report's colours (unless ``NO_COLOR``).
    """
    color, width = output_style(sys.stdout)
    if not sys.stdout.isatty():
        click.echo(text, nl=False)
        return
    out: list[str] = []
    for raw in text.split("\n"):
        label = _LABEL.match(raw)
        hang = len(label.group(1)) if label else len(raw) - len(raw.lstrip())
        line = raw
        if len(raw) > width and hang < width // 2:
            line = textwrap.fill(
                raw,
                width,
                subsequent_indent=" " * hang,
                break_long_words=False,
                break_on_hyphens=False,
            )
        if color:
            line = _SEVERITY.sub(
                lambda m: m.group(1) + click.style(m.group(2), fg=_STYLE[m.group(2)], bold=True),
                line,
            )
        out.append(line)
    click.echo("\n".join(out), nl=False, color=color)


class CannotRun(click.ClickException):
    """The tool could not do its job: exit status 2, one clear line."""

    exit_code = EXIT_CANNOT_RUN

    def show(self, file: Any = None) -> None:
        click.echo(f"addon-mount: error: {self.format_message()}", err=True)


def emit(
    report: Report,
    output_format: str,
    output: Path | None,
    *,
    force: bool,
    strict: bool,
    color: bool | None,
) -> None:
    if output_format == "json":
        text = render_json(report)
    elif output_format == "sarif":
        text = render_sarif(report, package_version())
    else:
        # Colour and width suit where the report goes: a terminal, a pipe, a file.
        use_color, width = output_style(sys.stdout if output is None else None, color)
        buffer = io.StringIO()
        render_text(report, buffer, strict=strict, color=use_color, width=width)
        text = buffer.getvalue()
    if output is None:
        # Colour was decided while rendering; click must not strip it again.
        click.echo(text, nl=False, color=True)
        return
    try:
        atomic_write(output, text.encode("utf-8"), force=force)
    except OSError as exc:
        raise CannotRun(f"cannot write {str(output)!r}: {exc.strerror or exc}") from exc
