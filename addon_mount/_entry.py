"""The vocabulary of filesystem entries: what kind of thing is at a path.

One letter each, as ``ls -l`` shows them; the runtime snapshot format stores
the letter (docs/snapshot-format.md). Shared by the archive index and the
runtime image, so it sits below both.
"""

from __future__ import annotations

import enum
import stat
from typing import Final


class EntryType(enum.StrEnum):
    """The type of an entry: equal to its ``ls -l`` letter."""

    DIRECTORY = "d"
    FILE = "f"
    SYMLINK = "l"
    HARDLINK = "h"  # an archive member only: a second name for an earlier file
    CHAR_DEVICE = "c"
    BLOCK_DEVICE = "b"
    FIFO = "p"
    SOCKET = "s"

    @property
    def st_mode_bits(self) -> int:
        """The ``S_IF*`` bits of this type (a hard link is a file)."""
        return _TYPE_BITS[self]


_TYPE_BITS: Final = {
    EntryType.DIRECTORY: stat.S_IFDIR,
    EntryType.FILE: stat.S_IFREG,
    EntryType.HARDLINK: stat.S_IFREG,
    EntryType.SYMLINK: stat.S_IFLNK,
    EntryType.CHAR_DEVICE: stat.S_IFCHR,
    EntryType.BLOCK_DEVICE: stat.S_IFBLK,
    EntryType.FIFO: stat.S_IFIFO,
    EntryType.SOCKET: stat.S_IFSOCK,
}
