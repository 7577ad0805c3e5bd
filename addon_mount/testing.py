"""Test harness: run your code inside a simulated Cloudera AI workload.

A workload starts with the given add-ons enabled in one runtime, exactly as
:func:`addon_mount.check` simulates it, and then stays in place for the rest
of the test: through pyfakefs, ``os``, ``open``, ``pathlib``, ``shutil`` and
friends see the workload's filesystem, as the ``cdsw`` user (uid and gid
8536)::

    from addon_mount import testing

    with testing.workload(["bundles/oracle-driver"]) as wl:
        assert wl.ok, wl.findings
        with open("/opt/oracle/ojdbc8.jar", "rb") as f:   # the archive's bytes
            assert f.read(4) == b"PK\\x03\\x04"

What the filesystem holds:

- every entry of the runtime image, lazily (a directory's entries appear
  the first time it is listed or walked). Runtime snapshots record no
  contents, so a runtime file reads as empty;
- each add-on's archive under ``/runtime-addons/custom-addon-<name>/``,
  mounted read-only: its files read as the archive's bytes, and any change
  there (open for writing, create, mkdir, unlink, rename, chmod, chown,
  utime, truncate, symlink, setxattr), directly or through a link, raises
  ``OSError`` with ``errno.EROFS``;
- the links the start-up created, and the directories cdsw created for them;
- ``/tmp`` (mode 1777) and ``/home/cdsw`` (cdsw's, the working directory),
  added when the runtime lacks them.

Permissions are the runtime's: where cdsw may not write, writing raises
``EACCES``. Nothing is written to the real disk. On leaving, patching, the
pyfakefs user and group ids and the real filesystem are exactly as before,
even when the block raised.

With pytest, the ``addon_workload`` fixture (:mod:`addon_mount.pytest_plugin`)
gives the same as a factory. When pyfakefs is already patching (its ``fs``
fixture, or a ``Patcher`` of your own), the workload is built into that fake
filesystem instead of a new one, so ``fs.create_file`` and friends can add
files beside it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager

from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_filesystem_unittest import Patcher

from . import _harness
from ._harness import HarnessError
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import staging_root
from ._report import Finding, Link, Report
from ._runtime import RuntimeImage
from ._workload import ROOT_UID, running_as

__all__ = [
    "HarnessError",
    "StartedWorkload",
    "WorkloadFactory",
    "clear_cache",
    "time_bare_fs",
    "time_workload",
    "workload",
]

BundlePath = str | os.PathLike[str]
RuntimeArg = str | os.PathLike[str] | RuntimeImage | None


class StartedWorkload:
    """A workload after start-up: the verdict, and its filesystem patched in.

    ``ok``, ``findings``, ``links`` and ``report`` are those of
    :func:`addon_mount.check` for the same add-ons in the same runtime.
    While the workload is active (inside :func:`workload`, or until the test
    using the fixture ends), the process sees its filesystem as cdsw.
    """

    def __init__(self, session: _harness.Session, report: Report) -> None:
        self._session = session
        self._active = True
        #: The full report of the start-up (one runtime).
        self.report: Report = report

    # -- the verdict ----------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when no finding is an error: the workload started as intended."""
        return self.report.ok

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding, errors first within each add-on (see :class:`~addon_mount.Finding`)."""
        return self.report.findings

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of severity error."""
        return self.report.errors

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings of severity warning."""
        return self.report.warnings

    @property
    def links(self) -> tuple[Link, ...]:
        """The links the start-up created, in the order it created them."""
        return self.report.links

    def link(self, path: str) -> Link | None:
        """The link created at *path*, or ``None`` if the start-up created none there."""
        return next((link for link in self.links if link.path == path), None)

    def findings_for(self, addon: str) -> tuple[Finding, ...]:
        """The findings about add-on *addon* (its name in metadata.json)."""
        return self.report.findings_for(addon)

    @staticmethod
    def staging_root(addon: str) -> str:
        """Where add-on *addon* is mounted: ``/runtime-addons/custom-addon-<addon>``."""
        return staging_root(addon)

    # -- the filesystem ----------------------------------------------------------

    @property
    def runtime(self) -> RuntimeImage:
        """The runtime image the workload runs in."""
        return self._session.image

    @property
    def fs(self) -> FakeFilesystem:
        """The pyfakefs filesystem the process sees (the ``fs`` fixture's, if one is active)."""
        return self._session.fs

    @property
    def active(self) -> bool:
        """True until the workload's context ends (then the real filesystem is back)."""
        return self._active

    @contextmanager
    def as_user(self, uid: int, gid: int) -> Iterator[None]:
        """Run the block as another user in the fake filesystem, then as cdsw again."""
        self._require_active()
        with running_as(uid, gid):
            yield

    def as_root(self) -> AbstractContextManager[None]:
        """Run the block as root: to prepare files where cdsw may not write.

        The add-ons' mounts stay read-only for root too.
        """
        return self.as_user(ROOT_UID, ROOT_UID)

    def _require_active(self) -> None:
        if not self._active:
            raise HarnessError("the workload has ended: its filesystem is no longer patched in")

    def __repr__(self) -> str:
        state = "active" if self._active else "ended"
        return (
            f"<StartedWorkload runtime={self.runtime.name!r} links={len(self.links)} "
            f"findings={len(self.findings)} ok={self.ok} {state}>"
        )


@contextmanager
def workload(
    bundles: Sequence[BundlePath] | BundlePath,
    runtime: RuntimeArg = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[StartedWorkload]:
    """Start a workload with *bundles* enabled in *runtime*; patch it in for the block.

    *bundles* are bundle directories (``metadata.json`` and ``addon.tar.gz``),
    all enabled together; a single path is one bundle. *runtime* is what
    ``addon-mount check --runtime`` takes: a built-in runtime name, a snapshot
    file, a ``docker export`` tarball, a root directory, or a
    :class:`~addon_mount.RuntimeImage`; default the embedded default runtime.
    Runtimes and bundles are read from the real filesystem once per process
    and reused while unchanged; the first start-up with given inputs runs the
    simulation, later ones rebuild what it created and reuse its report.

    Yields the :class:`StartedWorkload`. A broken add-on does not raise: its
    findings are in ``findings`` and the rest of the workload is in place.
    Raises :class:`~addon_mount.CheckError` or
    :class:`~addon_mount.RuntimeLoadError` when an input cannot be read, and
    :class:`HarnessError` when a workload is already active or *runtime*
    names more than one runtime.

    On leaving, the patching, the pyfakefs user and group ids and (when it
    built into an active ``fs``) that filesystem's cwd and umask are put back.
    """
    if isinstance(bundles, str | os.PathLike):
        # Any path-like object: a path made while pyfakefs patches is not a pathlib.Path.
        bundles = [bundles]
    session, report = _harness.activate(bundles, runtime, limits)
    started = StartedWorkload(session, report)
    try:
        yield started
    finally:
        started._active = False
        _harness.deactivate(session)


class WorkloadFactory:
    """What the ``addon_workload`` fixture gives a test: call it to start the workload.

    ``addon_workload(*bundles, runtime=None)`` takes the arguments of
    :func:`workload` and returns the :class:`StartedWorkload`; the workload
    stays active until the test ends. One workload per test.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        #: The workload started by this factory, once called.
        self.started: StartedWorkload | None = None

    def __call__(
        self,
        *bundles: BundlePath | Sequence[BundlePath],
        runtime: RuntimeArg = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> StartedWorkload:
        """Start the workload: bundles as arguments (or one list), then as :func:`workload`.

        Raises :class:`HarnessError` on a second call: one workload per test.
        """
        if self.started is not None:
            raise HarnessError(
                "addon_workload was already called in this test: one workload per test "
                "(pass every bundle to one call; for another runtime, write another test)"
            )
        # addon_workload([a, b]) means addon_workload(a, b).
        flat: list[BundlePath] = []
        for item in bundles:
            if isinstance(item, str | os.PathLike):
                flat.append(item)
            else:
                flat.extend(item)
        self.started = self._stack.enter_context(workload(flat, runtime, limits=limits))
        return self.started

    def close(self) -> None:
        """End the workload, if one was started (the fixture does this after the test)."""
        self._stack.close()


def clear_cache() -> None:
    """Forget the runtimes, bundles and start-ups seen so far (the next workload redoes them)."""
    _harness.clear_caches()


# -- measuring the harness ----------------------------------------------------------


def time_workload(
    bundles: Sequence[BundlePath] | BundlePath,
    runtime: RuntimeArg = None,
    *,
    rounds: int = 25,
    body: Callable[[StartedWorkload], object] | None = None,
) -> list[float]:
    """Seconds per test the harness costs: entering and leaving :func:`workload`.

    One untimed round first reads the runtime and bundles into the process
    caches, as the first test of a session does; each timed round is then
    what every later test pays for its workload (set-up, the start-up,
    tear-down), plus *body* if given (called inside the workload, to time what
    a test does with it: the directories it touches are built then).

    Call it outside any fake filesystem: with pyfakefs already patching, the
    rounds would build into that filesystem and time something else.
    """
    _not_faked("time_workload")
    samples: list[float] = []
    for i in range(rounds + 1):
        started = time.perf_counter()
        with workload(bundles, runtime) as wl:
            if body is not None:
                body(wl)
        if i:
            samples.append(time.perf_counter() - started)
    return samples


def time_bare_fs(*, rounds: int = 25) -> list[float]:
    """Seconds per test pyfakefs's own ``fs`` fixture costs: a Patcher set up and torn down.

    The baseline for :func:`time_workload`: the ratio of their medians is the
    harness's cost relative to a bare fake filesystem. Call it outside any fake
    filesystem too.
    """
    _not_faked("time_bare_fs")
    ids = helpers.get_uid(), helpers.get_gid()
    samples: list[float] = []
    try:
        for i in range(rounds + 1):
            started = time.perf_counter()
            patcher = Patcher()
            patcher.setUp()
            patcher.tearDown()
            if i:
                samples.append(time.perf_counter() - started)
    finally:
        helpers.set_uid(ids[0])
        helpers.set_gid(ids[1])
    return samples


def _not_faked(what: str) -> None:
    if _harness.active_patcher() is not None:
        raise HarnessError(f"{what}() must run outside any fake filesystem (pyfakefs is patching)")
