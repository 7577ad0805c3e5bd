"""Writing output files safely: atomically, and never over a file without --force."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{str(path)!r} exists; pass --force to overwrite it")


def atomic_write(path: str | Path, data: bytes, *, force: bool = False) -> None:
    """Write *data* to *path* so readers see the old file or the whole new one.

    The data goes to a temporary file beside *path*, is flushed to disk, then
    renamed over it; on any failure (a full disk, Ctrl-C) the temporary file
    is removed and *path* is untouched.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not force and path.exists():  # created while we wrote
            raise OutputExistsError(path)  # noqa: TRY301 - the cleanup below must run
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
