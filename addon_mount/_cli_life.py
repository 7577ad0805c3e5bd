"""The commands around a check: ``pack``, ``register``, ``addons``, ``enable``,
``disable``, ``doctor`` and ``owns``.

Like ``check``, each exits 0 when all is well, 1 when it found a problem in
inputs that exist (a failing check, a taken name, a dangling link), and 2
when it could not run, with one line and never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import _help
from ._check import CheckError, find_archive, read_bundle, read_bundle_files
from ._check import check as run_check
from ._cli_base import CannotRun, cloudera_addons_option, echo_for_terminal, emit
from ._report import Report
from ._runtime import RuntimeImage, RuntimeLoadError

if TYPE_CHECKING:
    from ._api import RuntimeAddon, Workspace

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT_RUN = 0, 1, 2


def _cannot(message: str) -> click.ClickException:
    return CannotRun(message)


def _cloudera_addons(value: str) -> None:
    """Stop before any work when --cloudera-addons names no add-on or an unknown one."""
    from ._overlays import selection  # noqa: PLC0415

    try:
        selection(value)
    except ValueError as exc:
        raise _cannot(f"--cloudera-addons: {exc}") from exc


def _load(runtimes: Sequence[str], default: Sequence[str] | None = None) -> list[RuntimeImage]:
    from ._check import load_runtimes  # noqa: PLC0415

    try:
        return load_runtimes(list(runtimes) or (list(default) if default else None))
    except RuntimeLoadError as exc:
        raise _cannot(str(exc)) from exc


def _show_report(report: Report, *, strict: bool) -> bool:
    """Print the check's text report; True when it passed."""
    emit(report, "text", None, force=False, strict=strict, color=None)
    return report.ok and not (strict and report.warnings)


runtime_option = click.option(
    "-r",
    "--runtime",
    "runtimes",
    multiple=True,
    metavar="RUNTIME",
    help="A built-in runtime name, 'all', a snapshot file, a docker-export tarball or a "
    "root directory. Repeat for several.",
)
strict_option = click.option("--strict", is_flag=True, help="Warnings fail the check too.")


# -- pack -----------------------------------------------------------------------------------


@click.command(
    "pack",
    epilog=_help.epilog(
        [
            (
                "addon-mount pack stage/ -o bundle/ --name tool",
                "build from a staging tree, then check",
            ),
            (
                "addon-mount pack old.tar.gz -o fixed/ --metadata m.json",
                "repair a sloppy tarball",
            ),
        ],
        [
            _help.OK,
            (1, "error findings (warnings too, with --strict)"),
            _help.CANNOT_RUN,
        ],
    ),
)
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The bundle directory to write (created if missing).",
)
@click.option("--name", help="The add-on's name, for a generated metadata.json.")
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="PATH",
    help="A path to request (repeat). Default: the shallowest entries the workloads lack.",
)
@click.option(
    "--metadata",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use (and check) this metadata file instead of generating one.",
)
@runtime_option
@cloudera_addons_option
@click.option("--force", is_flag=True, help="Overwrite the bundle's files if they exist.")
@strict_option
@click.pass_context
def pack_command(
    ctx: click.Context,
    /,
    source: Path,
    output: Path,
    name: str | None,
    paths: tuple[str, ...],
    metadata: Path | None,
    runtimes: tuple[str, ...],
    cloudera_addons: str,
    force: bool,
    strict: bool,
) -> None:
    """Pack SOURCE into a bundle that registers as it should, then check it.

    SOURCE is a staging tree (the files as they should appear, like
    stage/opt/tool/...), a tarball to repair, or a bundle. The archive is
    reproducible: sorted members, relative names, owner 0:0, modes a+rX,
    mtimes from SOURCE_DATE_EPOCH, no macOS metadata. SOURCE is only read.
    """
    from ._pack import PackError, pack  # noqa: PLC0415

    if str(output) == "-":
        raise _cannot("pack writes a bundle directory: -o takes a directory, not '-'")
    _cloudera_addons(cloudera_addons)
    images = _load(runtimes)
    try:
        result = pack(
            source,
            output,
            name=name,
            paths=paths,
            metadata=metadata,
            runtimes=images,
            cloudera_addons=cloudera_addons,
            force=force,
        )
    except PackError as exc:
        raise _cannot(str(exc)) from exc
    made = "generated" if result.metadata_generated else "copied"
    click.echo(
        f"addon-mount pack: wrote {result.archive} ({result.members} members) and "
        f"{result.metadata} ({made})"
    )
    click.echo("Changes:")
    for change in result.changes:
        click.echo(f"  - {change.describe()}")
    click.echo()
    try:
        report = run_check([result.bundle], images, cloudera_addons=cloudera_addons)
    except CheckError as exc:
        raise _cannot(str(exc)) from exc
    ctx.exit(EXIT_OK if _show_report(report, strict=strict) else EXIT_FINDINGS)


# -- the workspace --------------------------------------------------------------------------


def _workspace_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "-w",
                "--workspace",
                required=True,
                metavar="URL",
                help="The workspace's URL, like https://ml-1234abcd.example.cloudera.site.",
            ),
            click.option(
                "--api-key-file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Read the API v2 key from FILE. Default: $CDSW_APIV2_KEY. "
                "Never pass the key itself on a command line.",
            ),
            click.option(
                "--ca-bundle",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Trust this CA bundle (PEM) for a workspace with a private CA.",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1),
                default=60.0,
                show_default=True,
                metavar="SECONDS",
                help="Give up on a call that does not answer in time.",
            ),
        ]
    ):
        func = option(func)
    return func


def _workspace(
    url: str, api_key_file: Path | None, ca_bundle: Path | None, timeout: float
) -> Workspace:
    from ._api import ApiError, Workspace, read_key, workspace_url  # noqa: PLC0415

    try:
        # The URL first: a mistyped --workspace is said before a missing key.
        return Workspace(
            workspace_url(url), read_key(api_key_file), ca_bundle=ca_bundle, timeout=timeout
        )
    except ApiError as exc:
        raise _cannot(str(exc)) from exc


@contextmanager
def _api_errors() -> Iterator[None]:
    from ._api import ApiError  # noqa: PLC0415

    try:
        yield
    except ApiError as exc:
        raise _cannot(str(exc)) from exc


@click.command(
    "addons",
    epilog=_help.epilog(
        [
            (
                "addon-mount addons --workspace $WS",
                "list the add-ons (the key from CDSW_APIV2_KEY)",
            ),
            (
                "addon-mount addons --workspace $WS --status DISABLED -f json",
                "disabled ones, as JSON",
            ),
        ],
        [
            _help.OK,
            (2, "could not run: bad input, no key, the workspace refused"),
        ],
    ),
)
@_workspace_options
@click.option("--status", type=click.Choice(["AVAILABLE", "DISABLED", "FAILED", "DEPRECATED"]))
@click.option("--component", help="Only add-ons of this component (like Spark).")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def addons_command(
    workspace: str,
    api_key_file: Path | None,
    ca_bundle: Path | None,
    timeout: float,
    status: str | None,
    component: str | None,
    output_format: str,
) -> int:
    """List the workspace's add-ons: identifier, component, status, name, creation time."""
    api = _workspace(workspace, api_key_file, ca_bundle, timeout)
    wanted = {k: v for k, v in (("status", status), ("component", component)) if v}
    with _api_errors():
        rows = api.list_addons(wanted or None)
    if output_format == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return EXIT_OK
    click.echo(_table(rows))
    return EXIT_OK


def _table(rows: Sequence[RuntimeAddon]) -> str:
    header = ("IDENTIFIER", "COMPONENT", "STATUS", "DISPLAY NAME", "CREATED")
    cells = [header] + [
        (r.identifier, r.component, r.status, r.display_name, r.created_at) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    count = len(rows)
    lines.append(f"({count} add-on{'' if count == 1 else 's'})")
    return "\n".join(lines)


def _find(rows: Sequence[RuntimeAddon], wanted: str) -> RuntimeAddon:
    from ._api import addon_matches  # noqa: PLC0415

    exact = [r for r in rows if r.identifier == wanted]
    if exact:
        return exact[0]
    named = [r for r in rows if addon_matches(r.identifier, wanted)]
    if len(named) == 1:
        return named[0]
    if not named:
        raise _cannot(
            f"the workspace has no add-on {wanted!r} (nor custom-addon-{wanted}); "
            "'addon-mount addons' lists them"
        )
    ids = ", ".join(r.identifier for r in named)
    raise _cannot(f"{wanted!r} could be any of {ids}; give the identifier")


def _set_status(
    names: Sequence[str],
    status: str,
    workspace: str,
    api_key_file: Path | None,
    ca_bundle: Path | None,
    timeout: float,
) -> int:
    api = _workspace(workspace, api_key_file, ca_bundle, timeout)
    with _api_errors():
        rows = api.list_addons()
        chosen = [_find(rows, n) for n in names]
        todo = [r for r in chosen if r.status != status]
        for r in chosen:
            if r.status == status:
                click.echo(f"{r.identifier}: already {status}")
        if not todo:
            return EXIT_OK
        changed = api.update_status([r.identifier for r in todo], status)
    if changed < len(todo):
        raise _cannot(
            f"the workspace changed {changed} of {len(todo)} add-ons; "
            "'addon-mount addons' shows their status"
        )
    for r in todo:
        click.echo(f"{r.identifier}: {r.status or 'UNKNOWN'} -> {status}")
    note = "mount" if status == "AVAILABLE" else "no longer mount"
    click.echo(f"Workloads started from now on {note} {'it' if len(todo) == 1 else 'them'}.")
    return EXIT_OK


@click.command(
    "enable",
    epilog=_help.epilog(
        [
            (
                "addon-mount enable tool --workspace $WS",
                "new workloads mount it again",
            )
        ],
        [
            _help.OK,
            (
                2,
                "could not run: no key, an unknown name, the workspace refused",
            ),
        ],
    ),
)
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@_workspace_options
def enable_command(names: tuple[str, ...], **options: Any) -> int:
    """Enable add-ons (by identifier or add-on name): new workloads mount them."""
    return _set_status(names, "AVAILABLE", **options)


@click.command(
    "disable",
    epilog=_help.epilog(
        [
            (
                "addon-mount disable tool --workspace $WS",
                "new workloads stop mounting it",
            )
        ],
        [
            _help.OK,
            (
                2,
                "could not run: no key, an unknown name, the workspace refused",
            ),
        ],
    ),
)
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@_workspace_options
def disable_command(names: tuple[str, ...], **options: Any) -> int:
    """Disable add-ons (by identifier or add-on name): new workloads stop mounting them.

    A registered add-on can never be removed or updated; 'addon-mount owns
    --disable NAME' shows first what would change.
    """
    return _set_status(names, "DISABLED", **options)


@contextmanager
def _upload_progress(archive: Path) -> Iterator[Callable[[int], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415 - rich only for a terminal
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(archive.name, total=archive.stat().st_size)
        yield lambda done: bar.update(task, completed=done)


def _bundle_files(
    bundle: Path | None, metadata: Path | None, archive: Path | None
) -> tuple[Path, Path]:
    if (metadata is None) != (archive is None):
        raise click.UsageError("--metadata and --archive go together: give both files")
    if metadata is not None and archive is not None:
        if bundle is not None:
            raise click.UsageError("give BUNDLE or --metadata and --archive, not both")
        return metadata, archive
    if bundle is None:
        raise click.UsageError("Missing argument 'BUNDLE' (or --metadata FILE --archive FILE).")
    if not bundle.is_dir():
        raise _cannot(
            f"bundle {str(bundle)!r} "
            f"{'is not a directory' if bundle.exists() else 'does not exist'}"
        )
    found, problem = find_archive(bundle)
    if found is None:
        raise _cannot(problem)
    return bundle / "metadata.json", found


@click.command(
    "register",
    epilog=_help.epilog(
        [
            (
                "addon-mount register bundle/ --workspace $WS --dry-run",
                "check, then print the curl",
            ),
            (
                "addon-mount register bundle/ --workspace $WS",
                "check in every runtime, then upload",
            ),
        ],
        [
            _help.OK,
            (1, "error findings (with --strict, warnings), or a taken name: nothing sent"),
            (2, "could not run: no key, an untrustworthy listing, the workspace refused"),
        ],
    ),
)
@click.argument("bundle", required=False, type=click.Path(path_type=Path))
@click.option("--metadata", type=click.Path(path_type=Path), help="The metadata file to upload.")
@click.option("--archive", type=click.Path(path_type=Path), help="The tarball to upload.")
@_workspace_options
@runtime_option
@cloudera_addons_option
@strict_option
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="Check, then print the call as curl (no key shown); send nothing.",
)
@click.option(
    "--not-taken-by",
    metavar="IDENTIFIER",
    multiple=True,
    help="An identifier like custom-addon-NAME-x that is another add-on's, not NAME with a "
    "suffix (repeatable).",
)
@click.option(
    "--trust-empty-listing",
    "empty_listing",
    is_flag=True,
    help="Register even when the workspace lists no add-ons at all.",
)
@click.pass_context
def register_command(
    ctx: click.Context,
    /,
    bundle: Path | None,
    metadata: Path | None,
    archive: Path | None,
    workspace: str,
    api_key_file: Path | None,
    ca_bundle: Path | None,
    timeout: float,
    runtimes: tuple[str, ...],
    cloudera_addons: str,
    strict: bool,
    dry_run: bool,
    not_taken_by: tuple[str, ...],
    empty_listing: bool,
) -> None:
    """Check BUNDLE in every runtime, then register it in the workspace, once.

    Nothing is sent when the check fails (with --strict, on warnings too), or
    when the workspace already has the name (custom-addon-NAME, with or
    without a suffix): a registered add-on can never be updated or removed.
    The API key comes from $CDSW_APIV2_KEY or --api-key-file.
    """
    from ._api import ApiError, curl_command, workspace_url  # noqa: PLC0415

    meta_path, archive_path = _bundle_files(bundle, metadata, archive)
    _cloudera_addons(cloudera_addons)
    try:
        url = workspace_url(workspace)
    except ApiError as exc:
        raise _cannot(str(exc)) from exc
    # Read the key before the check: a missing key is found before a long check.
    api = None if dry_run else _workspace(url, api_key_file, ca_bundle, timeout)
    images = _load(runtimes, default=["all"])
    try:
        read = read_bundle_files(meta_path, archive_path)
        report = run_check([read], images, cloudera_addons=cloudera_addons)
    except CheckError as exc:
        raise _cannot(str(exc)) from exc
    passed = _show_report(report, strict=strict)
    click.echo()
    if not passed:
        words = "the check failed" if not report.ok else "the check has warnings (--strict)"
        click.echo(f"addon-mount: not registering: {words}; nothing was sent", err=True)
        ctx.exit(EXIT_FINDINGS)
    name = read.spec.name if read.spec else read.label
    curl = curl_command(url, meta_path, archive_path, key_file=api_key_file, ca_bundle=ca_bundle)
    if api is None:
        click.echo(
            "Dry run: nothing was sent. Without --dry-run, register lists the workspace's "
            f"add-ons, stops if custom-addon-{name} is taken, then makes this call:"
        )
        click.echo()
        click.echo(curl)
        ctx.exit(EXIT_OK)
    with _api_errors():
        listed = api.list_addons()
    if not listed and not empty_listing:
        raise _cannot(
            "the workspace listed no add-ons at all, not even Cloudera's own (Spark, Hadoop "
            "CLI), so its answer cannot show the name is free; nothing was sent (pass "
            "--trust-empty-listing if the workspace really has none)"
        )
    _stop_if_taken(ctx, listed, name, set(not_taken_by))
    click.echo(f"custom-addon-{name} is free in the workspace; uploading.")
    with _upload_progress(archive_path) as progress:
        try:
            api.register(meta_path, archive_path, progress)
        except ApiError as exc:
            raise _cannot(str(exc) + _maybe_registered(exc)) from exc
    click.echo(
        f"Registered custom-addon-{name}: workloads started from now on mount it. "
        f"'addon-mount doctor' in a new session shows its links."
    )
    ctx.exit(EXIT_OK)


def _stop_if_taken(
    ctx: click.Context, listed: Sequence[RuntimeAddon], name: str, not_taken_by: set[str]
) -> None:
    """Exit 1 when a listed identifier is, or may be, custom-addon-*name*."""
    from ._api import name_match  # noqa: PLC0415

    exact = [r for r in listed if name_match(r.identifier, name) == "exact"]
    maybe = [
        r
        for r in listed
        if name_match(r.identifier, name) == "suffix" and r.identifier not in not_taken_by
    ]
    if not exact and not maybe:
        return

    def shown(rows: Sequence[RuntimeAddon]) -> str:
        return ", ".join(f"{r.identifier} ({r.status or 'UNKNOWN'})" for r in rows)

    if exact:
        why = f"the workspace already has {shown(exact)}"
    else:
        why = (
            f"the workspace has {shown(maybe)}, which is custom-addon-{name} with a suffix the "
            "workspace added, or another add-on whose name starts with "
            f"{name + '-'!r}; if it is the other, pass --not-taken-by "
            f"{maybe[0].identifier}"
        )
    click.echo(
        f"addon-mount: not registering: {why}; a registered name can never be reused, "
        "so choose another name; nothing was sent",
        err=True,
    )
    ctx.exit(EXIT_FINDINGS)


def _maybe_registered(exc: Exception) -> str:
    """What to add when an upload failed after the workspace may have stored it."""
    status = getattr(exc, "status", None)
    if status is not None and 300 <= status < 500:
        return ""  # refused before storing anything
    return (
        "; the workspace may have registered it anyway: run 'addon-mount addons' before "
        "trying again"
    )


# -- doctor and owns -------------------------------------------------------------------------


def _requested(bundles: Sequence[Path], metadata: Sequence[Path]) -> dict[str, list[str]]:
    """Each add-on's requested paths, from bundle directories and metadata files."""
    from ._doctor_script import read_metadata  # noqa: PLC0415

    requested: dict[str, list[str]] = {}
    for given in [*bundles, *metadata]:
        try:
            name, paths = read_metadata(str(given))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise _cannot(f"cannot read the metadata of {str(given)!r}: {reason}") from exc
        requested[name] = paths
    return requested


def _print_doctor_script(output: Path | None, force: bool) -> int:
    from importlib import resources  # noqa: PLC0415

    from ._files import atomic_write  # noqa: PLC0415

    source = resources.files("addon_mount").joinpath("_doctor_script.py").read_text("utf-8")
    if output is None or str(output) == "-":  # '-o -' is standard output, as for check
        click.echo(source, nl=False)
        return EXIT_OK
    try:
        atomic_write(output, source.encode("utf-8"), force=force)
    except OSError as exc:
        raise _cannot(
            str(exc)
            if isinstance(exc, FileExistsError)
            else f"cannot write {str(output)!r}: {exc.strerror or exc}"
        ) from exc
    click.echo(f"wrote {output}: run it in a session with python3 {output.name}", err=True)
    return EXIT_OK


bundle_option = click.option(
    "-b",
    "--bundle",
    "bundles",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="An add-on's bundle directory: its requested paths are checked (repeat).",
)
metadata_option = click.option(
    "--metadata",
    "metadata_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="An add-on's metadata file, whatever its name (repeat).",
)


@click.command(
    "doctor",
    epilog=_help.epilog(
        [
            ("addon-mount doctor /", "in a session: the add-ons as the workload sees them"),
            (
                "addon-mount doctor live.snap --bundle bundle/",
                "a snapshot, against the bundle's paths",
            ),
            (
                "addon-mount doctor --print-script -o doctor.py",
                "the script to run in a session",
            ),
        ],
        [
            _help.OK,
            (1, "a problem: a dangling link, an unlinked path..."),
            _help.CANNOT_RUN,
        ],
    ),
)
@click.argument("source", required=False, type=click.Path(path_type=Path))
@bundle_option
@metadata_option
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--print-script",
    is_flag=True,
    help="Print doctor.py, the stand-alone script that does this inside a session.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --print-script: write the script to FILE.",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.pass_context
def doctor_command(
    ctx: click.Context,
    /,
    source: Path | None,
    bundles: tuple[Path, ...],
    metadata_files: tuple[Path, ...],
    output_format: str,
    print_script: bool,
    output: Path | None,
    force: bool,
) -> None:
    """Show a workload's add-ons: mounts, links into them, and what is wrong.

    SOURCE is a snapshot taken in a session ('snapshot --print-script') or a
    root directory (default /). Reports links that dangle or loop, targets
    cdsw may not read or run, and, for each add-on given with --bundle or
    --metadata, requested paths never linked or shadowed.
    """
    from . import _doctor, _doctor_script  # noqa: PLC0415

    if print_script:
        if source is not None or bundles or metadata_files:
            raise _cannot("--print-script takes no SOURCE, --bundle or --metadata")
        ctx.exit(_print_doctor_script(output, force))
    requested = _requested(bundles, metadata_files)
    root = source or Path("/")
    image = _load([str(root)])[0]
    try:
        result = _doctor.diagnose(image, requested)
    finally:
        image.close()
    if output_format == "json":
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        from ._findings import RULES  # noqa: PLC0415

        hints = {code: rule.hint for code, rule in RULES.items()}
        echo_for_terminal(_doctor_script.render(result, str(root), hints))
    ctx.exit(EXIT_FINDINGS if _doctor_script.failed(result) else EXIT_OK)


@click.command(
    "owns",
    epilog=_help.epilog(
        [
            (
                "addon-mount owns /opt/spark -r live.snap",
                "who provides /opt/spark",
            ),
            (
                "addon-mount owns /opt/tool -r live.snap --disable tool",
                "what changes if tool is disabled",
            ),
        ],
        [_help.OK, (1, "a path is provided by nothing"), _help.CANNOT_RUN],
    ),
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@runtime_option
@bundle_option
@cloudera_addons_option
@click.option(
    "--disable",
    "disabled",
    metavar="NAME",
    help="Show what would change if add-on NAME were disabled.",
)
@click.pass_context
def owns_command(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    runtimes: tuple[str, ...],
    bundles: tuple[Path, ...],
    cloudera_addons: str,
    disabled: str | None,
) -> None:
    """Say which add-on, or the runtime, provides each PATH (like dpkg -S).

    In a snapshot taken in a session the add-ons are mounted already; with
    --bundle the start-up is simulated first with those add-ons enabled.
    Exit 1 when nothing provides a PATH (with --disable: when a link would
    dangle).
    """
    from . import _doctor  # noqa: PLC0415
    from ._check import staged_addons, start_workloads  # noqa: PLC0415
    from ._workload import Workload  # noqa: PLC0415

    images = _load(runtimes)
    try:
        read = [read_bundle(b) for b in bundles]
    except CheckError as exc:
        raise _cannot(str(exc)) from exc
    names = [b.spec.name for b in read if b.spec]

    _cloudera_addons(cloudera_addons)

    def probes(chosen: Sequence[Any], among: Sequence[RuntimeImage] | None = None) -> list[Any]:
        workloads = [Workload(image, staged_addons(chosen)) for image in among or images]
        report = start_workloads(chosen, workloads)
        return [
            _doctor.ModelProbe(
                w.runtime,
                w,
                links=[(ln.path, ln.target) for ln in report.links if ln.runtime == w.runtime.name],
                cred=_doctor.ROOT,
            )
            for w in workloads
        ]

    before = probes(read)
    several = len(images) > 1
    status = EXIT_OK
    attached = _cloudera_workloads(images, cloudera_addons, lambda i: probes(read, i))
    for probe, extra in zip(before, attached, strict=True):
        prefix = f"[{probe.image.name}] " if several else ""
        for path in paths:
            owner = _doctor.owner_of(probe, path, names)
            others = _in_other_workloads(owner, [_doctor.owner_of(p, path, names) for p in extra])
            if owner.kind == "nothing" and not others:
                status = EXIT_FINDINGS
            click.echo(prefix + owner.describe())
            for line in others:
                click.echo(f"  {line}")
    if disabled is None:
        ctx.exit(status)
    ctx.exit(_what_if_disabled(disabled, before, read, images, paths, names, probes))


def _cloudera_workloads(
    images: Sequence[RuntimeImage],
    cloudera_addons: str,
    probes: Callable[[Sequence[RuntimeImage]], list[Any]],
) -> list[list[Any]]:
    """For each runtime, probes of its workloads with Cloudera's add-ons attached."""
    from ._overlays import selection, variants  # noqa: PLC0415

    chosen = selection(cloudera_addons)
    found: list[list[Any]] = []
    for image in images:
        extra = variants(image, chosen)[1:]
        found.append(probes(extra) if extra else [])
    return found


def _in_other_workloads(owner: Any, others: Sequence[Any]) -> list[str]:
    """Lines for the workloads attaching Cloudera's add-ons where another provides the path."""
    from ._overlays import catalog  # noqa: PLC0415

    lines: list[str] = []
    for other in others:
        if (other.kind, other.addon) == (owner.kind, owner.addon):
            continue
        overlay = next((o for o in catalog() if other.addon and o.identifies(other.addon)), None)
        if overlay is None:
            continue
        told = other.describe().replace(f"add-on {other.addon}", f"the {overlay.title}", 1)
        line = f"in workloads that attach the {overlay.title}: {told.partition(': ')[2]}"
        if line not in lines:
            lines.append(line)
    return lines


def _what_if_disabled(
    name: str,
    before: Sequence[Any],
    read: Sequence[Any],
    images: Sequence[RuntimeImage],
    paths: Sequence[str],
    names: Sequence[str],
    probes: Callable[[Sequence[Any]], list[Any]],
) -> int:
    from . import _doctor, _doctor_script  # noqa: PLC0415

    simulated = [b for b in read if b.spec is not None and b.spec.name == name]
    if simulated:
        after = probes([b for b in read if b not in simulated])
    else:
        after = []
        for probe in before:
            mounts = [m for m in probe.mounts() if m == name or _doctor_script.addon_of(m, [name])]
            if not mounts:
                raise _cannot(
                    f"no add-on {name!r} is mounted in {probe.image.name} or given with --bundle"
                )
            reduced = _doctor.without(probe.image, mounts)
            after.append(_doctor.ModelProbe(reduced, cred=_doctor.ROOT))
    status = EXIT_OK
    for old, new in zip(before, after, strict=True):
        click.echo()
        click.echo(f"If {name} were disabled ({old.image.name}):")
        was = {
            p: t
            for p, t in old.symlinks()
            if _doctor_script.mount_of(_doctor_script.link_target(p, t))
        }
        now = {
            p: t
            for p, t in new.symlinks()
            if _doctor_script.mount_of(_doctor_script.link_target(p, t))
        }
        for path in sorted(set(was) - set(now)):
            click.echo(f"  - {path} -> {was[path]}  (link gone)")
        for path in sorted(set(now) - set(was)):
            click.echo(f"  + {path} -> {now[path]}  (no longer shadowed)")
        for path, target in _doctor.would_dangle(old, new):
            status = EXIT_FINDINGS
            click.echo(f"  ! {path} -> {target}  (would dangle)")
        for path in paths:
            first = _doctor.owner_of(old, path, names)
            second = _doctor.owner_of(new, path, names)
            if first != second:
                click.echo(f"  {path}: {_short(first)} -> {_short(second)}")
    return status


def _short(owner: Any) -> str:
    if owner.kind == "addon":
        return f"add-on {owner.addon}"
    return "the runtime" if owner.kind == "runtime" else "nothing"


COMMANDS: list[click.Command] = [
    pack_command,
    register_command,
    addons_command,
    enable_command,
    disable_command,
    doctor_command,
    owns_command,
]

# read_bundle is the bundle reader doctor and owns use too.
__all__ = ["COMMANDS", "read_bundle"]
