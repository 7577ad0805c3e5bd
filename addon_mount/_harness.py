"""The test harness's machinery: a started workload's whole filesystem on pyfakefs.

``addon_mount.testing`` is the public side; this module builds the filesystem.
It holds the runtime image, each add-on's archive mounted read-only under its
staging root, and what the simulated start-up created (links, directories).
Three pieces keep it cheap and faithful:

- Directories are lazy. A directory's children are put in place the first
  time anything lists or walks it, from an index of the runtime built once
  per process, by cloning prototype objects (about 1.5 µs an entry, where
  pyfakefs's constructors take about 10). A test pays for the directories it
  touches, not for the runtime's size.
- The runtime and the mounts are the check's own model,
  :class:`~addon_mount._view.WorkloadView`, and path resolution and
  ``os.access`` answer as Linux does (:mod:`addon_mount._linux`): search
  permission on every directory a path passes, physical ``..``, ELOOP.
- The staging areas are read-only subclasses of pyfakefs's file and directory
  objects: every change (a new entry, a removal, contents, mode, owner, times)
  raises EROFS whoever asks, as the kernel does for a read-only mount. Each
  staging root is its own device, so renames and hard links across it fail
  with EXDEV first, as on Linux.
- The start-up is the check's own :class:`~addon_mount._workload.Workload`,
  started in that filesystem, so the verdicts are the check's. In a fresh
  filesystem the outcome depends only on the runtime and the bundles: later
  start-ups with the same inputs replay what the first one created (its links
  and their parents) and reuse its report.
"""

from __future__ import annotations

import functools
import os
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import attrs
from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_filesystem_unittest import Patcher, Pause

from . import _linux, _session
from ._check import Bundle, read_bundle, staged_addons, start_workloads
from ._limits import DEFAULT_LIMITS, Limits
from ._metadata import PROJECT_VOLUME
from ._report import Report
from ._runtime import BUILTIN_PREFIX, RuntimeImage, builtin_names
from ._session import HarnessError
from ._view import Created, RuntimeIndex, WorkloadView, archive_children
from ._workload import (
    CDSW_GID,
    CDSW_UID,
    ROOT_UID,
    WORKLOAD_UMASK,
    Workload,
    running_as,
)

# What a workload needs even when a runtime snapshot lacks it: a shared
# temporary directory and the cdsw user's home (the project volume).
TMP_DIR: Final = "/tmp"  # noqa: S108 - the fake workload's /tmp, never the host's
TMP_MODE: Final = 0o1777


@attrs.frozen
class StagedBundle:
    """A bundle as read for the harness (archive contents kept), with its archive's tree."""

    bundle: Bundle
    children: Mapping[str, tuple[str, ...]]


# -- the caches ------------------------------------------------------------------

# Bundles read with their contents, by directory and the identity of its files.
_BUNDLES: dict[tuple[object, ...], StagedBundle] = {}
# Runtimes named by a string or a path, by what names them.
_RUNTIMES: dict[tuple[object, ...], RuntimeImage] = {}
# Indexes, by runtime image (a RuntimeImage given by a test has its own).
_INDEXES: weakref.WeakKeyDictionary[RuntimeImage, RuntimeIndex] = weakref.WeakKeyDictionary()
# Start-ups in a fresh filesystem, by runtime and bundles (ids, kept alive by the value).
_OUTCOMES: dict[tuple[int, ...], tuple[object, Report, tuple[Created, ...]]] = {}
# Runtimes with Cloudera add-ons attached, by (base image id, add-on names); the
# value holds the base too, so its id is not reused while the entry lives.
_ATTACHED: dict[tuple[int, tuple[str, ...]], tuple[RuntimeImage, RuntimeImage]] = {}
_CACHE_MAX: Final = 256


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.pop(next(iter(cache)))
    cache[key] = value


def clear_caches() -> None:
    """Forget every runtime, index, bundle and start-up seen so far."""
    _BUNDLES.clear()
    _RUNTIMES.clear()
    _INDEXES.clear()
    _OUTCOMES.clear()
    _ATTACHED.clear()
    _builtin_key.cache_clear()


def _bundle_key(directory: Path, limits: Limits) -> tuple[object, ...] | None:
    try:
        with os.scandir(directory) as scan:
            files = []
            for item in scan:
                if item.is_file():
                    st = item.stat()
                    files.append((item.name, st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        return None
    # The files' identities tell a changed bundle; abspath is enough to tell
    # directories apart (resolving symlinks would cost a syscall per component).
    return (str(directory.absolute()), tuple(sorted(files)), limits)


def _stage(directory: Path, limits: Limits, *, cache: bool) -> StagedBundle:
    key = _bundle_key(directory, limits) if cache else None
    cached = _BUNDLES.get(key) if key is not None else None
    if cached is not None:
        return cached
    bundle = read_bundle(directory, limits=limits, keep_contents=True)
    staged = StagedBundle(bundle, archive_children(bundle.archive) if bundle.archive else {})
    if key is not None:
        _remember(_BUNDLES, key, staged)
    return staged


def stage_bundle(directory: str | Path, limits: Limits = DEFAULT_LIMITS) -> StagedBundle:
    """Read a bundle with its archive's contents; cached while its files are unchanged."""
    return _stage(Path(directory), limits, cache=True)


@functools.cache
def _builtin_key(spec: str) -> tuple[object, ...] | None:
    # The same precedence as load_runtime: a string naming a built-in runtime is one.
    name = spec.removeprefix(BUILTIN_PREFIX)
    if spec.startswith(BUILTIN_PREFIX) or name in builtin_names():
        return ("builtin", name)
    return None


def _runtime_key(spec: str | Path) -> tuple[object, ...]:
    if isinstance(spec, str):
        key = _builtin_key(spec)
        if key is not None:
            return key
    path = Path(spec)
    try:
        st = path.stat()
    except OSError:
        return ("missing", str(spec))  # load_runtime raises; nothing is cached
    return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


def load_runtime_image(spec: str | os.PathLike[str] | RuntimeImage | None) -> RuntimeImage:
    """The runtime *spec* names, loaded once per process."""
    from ._check import load_runtimes  # noqa: PLC0415 - only this path needs the loaders
    from ._runtime import DEFAULT_RUNTIME  # noqa: PLC0415

    if isinstance(spec, RuntimeImage):
        return spec
    if spec is None:
        spec = DEFAULT_RUNTIME
    elif isinstance(spec, os.PathLike) and not isinstance(spec, Path):
        spec = Path(os.fspath(spec))  # a path made while pyfakefs patches
    if not isinstance(spec, str | Path):
        raise HarnessError(
            f"runtime={spec!r}: a workload runs in one runtime; give a built-in name, a "
            "snapshot, a docker-export tarball, a root directory or a RuntimeImage"
        )
    if str(spec) == "all":
        raise HarnessError(
            "runtime='all': a workload runs in one runtime; start one workload per runtime, "
            "or use addon_mount.check() to compare runtimes"
        )
    key = _runtime_key(spec)
    image = _RUNTIMES.get(key)
    if image is None:
        (image,) = load_runtimes(spec)
        _remember(_RUNTIMES, key, image)
    return image


def runtime_index(image: RuntimeImage) -> RuntimeIndex:
    """The index of *image*, built once per image."""
    index = _INDEXES.get(image)
    if index is None:
        index = RuntimeIndex.build(image)
        _INDEXES[image] = index
    return index


# -- patching ---------------------------------------------------------------------


def active_patcher() -> Patcher | None:
    """The pyfakefs Patcher patching this process (the ``fs`` fixture's), if any."""
    patcher = Patcher.PATCHER
    if patcher is None or Patcher.REF_COUNT < 1 or getattr(patcher, "fs", None) is None:
        return None
    return patcher


@contextmanager
def real_filesystem() -> Iterator[None]:
    """Run the block against the real filesystem, pausing pyfakefs if it is patching."""
    patcher = active_patcher()
    if patcher is None or not patcher.is_patching:
        yield
        return
    with Pause(patcher):
        yield


# -- one workload -------------------------------------------------------------------


def with_cloudera_addons(
    image: RuntimeImage, cloudera_addons: str | Sequence[str] | None
) -> RuntimeImage:
    """*image* with the Cloudera add-ons *cloudera_addons* names attached, once per process.

    A workload is one session, so the names must be add-ons one session can
    attach together (one Spark). ``None`` or ``"none"`` attaches nothing;
    add-ons the runtime shows already (or another of their kind) are not
    attached again.
    """
    from ._overlays import (  # noqa: PLC0415 - only this path needs the catalogue
        attach,
        combinations,
        selection,
        still_to_attach,
    )

    if cloudera_addons is None:
        return image
    try:
        chosen = selection(cloudera_addons)
    except ValueError as exc:
        raise HarnessError(f"cloudera_addons={cloudera_addons!r}: {exc}") from exc
    remaining = still_to_attach(image, chosen)
    if not remaining:
        return image
    sets = combinations(remaining)
    if len(sets) > 1:
        shown = "; ".join(", ".join(o.name for o in combo) for combo in sets)
        raise HarnessError(
            f"cloudera_addons={cloudera_addons!r}: a workload is one session, and one "
            f"session attaches one of each kind (one Spark); these are {len(sets)} "
            f"sessions ({shown}): start one workload per set, naming it"
        )
    names = tuple(o.name for o in sets[0])
    key = (id(image), names)
    found = _ATTACHED.get(key)
    if found is None or found[0] is not image:
        found = (image, attach(image, sets[0]))
        _remember(_ATTACHED, key, found)
    return found[1]


def _session_environment(image: RuntimeImage) -> dict[str, str]:
    """SPARK_HOME and the like, when Cloudera's add-ons are attached to *image*."""
    if not image.meta.get("overlays"):
        return {}
    from ._overlays import environment  # noqa: PLC0415 - only this path needs the catalogue

    return environment(image)


def _read_inputs(
    bundles: Iterable[str | os.PathLike[str]],
    runtime: str | os.PathLike[str] | RuntimeImage | None,
    limits: Limits,
    cloudera_addons: str | Sequence[str] | None = None,
) -> tuple[list[StagedBundle], RuntimeImage]:
    """Load the runtime and read the bundles from the real filesystem (pyfakefs paused)."""
    read: list[StagedBundle | Path] = []
    with real_filesystem():
        image = with_cloudera_addons(load_runtime_image(runtime), cloudera_addons)
        runtime_index(image)
        for directory in bundles:
            path = Path(directory)
            if active_patcher() is not None and not path.exists():
                read.append(path)  # perhaps made in the fake filesystem (the fs fixture)
            else:
                read.append(stage_bundle(path, limits))
    staged = [
        item if isinstance(item, StagedBundle) else _stage(item, limits, cache=False)
        for item in read
    ]
    return staged, image


def start(
    fs: FakeFilesystem, staged: Sequence[StagedBundle], image: RuntimeImage, *, fresh: bool
) -> Report:
    """Show *image* in *fs*, mount the add-ons and run the start-up; return its report.

    *fresh* says *fs* holds nothing of the caller's: pyfakefs's temporary
    directory is dropped so the filesystem is the runtime's, and the outcome
    depends only on the runtime and the bundles. The first such start-up runs
    the Workload; later ones with the same runtime and bundles replay what it
    created and reuse its report.
    """
    read = [s.bundle for s in staged]
    if isinstance(fs.root, _linux.objects.LazyDirectory):
        raise HarnessError(
            "this fake filesystem already holds a workload (a module- or session-scoped "
            "fs?): one workload per fake filesystem"
        )
    key = (id(image), *(id(s) for s in staged))
    outcome = _OUTCOMES.get(key) if fresh else None
    addons = staged_addons(read)
    trees = {
        s.bundle.spec.staging_root: s.children
        for s in staged
        if s.bundle.spec is not None and s.bundle.archive is not None
    }
    with running_as(ROOT_UID, ROOT_UID):
        if fresh:
            for name in list(fs.root.entries):
                fs.root.remove_entry(name)
        fs.umask = WORKLOAD_UMASK
        view = WorkloadView(image, addons, index=runtime_index(image), trees=trees)
        view.attach(fs)
        workload = Workload(image, addons, fs=fs, view=view)
        if outcome is not None:
            view.replay(outcome[2])
            report = outcome[1]
    if outcome is None:
        report = start_workloads(read, [workload])
        if fresh:
            _remember(_OUTCOMES, key, ((image, *staged), report, tuple(view.created())))
    with running_as(ROOT_UID, ROOT_UID):
        # What a workload always has, when the snapshot lacks it.
        view.add_directory(TMP_DIR, TMP_MODE, ROOT_UID, ROOT_UID)
        view.add_directory(PROJECT_VOLUME, 0o755, CDSW_UID, CDSW_GID)
    return report


@attrs.define
class Session:
    """An active workload: what it runs in, and what :func:`activate` changed, to put back."""

    fs: FakeFilesystem
    image: RuntimeImage
    patcher: Patcher | None
    ids: tuple[int, int]
    cwd: str
    umask: int
    #: The identity and process guards in place, once given (see :mod:`._session`).
    identity: _session.Saved | None = None


_ACTIVE: list[Session] = []


def activate(
    bundles: Iterable[str | os.PathLike[str]],
    runtime: str | os.PathLike[str] | RuntimeImage | None,
    limits: Limits,
    cloudera_addons: str | Sequence[str] | None = None,
) -> tuple[Session, Report]:
    """Start a workload and patch it in for the caller, as cdsw; undo with :func:`deactivate`."""
    if _ACTIVE:
        raise HarnessError(
            "a workload is already active in this process: one workload at a time "
            "(leave the first one's context first)"
        )
    staged, image = _read_inputs(bundles, runtime, limits, cloudera_addons)
    ids = helpers.get_uid(), helpers.get_gid()
    existing = active_patcher()
    patcher: Patcher | None = None
    if existing is None:
        patcher = Patcher()
        with _linux.objects.no_temp_dir():  # the runtime's /tmp is shown instead
            patcher.setUp()
        fs = patcher.fs
    else:
        fs = existing.fs
    if fs is None:  # pragma: no cover - a Patcher that is set up has a filesystem
        raise AssertionError("pyfakefs Patcher without a filesystem")
    session = Session(fs, image, patcher, ids, fs.cwd, fs.umask)
    _ACTIVE.append(session)
    try:
        report = start(fs, staged, image, fresh=patcher is not None)
        owner = patcher or existing
        os_module = owner.fake_modules.get("os") if owner is not None else None
        _linux.install(fs, os_module)
        session.identity = _session.enter(fs, os_module, _session_environment(image))
        fs.cwd = PROJECT_VOLUME
        helpers.set_uid(CDSW_UID)
        helpers.set_gid(CDSW_GID)
    except BaseException:
        deactivate(session)
        raise
    return session, report


def deactivate(session: Session) -> None:
    """Put back what :func:`activate` changed: identity, patching, ids, the fs's cwd, umask.

    A session already put back is left alone.
    """
    if not any(active is session for active in _ACTIVE):
        return
    try:
        if session.identity is not None:
            _session.leave(session.identity)
        _linux.uninstall(session.fs)
        if session.patcher is not None:
            session.patcher.tearDown()
        else:
            # The fs fixture's filesystem keeps the workload; give back its settings.
            session.fs.cwd = session.cwd
            session.fs.umask = session.umask
    finally:
        helpers.set_uid(session.ids[0])
        helpers.set_gid(session.ids[1])
        if session.identity is not None:
            # pyfakefs's tearDown clears tempfile's cached directory: give back the host's.
            tempfile.tempdir = session.identity.tempdir
        if session in _ACTIVE:
            _ACTIVE.remove(session)
