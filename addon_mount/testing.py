"""Test harness: run your code inside a simulated Cloudera AI workload.

A workload starts with the given add-ons enabled in one runtime, exactly as
:func:`addon_mount.check` simulates it, and then stays in place until it is
stopped: through pyfakefs, ``os``, ``open``, ``pathlib``, ``shutil`` and
friends see the workload's filesystem, as the session's ``cdsw`` user (uid
and gid 8536, ``HOME=/home/cdsw``)::

    from addon_mount import testing

    with testing.workload(["bundles/oracle-driver"]) as wl:
        wl.assert_ok()                                    # fails with the CLI's report
        with open("/opt/oracle/ojdbc8.jar", "rb") as f:   # the archive's bytes
            assert f.read(4) == b"PK\\x03\\x04"

What the filesystem holds:

- every entry of the runtime image, lazily (a directory's entries appear
  the first time it is listed or walked). Runtime snapshots record no
  contents, so a runtime file reads as empty, except ``/etc/passwd`` and
  ``/etc/group``, which hold the lines for root and cdsw;
- each add-on's archive under ``/runtime-addons/custom-addon-<name>/``,
  mounted read-only: its files read as the archive's bytes, and any change
  there (open for writing, create, mkdir, unlink, rename, chmod, chown,
  utime, truncate, symlink, setxattr), directly or through a link, raises
  ``OSError`` with ``errno.EROFS``;
- the links the start-up created, and the directories cdsw created for them;
- ``/tmp`` (mode 1777) and ``/home/cdsw`` (cdsw's, the working directory),
  added when the runtime lacks them.

The process is the session's: ``HOME``, ``USER`` and ``LOGNAME`` are set,
``pwd``, ``grp``, ``getpass.getuser()`` and ``os.path.expanduser`` answer
for cdsw, and starting a program (``subprocess``, ``os.system``,
``os.exec*``, ``os.spawn*``, ``os.posix_spawn``, ``os.fork``,
``multiprocessing``, ``pty``) raises :class:`CannotRunProgramError`: a fake
filesystem cannot run one. ``os.set*uid`` and ``os.set*gid`` act on the
simulated ids (cdsw may keep its own, nothing else: ``EPERM``), and the few
``os`` functions pyfakefs does not fake, which would reach the real system
(``os.mkfifo``, ``os.statvfs``, ``os.pread``...), raise
:class:`NotSimulatedError`. Who may change a file is Linux's: ``chmod``,
``chown``, ``lchown`` and ``utime`` with given times are the owner's
(``EPERM`` for others), ``truncate`` and ``utime`` to now need write
permission (``EACCES``), and the set-id bits are cleared as the kernel
clears them.

Permissions are the runtime's: where cdsw may not write, writing raises
``EACCES``. Nothing is written to the real disk. On stopping, patching, the
environment, the pyfakefs user and group ids and the real filesystem are
exactly as before, even when the block raised. Workloads run one at a
time; stop one (leave its block, or call :meth:`StartedWorkload.stop`) to
start the next.

With pytest, the ``addon_workload`` fixture (:mod:`addon_mount.pytest_plugin`)
gives the same as a factory. When pyfakefs is already patching (its ``fs``
fixture, or a ``Patcher`` of your own), the workload is built into that fake
filesystem instead of a new one, so ``fs.create_file`` and friends can add
files beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem

from . import _harness, _render
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import PROJECT_VOLUME, staging_root
from ._report import Finding, Link, Report
from ._runtime import BUILTIN_PREFIX, RuntimeImage, builtin_names, load_runtime
from ._session import CDSW_USER, CannotRunProgramError, HarnessError, NotSimulatedError
from ._workload import CDSW_GID, CDSW_UID, ROOT_UID

__all__ = [
    "CDSW_GID",
    "CDSW_HOME",
    "CDSW_UID",
    "CDSW_USER",
    "CannotRunProgramError",
    "HarnessError",
    "NotSimulatedError",
    "StartedWorkload",
    "WorkloadFactory",
    "clear_cache",
    "runtimes",
    "workload",
]

BundlePath = str | os.PathLike[str]
RuntimeArg = str | os.PathLike[str] | RuntimeImage | None

#: The session user's home, also the project's files and the working directory.
CDSW_HOME = PROJECT_VOLUME
#: The width :meth:`StartedWorkload.assert_ok` lays the report out for.
REPORT_WIDTH = 100


class StartedWorkload:
    """A workload after start-up: the verdict, and its filesystem patched in.

    ``ok``, ``findings``, ``links`` and ``report`` are those of
    :func:`addon_mount.check` for the same add-ons in the same runtime, and
    stay readable after the workload stops. While the workload is active
    (inside :func:`workload`, or until :meth:`stop` or the end of the test
    using the fixture), the process sees its filesystem as cdsw. Used as a
    context manager, it stops when the block ends.
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
        """Every finding: errors, then warnings, then notes (see :class:`~addon_mount.Report`)."""
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

    def assert_ok(self, *, strict: bool = False) -> None:
        """Fail unless the start-up had no error (with *strict*, no warning either).

        Raises ``AssertionError`` whose message is the report as
        ``addon-mount check`` prints it (at :data:`REPORT_WIDTH` columns).
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if self.ok and not (strict and self.warnings):
            return
        text = _render.report_text(self.report, strict=strict, width=REPORT_WIDTH)
        raise AssertionError(text)

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
        """True until the workload stops (then the real filesystem is back)."""
        return self._active

    def stop(self) -> None:
        """Stop the workload now: the real filesystem, identity and ids are back.

        The verdict (``ok``, ``findings``, ``report``...) stays readable.
        Stopping a stopped workload does nothing.
        """
        if self._active:
            self._active = False
            _harness.deactivate(self._session)

    def __enter__(self) -> StartedWorkload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @contextmanager
    def as_user(self, uid: int, gid: int) -> Iterator[None]:
        """Run the block as another user in the fake filesystem, then as cdsw again.

        A workload stopped inside the block keeps the ids :meth:`stop` put back.
        """
        self._require_active()
        previous = helpers.get_uid(), helpers.get_gid()
        helpers.set_uid(uid)
        helpers.set_gid(gid)
        try:
            yield
        finally:
            if self._active:
                helpers.set_uid(previous[0])
                helpers.set_gid(previous[1])

    def as_root(self) -> AbstractContextManager[None]:
        """Run the block as root: to prepare files where cdsw may not write.

        The add-ons' mounts stay read-only for root too.
        """
        return self.as_user(ROOT_UID, ROOT_UID)

    def _require_active(self) -> None:
        if not self._active:
            raise HarnessError("the workload has stopped: its filesystem is no longer patched in")

    def __repr__(self) -> str:
        state = "active" if self._active else "stopped"
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
    cloudera_addons: str | Sequence[str] | None = None,
) -> Iterator[StartedWorkload]:
    """Start a workload with *bundles* enabled in *runtime*; patch it in for the block.

    *bundles* are bundle directories (``metadata.json`` and ``addon.tar.gz``),
    all enabled together; a single path is one bundle, an empty list none.
    *runtime* is what ``addon-mount check --runtime`` takes: a built-in runtime
    name, a snapshot file, a ``docker export`` tarball, a root directory, or a
    :class:`~addon_mount.RuntimeImage`; default the embedded default runtime.
    Runtimes and bundles are read from the real filesystem once per process
    and reused while unchanged; the first start-up with given inputs runs the
    simulation, later ones rebuild what it created and reuse its report.

    *cloudera_addons* attaches Cloudera's own add-ons first, as a session
    with them enabled has them: names ``addon-mount runtimes`` lists
    (comma-separated, or a list), or ``"default"`` (the newest Spark, the
    Hadoop CLI and cmladdon). One session attaches one Spark, so the names
    must go together. Default: none, the runtime alone.

    Yields the :class:`StartedWorkload`. A broken add-on does not raise: its
    findings are in ``findings`` and the rest of the workload is in place.
    Raises :class:`~addon_mount.CheckError` or
    :class:`~addon_mount.RuntimeLoadError` when an input cannot be read, and
    :class:`HarnessError` when a workload is already active, *runtime*
    names more than one runtime, or *cloudera_addons* more than one session.

    On leaving (or at :meth:`StartedWorkload.stop`), the patching, the
    environment, the pyfakefs user and group ids and (when it built into an
    active ``fs``) that filesystem's cwd and umask are put back.
    """
    if isinstance(bundles, str | os.PathLike):
        # Any path-like object: a path made while pyfakefs patches is not a pathlib.Path.
        bundles = [bundles]
    _render.import_rich()  # for assert_ok(): see import_rich
    session, report = _harness.activate(bundles, runtime, limits, cloudera_addons)
    started = StartedWorkload(session, report)
    try:
        yield started
    finally:
        started.stop()


class WorkloadFactory:
    """What the ``addon_workload`` fixture gives a test: call it to start a workload.

    ``addon_workload(*bundles, runtime=None)`` takes the arguments of
    :func:`workload` and returns the :class:`StartedWorkload`, active until
    it is stopped or the test ends. Several workloads may run one after
    another in a test: stop one (``wl.stop()``, or use it in a ``with``
    block) before calling the factory again.
    """

    def __init__(self, runtime: RuntimeArg = None) -> None:
        self._stack = ExitStack()
        #: The runtime a call without ``runtime=`` uses (the ``addon_runtime`` fixture's).
        self.runtime: RuntimeArg = runtime
        #: The workload started last by this factory, once called.
        self.started: StartedWorkload | None = None

    def __call__(
        self,
        *bundles: BundlePath | Sequence[BundlePath],
        runtime: RuntimeArg = None,
        limits: Limits = DEFAULT_LIMITS,
        cloudera_addons: str | Sequence[str] | None = None,
    ) -> StartedWorkload:
        """Start a workload: bundles as arguments (or one list), then as :func:`workload`.

        Without *runtime*, the factory's runtime (``--addon-runtime``, or the
        ``addon_runtime`` parameter) or else the default one. Raises
        :class:`HarnessError` while the previous workload is still active.
        """
        if self.started is not None and self.started.active:
            raise HarnessError(
                "addon_workload was already called in this test and that workload is still "
                "active: call its stop() (or use it in a 'with' block) before starting "
                "another; to enable several add-ons together, pass every bundle to one call"
            )
        # addon_workload([a, b]) means addon_workload(a, b).
        flat: list[BundlePath] = []
        for item in bundles:
            if isinstance(item, str | os.PathLike):
                flat.append(item)
            else:
                flat.extend(item)
        chosen = self.runtime if runtime is None else runtime
        self.started = self._stack.enter_context(
            workload(flat, chosen, limits=limits, cloudera_addons=cloudera_addons)
        )
        return self.started

    def close(self) -> None:
        """Stop every workload this factory started (the fixture does this after the test)."""
        self._stack.close()


def runtimes(*specs: str | os.PathLike[str]) -> list[str]:
    """Runtimes to parametrize a test over: every built-in one, or those *specs* name.

    Each spec is what ``--runtime`` takes: ``"all"`` (every built-in
    runtime), a built-in name, or the path of a snapshot, a ``docker export``
    tarball or a root directory (returned absolute). A name that is neither
    raises :class:`~addon_mount.RuntimeLoadError`, naming the nearest
    built-in one. Each runtime is listed once, in the order given::

        @pytest.mark.parametrize("addon_runtime", testing.runtimes())
        def test_driver_everywhere(addon_workload): ...
    """
    chosen: list[str] = []
    same: dict[str, str] = {}  # a built-in's other name (cml-2025.01-r4.4 for cml-r) is it
    with _harness.real_filesystem():
        for spec in specs or ("all",):
            text = os.fspath(spec)
            if text == "all":
                found = builtin_names()
            elif Path(text).exists() and text not in builtin_names():
                found = [str(Path(text).absolute())]
            else:
                image = load_runtime(text)  # a name: raises, with the nearest, if it is none
                same[text.removeprefix(BUILTIN_PREFIX)] = image.meta.get("alias_of") or image.name
                image.close()
                found = [text.removeprefix(BUILTIN_PREFIX)]
            for name in found:
                known = {same.get(c, c) for c in chosen}
                if same.get(name, name) not in known:
                    chosen.append(name)
    return chosen


def clear_cache() -> None:
    """Forget the runtimes, bundles and start-ups seen so far (the next workload redoes them)."""
    _harness.clear_caches()
