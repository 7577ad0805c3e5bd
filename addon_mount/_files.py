"""Writing output files safely: atomically, and never over a file without --force."""

from __future__ import annotations

from pathlib import Path

from ._capture import write_atomically


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{str(path)!r} exists; pass --force to overwrite it")


def atomic_write(path: str | Path, data: bytes, *, force: bool = False) -> None:
    """Write *data* to *path* so readers see the old file or the whole new one.

    The data goes to a temporary file beside *path*, is flushed to disk, then
    renamed over it (with *force*) or linked to it; on any failure (a full
    disk, Ctrl-C) the temporary file is removed and *path* is untouched. The
    capture script does the same for snapshots: one implementation serves both.
    """
    path = Path(path)

    def write(temp: str) -> None:
        Path(temp).write_bytes(data)

    try:
        write_atomically(str(path), write, force=force)
    except FileExistsError as exc:
        raise OutputExistsError(path) from exc
