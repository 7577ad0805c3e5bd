"""The command line: ``addon-mount check``, ``explain``, ``runtimes``, ``snapshot``.

The library returns a report; this module maps it to exit statuses:
0 no error findings, 1 at least one error finding, 2 the check could not run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click

from . import _help, _log
from ._check import CheckError, find_archive, read_bundle_files
from ._check import check as run_check
from ._cli_base import (
    EXIT_CANNOT_RUN,
    EXIT_FINDINGS,
    EXIT_OK,
    CannotRun,
    cloudera_addons_option,
    echo_for_terminal,
    emit,
)
from ._findings import KINDS, RULES, markdown_table
from ._limits import DEFAULT_LIMITS, Limits
from ._runtime import RuntimeLoadError
from ._view import DEFAULT_MOUNT_DIR


def configure_logging(log_format: str, verbosity: int) -> None:
    """Route the library's structured events at the chosen level to stderr.

    structlog itself is imported and configured only when the first event at
    that level arrives: a quiet run does not pay for it.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    _log.set_threshold(level, lambda: _configure_structlog(log_format, level))


def _configure_structlog(log_format: str, level: int) -> None:
    import structlog  # noqa: PLC0415 - see configure_logging

    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Looked up at each event, so a replaced sys.stderr (tests) is honoured.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _limit_options(func: Any) -> Any:
    for field in reversed(attrs.fields(Limits)):
        default = getattr(DEFAULT_LIMITS, field.name)
        func = click.option(
            Limits.flag(field.name),
            field.name,
            type=click.IntRange(min=1),
            metavar="N",
            default=default,
            show_default=True,
            help=field.metadata.get("help", f"Limit: {field.name.replace('_', ' ')}."),
        )(func)
    return func


class _ReaderGoneError(Exception):
    """Standard output's reader went away (``| head``)."""


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # click answers a closed pipe with exit status 1; a reader that has seen
        # enough is no failure, so main() gets the news and exits 0.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _ReaderGoneError from exc


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_help.epilog(
        [
            ("addon-mount check bundles/oracle-driver", "dry-run one add-on bundle"),
            ("addon-mount explain AM301", "what a finding code means, and its fix"),
            ("addon-mount runtimes", "the built-in runtimes a check can use"),
            ("addon-mount COMMAND --help", "a command's options, examples and statuses"),
        ],
        [
            (EXIT_OK, "success: no error findings"),
            (EXIT_FINDINGS, "check found at least one error (with --strict, a warning)"),
            _help.CANNOT_RUN,
        ],
    ),
)
# package_name: the version is looked up only when --version is asked for.
@click.version_option(package_name="addon-mount", prog_name="addon-mount")
@click.option("--debug", is_flag=True, help="Show the full trace of an unexpected failure.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Dry-run Cloudera AI custom runtime add-ons before you register them."""
    ctx.obj = {"debug": debug}


@cli.command(
    epilog=_help.epilog(
        [
            ("addon-mount check bundles/oracle-driver", "one bundle, in the default runtime"),
            (
                "addon-mount check bundles/*/ --runtime all",
                "every bundle enabled together, in every built-in runtime",
            ),
            (
                "addon-mount check bundle --runtime runtime.snap",
                "against a snapshot captured in a session (see 'snapshot')",
            ),
            (
                "addon-mount check bundles/*/ -f sarif -o addon-mount.sarif --strict",
                "SARIF for CI annotations; warnings fail too",
            ),
            ("addon-mount check bundle -f json -o - | jq .ok", "JSON on standard output"),
        ],
        [
            (EXIT_OK, "no error findings (warnings allowed, unless --strict)"),
            (EXIT_FINDINGS, "at least one error finding (with --strict, or a warning)"),
            _help.CANNOT_RUN,
        ],
    )
)
@click.argument("bundles", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--metadata",
    type=click.Path(path_type=Path),
    help="The metadata file to upload, whatever its name (with --archive): one more add-on.",
)
@click.option(
    "--archive",
    type=click.Path(path_type=Path),
    help="The tarball to upload, whatever its name (with --metadata).",
)
@click.option(
    "-r",
    "--runtime",
    "runtimes",
    multiple=True,
    metavar="RUNTIME",
    help="A built-in runtime name, 'all', a snapshot file, a docker-export "
    "tarball or a root directory. Repeat for several. "
    "Default: the embedded default runtime.",
)
@cloudera_addons_option
@click.option(
    "--mount-dir",
    default=DEFAULT_MOUNT_DIR,
    show_default=True,
    metavar="TEMPLATE",
    help="An add-on's directory under /runtime-addons ({name} is filled in); a runtime "
    "that has it, or it followed by '-<suffix>', already mounts the add-on.",
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Write the report to FILE (atomically); '-' or none: standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--strict", is_flag=True, help="Warnings fail the check too (exit 1).")
@click.option(
    "--color/--no-color",
    default=None,
    help="Force colour on or off (default: on a terminal, unless NO_COLOR is set).",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="How start-up events are written to stderr.",
)
@click.option(
    "-v", "--verbose", count=True, help="Log each start-up step to stderr (-v info, -vv debug)."
)
@_limit_options
@click.pass_context
def check(
    ctx: click.Context,
    /,
    bundles: tuple[Path, ...],
    metadata: Path | None,
    archive: Path | None,
    runtimes: tuple[str, ...],
    cloudera_addons: str,
    mount_dir: str,
    output_format: str,
    output: Path | None,
    force: bool,
    strict: bool,
    color: bool | None,
    log_format: str,
    verbose: int,
    **limit_values: int,
) -> None:
    """Replay a workload start-up with BUNDLE... enabled and report what would break.

    A BUNDLE is a directory holding metadata.json and addon.tar.gz, the two
    files the registration call uploads. All bundles are enabled together.
    """
    configure_logging(log_format, verbose)
    limits = Limits(**limit_values)
    if (metadata is None) != (archive is None):
        raise click.UsageError("--metadata and --archive go together: give both files")
    if not bundles and metadata is None:
        raise click.UsageError("Missing argument 'BUNDLES...' (or --metadata FILE --archive FILE).")
    if output is not None and str(output) == "-":
        output = None
    if output is not None:
        if output.exists() and not force:
            raise CannotRun(f"{str(output)!r} exists; pass --force to overwrite it")
        # Inputs are never modified, --force or not: a bundle holds only its inputs.
        # (The report replaces a symlink at --output, never its target: compare the link.)
        if output.absolute().parent.resolve() in {b.resolve() for b in bundles if b.is_dir()}:
            raise CannotRun(
                f"{str(output)!r} is inside a bundle being checked; write the report elsewhere"
            )
    try:
        files = [] if metadata is None or archive is None else [(metadata, archive)]
        with _archive_progress() as progress:
            report = run_check(
                [*bundles, *(read_bundle_files(m, a, limits=limits) for m, a in files)],
                list(runtimes) or None,
                limits=limits,
                progress=progress,
                cloudera_addons=cloudera_addons,
                mount_dir=mount_dir,
            )
    except (CheckError, RuntimeLoadError) as exc:
        raise CannotRun(str(exc)) from exc
    emit(report, output_format, output, force=force, strict=strict, color=color)
    failed = not report.ok or (strict and report.warnings)
    ctx.exit(EXIT_FINDINGS if failed else EXIT_OK)


@contextmanager
def _archive_progress() -> Iterator[Callable[[Path], Callable[[int], None] | None]]:
    """Per bundle, a callback drawing a progress bar on stderr; None when not a terminal."""
    if not sys.stderr.isatty():
        yield lambda _bundle: None
        return
    from rich.console import Console  # noqa: PLC0415 - rich only for a terminal
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def for_bundle(bundle: Path) -> Callable[[int], None] | None:
            archive, _ = find_archive(bundle) if bundle.is_dir() else (None, "")
            if archive is None:
                return None
            task = bar.add_task(
                f"reading {bundle.name}/{archive.name}", total=archive.stat().st_size
            )
            return lambda done: bar.update(task, completed=done)

        yield for_bundle


@cli.command(
    epilog=_help.epilog(
        [
            ("addon-mount explain", "every code, one line each"),
            ("addon-mount explain AM301", "one code: what it means, an example, the fix"),
            ("addon-mount explain --markdown", "every code as the README's table"),
        ],
        [(EXIT_OK, "explained"), (EXIT_CANNOT_RUN, "an unknown code")],
    )
)
@click.argument("codes", nargs=-1, metavar="[CODE|KIND]...")
@click.option("--markdown", is_flag=True, help="List every code as the README's Markdown table.")
def explain(codes: tuple[str, ...], markdown: bool) -> int:
    """Explain finding codes (like AM301) or kinds (like collision), or list every code.

    For each code: what it means, its fix, what a workload shows, and what to
    do once the add-on is registered.
    """
    if markdown:
        click.echo(markdown_table(), nl=False)
        return EXIT_OK
    lines: list[str] = []
    if not codes:
        for rule in RULES.values():
            lines.append(f"{rule.code}  {rule.severity.value:<7}  {rule.kind:<17}  {rule.title}")
        echo_for_terminal("\n".join(lines) + "\n")
        return EXIT_OK
    chosen: list[str] = []
    for asked in codes:
        matched = [r.code for r in RULES.values() if asked.upper() == r.code or asked == r.kind]
        if not matched:
            raise CannotRun(
                f"unknown finding code {asked!r} (nor a kind); 'addon-mount explain' lists them"
            )
        chosen.extend(c for c in matched if c not in chosen)
    for i, code in enumerate(chosen):
        rule = RULES[code]
        if i:
            lines.append("")
        lines.append(f"{rule.code}: {rule.title}")
        lines.append(f"  kind:     {rule.kind} ({KINDS[rule.kind]})")
        lines.append(f"  severity: {rule.severity.value}")
        lines.append(f"  example:  {rule.example}")
        lines.append(f"  fix:      {rule.hint}")
        if rule.workload_shows:
            lines.append(f"  workload shows:  {rule.workload_shows}")
        if rule.after_registration:
            lines.append(f"  once registered: {rule.after_registration}")
    echo_for_terminal("\n".join(lines) + "\n")
    return EXIT_OK


def _register_runtime_commands() -> None:
    from ._cli_runtimes import runtimes_command, snapshot_command  # noqa: PLC0415

    cli.add_command(runtimes_command)
    cli.add_command(snapshot_command)


_register_runtime_commands()


def _register_life_commands() -> None:
    from ._cli_life import COMMANDS  # noqa: PLC0415

    for command in COMMANDS:
        cli.add_command(command)


_register_life_commands()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("ADDON_MOUNT_DEBUG"))
    try:
        status = cli.main(args=args, prog_name="addon-mount", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("addon-mount: interrupted", err=True)
        status = 130
    except click.UsageError as exc:
        exc.show()
        status = EXIT_CANNOT_RUN
    except click.ClickException as exc:
        exc.show()
        status = exc.exit_code
    except (BrokenPipeError, _ReaderGoneError):
        # The reader went away (`| head`): not an error worth a message. What is
        # still buffered goes nowhere, so the flush at exit cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if debug:
            traceback.print_exc()
        detail = str(exc) or type(exc).__name__
        click.echo(
            f"addon-mount: internal error: {type(exc).__name__}: {detail} "
            "(run with --debug for the trace)",
            err=True,
        )
        status = EXIT_CANNOT_RUN
    finally:
        # The CLI chose the rendering; leave the process as it found it.
        _log.set_threshold(None)
        if "structlog" in sys.modules:
            sys.modules["structlog"].reset_defaults()
    sys.exit(status if isinstance(status, int) else EXIT_OK)
