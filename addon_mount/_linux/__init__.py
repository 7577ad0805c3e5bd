"""Linux semantics on pyfakefs: the one place that owns them.

The check and the test harness both go through this package for every
decision Linux makes (permissions, errno, symlink resolution), and every use
of pyfakefs internals lives here. The interface:

- :class:`LinuxFS`, :class:`Cred`, :data:`ROOT`, :class:`LinuxError`,
  :func:`permitted`: the system calls a start-up makes, as the kernel
  answers them, for an explicit caller;
- :mod:`objects`: lazy directories, read-only mounts, object factories;
- :func:`install` / :func:`uninstall`: make a patched filesystem resolve
  paths and answer ``os.access`` as Linux does, for code under test.
"""

from __future__ import annotations

from . import _objects as objects
from ._hooks import PYFAKEFS_TESTED, install, uninstall
from ._vfs import (
    MAX_SYMLINKS,
    MAY_EXEC,
    MAY_READ,
    ROOT,
    Cred,
    LinuxError,
    LinuxFS,
    Walked,
    describe,
    errno_name,
    permitted,
    permitted_mode,
)

__all__ = [
    "MAX_SYMLINKS",
    "MAY_EXEC",
    "MAY_READ",
    "PYFAKEFS_TESTED",
    "ROOT",
    "Cred",
    "LinuxError",
    "LinuxFS",
    "Walked",
    "describe",
    "errno_name",
    "install",
    "objects",
    "permitted",
    "permitted_mode",
    "uninstall",
]
