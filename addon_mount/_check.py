"""The check: bundles and runtimes in, a report out.

Each archive is read once, whatever the number of runtimes; each runtime
gets its own simulated workload with every add-on mounted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

from ._archive import ArchiveError, ArchiveIndex, read_archive
from ._limits import DEFAULT_LIMITS, Limits
from ._log import get_logger
from ._metadata import AddonSpec, is_within, parse_metadata, staging_root
from ._overlays import Workloads
from ._overlays import merge as merge_workloads
from ._overlays import selection as overlay_selection
from ._overlays import variants as overlay_variants
from ._report import AddonSummary, Finding, Link, Report, RuntimeSummary, aggregate
from ._runtime import DEFAULT_RUNTIME, RuntimeImage, RuntimeLoadError
from ._view import DEFAULT_MOUNT_DIR, is_stray
from ._workload import StagedAddon, Workload

RuntimeSpec = str | Path | RuntimeImage

METADATA_NAME = "metadata.json"
ARCHIVE_NAME = "addon.tar.gz"
# How many unused archive entries to name before summarizing the rest.
UNUSED_SHOWN = 10


class CheckError(Exception):
    """The check could not run at all: a missing bundle, an unloadable runtime.

    Problems *inside* inputs that exist are findings in the report instead.
    """


class BundleError(CheckError):
    """A bundle path does not exist or cannot be read."""

    def __init__(self, bundle: Path, reason: str) -> None:
        self.bundle = bundle
        self.reason = reason
        super().__init__(f"bundle {str(bundle)!r} {reason}")


@attrs.frozen
class Bundle:
    """A bundle directory as read: the add-on's spec, its archive index, its findings."""

    directory: Path
    label: str
    spec: AddonSpec | None
    archive: ArchiveIndex | None
    summary: AddonSummary
    findings: tuple[Finding, ...]


def find_archive(directory: Path) -> tuple[Path | None, str]:
    preferred = directory / ARCHIVE_NAME
    if preferred.is_file():
        return preferred, ""
    candidates = sorted(p for p in directory.glob("*.tar.gz") if p.is_file())
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, f"bundle {directory.name!r} has no {ARCHIVE_NAME} and no other *.tar.gz"
    names = ", ".join(p.name for p in candidates)
    return None, (
        f"bundle {directory.name!r} has no {ARCHIVE_NAME} and several *.tar.gz "
        f"({names}); keep exactly one"
    )


def read_bundle(
    directory: str | Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    keep_contents: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Bundle:
    """Read a bundle directory: its metadata and a streamed index of its archive."""
    directory = Path(directory)
    if not directory.exists():
        raise BundleError(directory, "does not exist")
    if not directory.is_dir():
        raise BundleError(
            directory, "is not a directory (a bundle holds metadata.json and addon.tar.gz)"
        )
    try:
        # Listing first turns an unreadable directory into one clear message.
        next(directory.iterdir(), None)
    except OSError as exc:
        raise BundleError(directory, f"cannot be read: {exc.strerror or exc}") from exc
    label = directory.resolve().name or str(directory)
    archive_path, problem = find_archive(directory)
    return _read_parts(
        directory,
        label,
        directory / METADATA_NAME,
        archive_path,
        problem,
        limits=limits,
        keep_contents=keep_contents,
        progress=progress,
    )


def read_bundle_files(
    metadata: str | Path,
    archive: str | Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    keep_contents: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Bundle:
    """Read a bundle given as the two files the registration call uploads, whatever their names."""
    metadata, archive = Path(metadata), Path(archive)
    for path in (metadata, archive):
        if not path.is_file():
            raise CheckError(
                f"{str(path)!r} {'is not a file' if path.exists() else 'does not exist'}"
            )
    directory = metadata.parent
    label = directory.resolve().name or str(directory)
    return _read_parts(
        directory,
        label,
        metadata,
        archive,
        "",
        limits=limits,
        keep_contents=keep_contents,
        progress=progress,
    )


def _read_parts(
    directory: Path,
    label: str,
    metadata_path: Path,
    archive_path: Path | None,
    problem: str,
    *,
    limits: Limits,
    keep_contents: bool,
    progress: Callable[[int], None] | None,
) -> Bundle:
    findings: list[Finding] = []
    spec: AddonSpec | None = None
    raw_name: str | None = None
    raw_paths: tuple[str, ...] = ()
    has_metadata = metadata_path.is_file()
    if has_metadata:
        try:
            data = _read_limited(metadata_path, limits.max_metadata_bytes)
        except OSError as exc:
            raise BundleError(
                directory, f"cannot be read: {metadata_path}: {exc.strerror or exc}"
            ) from exc
        parsed = parse_metadata(data, fallback_name=label, source=str(metadata_path), limits=limits)
        findings.extend(parsed.findings)
        spec, raw_name, raw_paths = parsed.spec, parsed.raw_name, parsed.raw_paths
        if raw_name:
            label = raw_name
    else:
        findings.append(
            Finding(
                "AM100",
                f"bundle {directory.name!r} has no {METADATA_NAME}",
                addon=label,
                source=str(directory),
            )
        )

    archive: ArchiveIndex | None = None
    if archive_path is None:
        findings.append(Finding("AM101", problem, addon=label, source=str(directory)))
    else:
        try:
            archive = read_archive(
                archive_path,
                addon=label,
                staging_root=spec.staging_root
                if spec
                else (staging_root(raw_name) if raw_name else None),
                limits=limits,
                keep_contents=keep_contents,
                progress=progress,
            )
        except ArchiveError as exc:
            raise BundleError(directory, f"cannot be read: {exc}") from exc
        findings.extend(archive.findings)

    summary = AddonSummary(
        name=label,
        registered_name=spec.registered_name if spec else None,
        paths=raw_paths,
        bundle=str(directory),
        metadata_file=str(metadata_path) if has_metadata else None,
        archive_file=str(archive_path) if archive_path else None,
        members=archive.member_count if archive else 0,
    )
    return Bundle(directory, label, spec, archive, summary, tuple(findings))


def _read_limited(path: Path, limit: int) -> bytes:
    # Read one byte past the limit: enough to know it is exceeded, never the whole file.
    with path.open("rb") as f:
        return f.read(limit + 1)


def addon_collisions(bundles: Sequence[Bundle]) -> tuple[list[Finding], set[tuple[str, str]]]:
    """Paths two add-ons both claim, equal or nested, whatever their order.

    Returns a finding for each side and the (add-on, path) pairs the later
    add-on must not link (the earlier add-on's link stands).
    """
    findings: list[Finding] = []
    skip: set[tuple[str, str]] = set()
    specs = [b.spec for b in bundles if b.spec is not None]
    for i, first in enumerate(specs):
        for second in specs[i + 1 :]:
            if first.name == second.name:
                for spec, other in ((first, second), (second, first)):
                    findings.append(
                        Finding(
                            "AM311",
                            f"two bundles are named {spec.name!r}; only one add-on can be "
                            f"registered as {spec.registered_name}",
                            addon=spec.name,
                            path=other.staging_root,
                        )
                    )
                skip.update((second.name, p) for p in second.paths)
                continue
            for a in first.paths:
                for b in second.paths:
                    if not (is_within(a, b) or is_within(b, a)):
                        continue
                    relation = "the same path as" if a == b else "nested with"
                    findings.append(
                        Finding(
                            "AM310",
                            f"{a} is {relation} {b}, requested by add-on "
                            f"{second.name!r}; only one link can stand there",
                            addon=first.name,
                            path=a,
                        )
                    )
                    findings.append(
                        Finding(
                            "AM310",
                            f"{b} is {relation} {a}, requested by add-on "
                            f"{first.name!r}; only one link can stand there",
                            addon=second.name,
                            path=b,
                        )
                    )
                    skip.add((second.name, b))
    return findings, skip


def stray_files(bundle: Bundle) -> list[Finding]:
    """macOS metadata a Mac's tar adds: AppleDouble ``._*``, ``.DS_Store``, ``__MACOSX/``."""
    if bundle.archive is None:
        return []
    archive = bundle.archive
    addon = bundle.spec.name if bundle.spec else bundle.label
    found: list[Finding] = []
    for name in archive.sorted_names():
        if ("._" in name or "DS_Store" in name or "__MACOSX" in name) and is_stray(name):
            # A __MACOSX directory counts once, not once per file below it.
            if name.startswith("__MACOSX/") or "/__MACOSX/" in f"/{name}":
                continue
            found.append(
                Finding(
                    "AM250",
                    f"the archive holds {name!r}, macOS metadata that workloads would show "
                    "in the linked directories",
                    addon=addon,
                    path="/" + name,
                    source=archive.source,
                )
            )
    return found


def unused_entries(bundle: Bundle) -> list[Finding]:
    """Archive content that no requested path reaches (info)."""
    if bundle.spec is None or bundle.archive is None or not bundle.archive.complete:
        return []
    wanted = [p[1:] for p in bundle.spec.paths]
    archive = bundle.archive

    def reached(name: str) -> bool:
        return any(
            name == w or name.startswith(w + "/") or w.startswith(name + "/") for w in wanted
        )

    unused = [n for n in archive.sorted_names() if not reached(n)]
    tops: list[str] = []
    for name in unused:
        if not tops or not name.startswith(tops[-1] + "/"):
            tops.append(name)
    if not tops:
        return []
    shown = ", ".join(
        repr(t + ("/" if t in archive.directories else "")) for t in tops[:UNUSED_SHOWN]
    )
    more = f" and {len(tops) - UNUSED_SHOWN} more" if len(tops) > UNUSED_SHOWN else ""
    return [
        Finding(
            "AM230",
            f"the archive holds {shown}{more}, which no requested path reaches "
            f"({len(unused)} {'entry' if len(unused) == 1 else 'entries'} in all)",
            addon=bundle.spec.name,
            source=archive.source,
        )
    ]


def load_runtimes(runtime: RuntimeSpec | Iterable[RuntimeSpec] | None) -> list[RuntimeImage]:
    """Resolve the ``runtime=`` argument of :func:`check` to runtime images."""
    from ._runtime_sources import load_runtime  # noqa: PLC0415 - the loaders pull in tarfile walkers

    if runtime is None:
        runtime = [DEFAULT_RUNTIME]
    elif isinstance(runtime, str | Path | RuntimeImage):
        runtime = [runtime]
    images: list[RuntimeImage] = []
    for item in runtime:
        if isinstance(item, RuntimeImage):
            images.append(item)
        elif str(item) == "all":
            from ._runtime_sources import builtin_names, load_builtin  # noqa: PLC0415

            images.extend(load_builtin(name) for name in builtin_names())
        else:
            images.append(load_runtime(item))
    # A built-in's other name (cml-2025.01-r4.4 for cml-r) is the same runtime.
    seen: dict[str, str] = {}
    for image in images:
        same = image.meta.get("alias_of") or image.name
        if same in seen:
            also = "" if seen[same] == image.name else f" (as {seen[same]!r} too)"
            raise RuntimeLoadError(f"runtime {image.name!r} is given more than once{also}")
        seen[same] = image.name
    return images


def check(
    bundles: Sequence[str | Path | Bundle] | str | Path | Bundle,
    runtime: RuntimeSpec | Iterable[RuntimeSpec] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Callable[[Path], Callable[[int], None] | None] | None = None,
    cloudera_addons: str | Sequence[str] | None = None,
    mount_dir: str = DEFAULT_MOUNT_DIR,
) -> Report:
    """Dry-run a workload start-up with *bundles* enabled, in each runtime.

    *bundles* are bundle directories (metadata.json plus addon.tar.gz), or
    bundles already read (:func:`read_bundle_files`), all enabled together.
    *runtime* is a built-in runtime name, a snapshot file, a
    ``docker export`` tarball, a root directory, a :class:`RuntimeImage`, or a
    list of those; ``"all"`` means every built-in runtime. Default: the
    embedded default runtime.

    Each runtime is checked alone and with the Cloudera add-ons a session
    may attach (see :func:`simulate`); *cloudera_addons* chooses them:
    ``"default"`` (or ``None``), ``"none"``, ``"all"``, or add-on names.

    *progress*, given a bundle directory, may return a callback that is
    told how many compressed bytes of its archive have been read.

    *mount_dir* names an add-on's directory under ``/runtime-addons``
    (``{name}`` is filled in): the documented default is
    ``custom-addon-{name}``; a runtime that already has it, or it followed by
    ``-<suffix>``, has the add-on mounted (a live session's snapshot).

    Returns the :class:`Report`; raises :class:`CheckError` (or
    :class:`~addon_mount.RuntimeLoadError`) only when the check cannot run.
    """
    if isinstance(bundles, str | Path | Bundle):
        bundles = [bundles]
    try:  # a wrong add-on name stops the check before any archive is read
        overlay_selection(cloudera_addons)
    except ValueError as exc:
        raise CheckError(f"--cloudera-addons: {exc}") from exc
    images = load_runtimes(runtime)
    read = [
        b
        if isinstance(b, Bundle)
        else read_bundle(b, limits=limits, progress=progress(Path(b)) if progress else None)
        for b in bundles
    ]
    return simulate(read, images, cloudera_addons=cloudera_addons, mount_dir=mount_dir)


def staged_addons(read: Sequence[Bundle]) -> list[StagedAddon]:
    """The add-ons a workload mounts: every readable one, each name once."""
    staged: list[StagedAddon] = []
    for b in read:
        # A second bundle of the same name (AM311) is not mounted: the first one owns it.
        if (
            b.spec is not None
            and b.archive is not None
            and all(s.spec.name != b.spec.name for s in staged)
        ):
            staged.append(StagedAddon(b.spec, b.archive))
    return staged


def _shipped_symlink(finding: Finding, bundle: Bundle, read: Sequence[Bundle]) -> bool:
    """True for an AM212 whose absolute target an enabled add-on links and ships.

    ``usr/local/bin/tool -> /opt/tool/bin/tool`` in an add-on that also links
    ``/opt/tool`` (with ``opt/tool/bin/tool`` in its archive) does not point
    into the runtime: it points through the add-on's own link.
    """
    if finding.code != "AM212" or finding.path is None or bundle.archive is None:
        return False
    member = bundle.archive.members.get(finding.path[1:])
    target = member.linkname if member is not None else ""
    if not target.startswith("/"):
        return False
    for other in read:
        if other.spec is None or other.archive is None:
            continue
        for requested in other.spec.paths:
            if is_within(target, requested) and other.archive.get(target[1:]) is not None:
                return True
    return False


def start_workloads(read: Sequence[Bundle], workloads: Sequence[Workload]) -> Report:
    """Run the start-up of each workload (one per runtime) and report on all of them."""
    log = get_logger()
    findings: list[Finding] = [
        f for b in read for f in b.findings if not _shipped_symlink(f, b, read)
    ]
    collisions, skip = addon_collisions(read)
    findings.extend(collisions)
    for bundle in read:
        findings.extend(stray_files(bundle))
        findings.extend(unused_entries(bundle))
    links: list[Link] = []
    for workload in workloads:
        workload.start(skip=frozenset(skip))
        findings.extend(workload.findings)
        links.extend(workload.links)
        log.info(
            "runtime_checked",
            runtime=workload.runtime.name,
            links=len(workload.links),
            findings=len(workload.findings),
        )
    return Report(
        addons=tuple(b.summary for b in read),
        runtimes=tuple(
            RuntimeSummary(w.runtime.name, w.runtime.description, len(w.runtime)) for w in workloads
        ),
        links=tuple(links),
        findings=tuple(aggregate(findings)),
    )


def simulate(
    read: Sequence[Bundle],
    images: Sequence[RuntimeImage],
    *,
    cloudera_addons: str | Sequence[str] | None = None,
    mount_dir: str = DEFAULT_MOUNT_DIR,
) -> Report:
    """Run the start-up of already-read bundles in each runtime image.

    Each runtime is started alone, and again with each set of the Cloudera
    add-ons *cloudera_addons* chooses that one session can attach (one
    Spark at a time), those linked first (:mod:`addon_mount._overlays`).
    The report has one verdict per runtime: a finding that holds in some of
    its workloads only says in which.
    """
    try:
        chosen = overlay_selection(cloudera_addons)
    except ValueError as exc:
        raise CheckError(f"--cloudera-addons: {exc}") from exc
    staged = staged_addons(read)
    checked = [Workloads(image, tuple(overlay_variants(image, chosen))) for image in images]
    if "{name}" not in mount_dir or "/" in mount_dir:
        raise CheckError(
            f"mount directory {mount_dir!r} must hold {{name}} and no '/' "
            "(the default is 'custom-addon-{name}')"
        )
    workloads = [
        Workload(variant, staged, mount_dir=mount_dir)
        for group in checked
        for variant in group.images
    ]
    return merge_workloads(start_workloads(read, workloads), checked)
