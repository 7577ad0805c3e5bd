"""The runtime commands: ``addon-mount runtimes`` and ``addon-mount snapshot``.

``runtimes`` lists the built-in catalog. ``snapshot`` records a root
filesystem (a directory, or a ``docker export`` tarball) as a snapshot file
that ``check --runtime`` reads, or prints ``capture.py``, the stand-alone
script that does the same inside a session.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import _capture, _help
from ._cli_base import CannotRun
from ._files import atomic_write
from ._overlays import catalog as overlay_catalog
from ._overlays import default_names as default_overlays
from ._runtime import DEFAULT_RUNTIME, RuntimeImage, RuntimeLoadError
from ._runtime_sources import (
    BUILTIN_DIR,
    builtin_catalog,
    builtin_names,
    image_from_tar,
)

if TYPE_CHECKING:  # rich is imported when a table is printed
    from rich.table import Table

CAPTURE_SCRIPT = "_capture.py"


def catalog() -> list[dict[str, object]]:
    """The built-in runtimes, sorted by name: what each models and how it was built.

    Each row: name, aliases (other names it answers to), generation,
    edition, the Dockerfile it is modelled on, description, entries,
    default, source and steps (the build steps, in order).
    """
    rows: list[dict[str, object]] = []
    for name in builtin_names():
        # Opened without load_builtin's cache: listing should not keep every image in memory.
        image = RuntimeImage.from_snapshot(BUILTIN_DIR / f"{name}.snap.gz")
        try:
            meta = image.meta
            rows.append(
                {
                    "name": name,
                    "aliases": json.loads(meta.get("aliases", "[]")),
                    "generation": meta.get("generation", ""),
                    "edition": meta.get("edition", ""),
                    "dockerfile": meta.get("dockerfile", ""),
                    "models": meta.get("models", ""),
                    "description": image.description,
                    "entries": len(image),
                    "default": name == DEFAULT_RUNTIME,
                    "source": meta.get("source", ""),
                    "steps": json.loads(meta.get("steps", "[]")),
                }
            )
        finally:
            image.close()
    return rows


def _runtimes_table(rows: list[dict[str, object]]) -> Table:
    from rich.table import Table  # noqa: PLC0415 - see runtimes_command

    table = Table(title="Built-in runtimes", title_justify="left", show_lines=True)
    table.add_column("Name", no_wrap=True)
    table.add_column("Generation", no_wrap=True)
    table.add_column("Entries", justify="right")
    table.add_column("Models", overflow="fold")
    for row in sorted(rows, key=lambda r: (str(r["generation"]), str(r["name"]))):
        aliases = row["aliases"] if isinstance(row["aliases"], list) else []
        label = "\n".join(
            [
                str(row["name"]),
                *(f"= {a}" for a in aliases),
                *(["(default)"] if row["default"] else []),
            ]
        )
        models = str(row["models"] or row["description"])
        table.add_row(label, str(row["generation"]), f"{row['entries']:,}", models)
    return table


def _generations_note() -> str:
    lines = [
        f"  {g['name']}: {g['covers']}, Ubuntu {g['ubuntu']}; {g['ordering']}."
        for g in builtin_catalog().get("generations", [])
    ]
    return "\n".join(
        [
            "Generations (pick the one your workspace's runtime versions belong to):",
            *lines,
            "Each runtime's description, Dockerfile and build steps, and what is inferred: "
            "addon-mount runtimes -f json.",
        ]
    )


def _overlays_table() -> Table:
    from rich.table import Table  # noqa: PLC0415 - see runtimes_command

    table = Table(
        title="Cloudera's add-ons, attached in extra workloads of each runtime "
        "(check --cloudera-addons)",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("Name", no_wrap=True)
    table.add_column("Mounted at", overflow="fold")
    table.add_column("Puts in place", overflow="fold")
    table.add_column("Evidence", overflow="fold")
    defaults = default_overlays()
    for overlay in overlay_catalog():
        label = overlay.name + ("\n(default)" if overlay.name in defaults else "")
        paths = "\n".join(
            f"{p.path} ({'symlink' if p.how == 'link' else 'cdsw-owned copy'}; {p.evidence})"
            for p in overlay.paths
        )
        evidence = f"add-on: {overlay.evidence}\ndirectory: {overlay.directory_evidence}"
        table.add_row(label, overlay.root, paths, evidence)
    return table


@click.command(
    "runtimes",
    epilog=_help.epilog(
        [
            ("addon-mount runtimes", "tables: each runtime, and Cloudera's add-ons"),
            ("addon-mount runtimes -f json", "the runtimes as a JSON list, for programs"),
            (
                "addon-mount runtimes --cloudera-addons -f json",
                "Cloudera's add-ons as a JSON list",
            ),
        ],
        [_help.OK, _help.CANNOT_RUN],
    ),
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Tables for people, or a JSON list for programs.",
)
@click.option(
    "--cloudera-addons",
    "overlays_only",
    is_flag=True,
    help="List only Cloudera's own add-ons (the ones check --cloudera-addons attaches).",
)
def runtimes_command(output_format: str, overlays_only: bool) -> int:
    """List the built-in runtimes a check can run against, and Cloudera's add-ons."""
    try:
        rows = [] if overlays_only else catalog()
    except RuntimeLoadError as exc:
        raise CannotRun(str(exc)) from exc
    if output_format == "json":
        listed = [o.to_json() for o in overlay_catalog()] if overlays_only else rows
        click.echo(json.dumps(listed, indent=2))
        return 0
    # rich is imported here, not at the top: `check` loads this module and needs none of it.
    from ._render import make_console  # noqa: PLC0415

    console = make_console(soft_wrap=False)
    if not console.is_terminal:
        console.width = 160  # piped: no terminal width to honour; keep names whole
    if not overlays_only:
        console.print(_runtimes_table(rows))
        console.print(_generations_note(), highlight=False)
        console.print()
    console.print(_overlays_table())
    console.print(
        "Evidence: code = seen in public code, inf = inferred. That each path is a symlink "
        "or a copy is inferred; notes: addon-mount runtimes --cloudera-addons -f json, "
        "docs/runtimes.md.",
        highlight=False,
    )
    return 0


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None] | None]:
    """A count-of-entries callback drawing on stderr, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415 - see runtimes_command
    from rich.progress import Progress, SpinnerColumn, TextColumn  # noqa: PLC0415

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} entries"),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda count: progress.update(task, completed=count)


def _capture_source() -> str:
    return resources.files("addon_mount").joinpath(CAPTURE_SCRIPT).read_text(encoding="utf-8")


def _write_failed(output: Path, exc: OSError) -> CannotRun:
    if isinstance(exc, FileExistsError):
        return CannotRun(f"{str(output)!r} exists; pass --force to overwrite it")
    where = exc.filename if exc.filename is not None else str(output)
    return CannotRun(f"cannot write {str(where)!r}: {exc.strerror or exc}")


def _print_script(output: Path | None, force: bool) -> int:
    source = _capture_source()
    if output is None:
        click.echo(source, nl=False)
        return 0
    try:
        atomic_write(output, source.encode("utf-8"), force=force)
    except OSError as exc:
        raise _write_failed(output, exc) from exc
    click.echo(f"wrote {output}: run it with python3 {output.name} -o runtime.snap", err=True)
    return 0


def _snapshot_tar(tarball: Path, output: Path, force: bool, name: str | None) -> int:
    try:
        image = image_from_tar(tarball, name=name)
    except RuntimeLoadError as exc:
        raise CannotRun(str(exc)) from exc
    rows = ((e.path, e.type, e.mode, e.uid, e.gid, e.size, e.target) for e in image)
    meta = {k: v for k, v in image.meta.items() if k not in ("format", "version", "entries")}
    with _progress(f"writing {output}") as progress:
        try:
            count = _capture.write_snapshot(str(output), rows, meta, force=force, progress=progress)
        except OSError as exc:
            raise _write_failed(output, exc) from exc
        finally:
            image.close()
    click.echo(f"wrote {output}: {count:,} entries from {tarball}", err=True)
    return 0


def _snapshot_directory(
    root: Path, output: Path, force: bool, cross_mounts: bool, name: str | None
) -> int:
    with _progress(f"reading {root}") as progress:
        try:
            count, report = _capture.capture(
                str(root),
                str(output),
                force=force,
                cross_mounts=cross_mounts,
                name=name,
                progress=progress,
            )
        except FileExistsError as exc:
            raise _write_failed(output, exc) from exc
        except OSError as exc:
            where = exc.filename if exc.filename is not None else str(root)
            raise CannotRun(f"cannot read {str(where)!r}: {exc.strerror or exc}") from exc
    notes = []
    if report.unreadable:
        notes.append(f"{len(report.unreadable)} directories could not be listed")
    if report.not_crossed:
        notes.append(
            f"{len(report.not_crossed)} mount points not walked into "
            f"({', '.join(report.not_crossed[:3])}{', ...' if len(report.not_crossed) > 3 else ''}"
            "; --cross-mounts walks them)"
        )
    suffix = f"; {'; '.join(notes)}" if notes else ""
    click.echo(f"wrote {output}: {count:,} entries from {root}{suffix}", err=True)
    return 0


@click.command(
    "snapshot",
    epilog=_help.epilog(
        [
            (
                "addon-mount snapshot --print-script > capture.py",
                "the script to run inside a session: python3 capture.py -o runtime.snap",
            ),
            (
                "addon-mount snapshot --from-tar rootfs.tar -o runtime.snap",
                "a snapshot of a 'docker export' tarball",
            ),
            (
                "addon-mount snapshot /mnt/root -o runtime.snap.gz",
                "a snapshot of a root directory, gzip-compressed",
            ),
        ],
        [(0, "the snapshot (or script) was written"), _help.CANNOT_RUN],
    ),
)
@click.argument(
    "root",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="The snapshot file to write, gzip-compressed if it ends in .gz "
    "(with --print-script: the script file, '-' for standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option(
    "--cross-mounts",
    is_flag=True,
    help="Walk into other mounted filesystems too (pseudo filesystems never).",
)
@click.option(
    "--from-tar",
    "tarball",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read a 'docker export' root filesystem tarball (plain or compressed) instead.",
)
@click.option("--name", help="The runtime name to record (default: from OUTPUT or the source).")
@click.option(
    "--print-script",
    is_flag=True,
    help="Print capture.py, the stand-alone script that takes a snapshot inside a session.",
)
def snapshot_command(
    root: Path | None,
    output: Path | None,
    force: bool,
    cross_mounts: bool,
    tarball: Path | None,
    name: str | None,
    print_script: bool,
) -> int:
    """Record the root filesystem at ROOT (default /) as a runtime snapshot file.

    Only names, types, permission bits, numeric owners, sizes and link
    targets are recorded, never file contents. /proc, /sys and /dev are kept
    as bare directories and /home/cdsw to one level.
    """
    to_stdout = output is not None and str(output) == "-"
    if print_script:
        if root is not None or tarball is not None:
            raise CannotRun("--print-script takes no ROOT or --from-tar")
        return _print_script(None if to_stdout else output, force)
    if output is None:
        raise CannotRun("missing -o/--output: the snapshot file to write")
    if to_stdout:
        raise CannotRun(
            "a snapshot is an SQLite file and cannot go to standard output; give -o FILE"
        )
    if tarball is not None:
        if root is not None:
            raise CannotRun("give ROOT or --from-tar, not both")
        if cross_mounts:
            raise CannotRun("--cross-mounts applies to a directory, not to --from-tar")
        return _snapshot_tar(tarball, output, force, name)
    return _snapshot_directory(root or Path("/"), output, force, cross_mounts, name)
