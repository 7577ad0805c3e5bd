"""What every command shares: exit statuses, the one-line failure, writing a report.

The library returns a report; the commands map it to exit statuses:
0 no error findings, 1 at least one error finding, 2 the command could not run.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

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
