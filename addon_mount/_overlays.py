"""Cloudera's own add-ons: what they put in a workload, attached to a runtime as overlays.

A workload meets more than its runtime image: Cloudera mounts its own
add-ons (Spark, the Hadoop CLI, cmladdon) under ``/runtime-addons/<dir>``
and links their paths into place at start-up, chosen per session or job.
A custom add-on that requests one of those paths collides with it.

The catalog (``_runtimes/overlays.json``) holds each add-on's paths and
directory with its evidence level. :func:`attach` makes the workload a
session that attaches them would have: a copy of the runtime with each
add-on's content mounted and its paths in place, as the start-up leaves
them, before any custom add-on is linked. :func:`variants` gives the
workloads a check covers, and :func:`merge` folds their findings back into
one verdict per runtime, each saying in which workloads it holds.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, Final

import attrs

from ._metadata import ADDON_MOUNT_ROOT, is_within
from ._report import Finding, Link, Report, RuntimeSummary
from ._runtime import DIRECTORY, FILE, SYMLINK, Entry, RuntimeImage, parent_of

#: What a collision with a Cloudera add-on says of the workloads it breaks.
IN_WORKLOADS_ATTACHING: Final = "in workloads that attach it"
#: --cloudera-addons words besides add-on names.
DEFAULT: Final = "default"
NONE: Final = "none"
ALL: Final = "all"

CDSW: Final = 8536
_TYPES: Final = {"d": DIRECTORY, "f": FILE, "l": SYMLINK}


@attrs.frozen
class OverlayPath:
    """A path a Cloudera add-on puts in the workload.

    ``how`` is ``link`` (a symlink into the add-on's mount, made by the
    start-up as cdsw, like a custom add-on's) or ``copy`` (a directory cdsw
    owns, filled from the add-on at start-up, which users may write to).
    """

    path: str
    how: str
    evidence: str
    note: str


@attrs.frozen
class Overlay:
    """One of Cloudera's add-ons, as addon-mount attaches it."""

    name: str
    title: str
    component: str
    version: str
    #: Add-ons of one group exclude each other: a session attaches one Spark.
    group: str | None
    directory: str
    directory_evidence: str
    #: Directory-name prefixes that identify the add-on in a captured session.
    seen: tuple[str, ...]
    evidence: str
    notes: str
    paths: tuple[OverlayPath, ...]
    #: The archive as mounted: (type letter, name, mode or link target).
    content: tuple[tuple[str, str, str], ...]
    #: Environment variables a session that attaches it has (SPARK_HOME...).
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> str:
        return f"{ADDON_MOUNT_ROOT}/{self.directory}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "component": self.component,
            "version": self.version,
            "group": self.group,
            "directory": self.directory,
            "directory_evidence": self.directory_evidence,
            "evidence": self.evidence,
            "notes": self.notes,
            "paths": [attrs.asdict(p) for p in self.paths],
            "environment": dict(self.environment),
            "default": self.name in default_names(),
        }

    def identifies(self, directory: str) -> bool:
        """True when a mount directory's name is this add-on's (suffixes vary by workspace)."""
        return directory == self.directory or directory.startswith(self.seen)


def _load() -> tuple[tuple[Overlay, ...], tuple[str, ...]]:
    text = resources.files("addon_mount").joinpath("_runtimes/overlays.json").read_text("utf-8")
    data = json.loads(text)
    overlays = tuple(
        Overlay(
            name=o["name"],
            title=o["title"],
            component=o["component"],
            version=o["version"],
            group=o["group"],
            directory=o["directory"],
            directory_evidence=o["directory_evidence"],
            seen=tuple(o["seen"]),
            evidence=o["evidence"],
            notes=o["notes"],
            paths=tuple(OverlayPath(**p) for p in o["paths"]),
            content=tuple((c[0], c[1], c[2]) for c in o["content"]),
            environment=tuple(o.get("environment", {}).items()),
        )
        for o in data["overlays"]
    )
    return overlays, tuple(data["default"])


@functools.cache
def _data() -> tuple[tuple[Overlay, ...], tuple[str, ...]]:
    return _load()


def catalog() -> tuple[Overlay, ...]:
    """Every Cloudera add-on addon-mount knows, in catalog order."""
    return _data()[0]


def default_names() -> tuple[str, ...]:
    """The add-ons a default check attaches (the newest Spark, the Hadoop CLI, cmladdon)."""
    return _data()[1]


def overlays_named(names: Iterable[str]) -> list[Overlay]:
    """The add-ons *names* name, each once, in catalog order; ValueError for an unknown name."""
    known = {o.name: o for o in catalog()}
    wanted = [n.strip() for n in names if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"no Cloudera add-on is named {unknown[0]!r} (known: {', '.join(known)})")
    return [o for o in catalog() if o.name in wanted]


def selection(value: str | Sequence[str] | None) -> list[Overlay]:
    """The add-ons ``--cloudera-addons`` chooses: ``default``, ``none``, ``all`` or names.

    Names may be given comma-separated, in one string or several. A value
    that names nothing (``""``) is a ValueError, not "none": a check without
    Cloudera's add-ons passes paths real workloads have, so it is asked for
    by name.
    """
    if value is None:
        return overlays_named(default_names())
    words = [w for part in ([value] if isinstance(value, str) else value) for w in part.split(",")]
    words = [w.strip() for w in words if w.strip()]
    if not words:
        raise ValueError(
            f"names no add-on; give '{NONE}' to check without Cloudera's add-ons, "
            f"'{DEFAULT}', '{ALL}', or names ({', '.join(o.name for o in catalog())})"
        )
    if words == [NONE]:
        return []
    if words == [ALL]:
        return list(catalog())
    if words == [DEFAULT]:
        return overlays_named(default_names())
    if {NONE, ALL, DEFAULT} & set(words):
        raise ValueError(f"'{NONE}', '{ALL}' and '{DEFAULT}' stand alone, not in a list")
    return overlays_named(words)


def combinations(chosen: Sequence[Overlay]) -> list[tuple[Overlay, ...]]:
    """The sets of *chosen* one session can attach together: one per choice in each group."""
    if not chosen:
        return []
    groups: dict[str, list[Overlay]] = {}
    always: list[Overlay] = []
    for overlay in chosen:
        if overlay.group is None:
            always.append(overlay)
        else:
            groups.setdefault(overlay.group, []).append(overlay)
    combos = itertools.product(*groups.values()) if groups else iter([()])
    order = {o.name: i for i, o in enumerate(catalog())}
    return [tuple(sorted((*combo, *always), key=lambda o: order[o.name])) for combo in combos]


# -- attaching ---------------------------------------------------------------------


def attached(image: RuntimeImage) -> list[dict[str, Any]]:
    """The Cloudera add-ons :func:`attach` put in *image* (its ``overlays`` meta value)."""
    raw = image.meta.get("overlays")
    if not raw:
        return []
    value: list[dict[str, Any]] = json.loads(raw)
    return value


def environment(image: RuntimeImage) -> dict[str, str]:
    """The environment variables the Cloudera add-ons attached to *image* give a session."""
    found: dict[str, str] = {}
    for info in attached(image):
        found.update(info.get("environment", {}))
    return found


def present(image: RuntimeImage) -> list[Overlay]:
    """The Cloudera add-ons *image* has already, in catalog order.

    Those :func:`attach` put there, and in a live session's capture those
    whose mount directory ``/runtime-addons`` shows.
    """
    names = {i["name"] for i in attached(image)}
    directories = [e.path.rpartition("/")[2] for e in image.children(ADDON_MOUNT_ROOT)]
    return [o for o in catalog() if o.name in names or any(o.identifies(d) for d in directories)]


def still_to_attach(image: RuntimeImage, chosen: Sequence[Overlay]) -> list[Overlay]:
    """The add-ons of *chosen* a session of *image* could still attach.

    Those it has already are left out, and so are the others of a group it
    has one of (a session that shows Spark 3.3 cannot attach a second
    Spark): what is left may still collide with a custom add-on there.
    """
    have = present(image)
    groups = {o.group for o in have if o.group is not None}
    return [o for o in chosen if o not in have and (o.group is None or o.group not in groups)]


def _missing_parents(
    image: RuntimeImage, path: str, placed: dict[str, Entry]
) -> list[Entry] | None:
    """Directories cdsw's ``mkdir -p`` makes for *path*; None if a parent is not a directory."""
    made: list[Entry] = []
    parent = parent_of(path)
    while parent != "/":
        existing = placed.get(parent) or image.get(parent)
        if existing is not None:
            if not existing.is_dir:
                return None
            break
        made.append(Entry(parent, DIRECTORY, 0o755, CDSW, CDSW))
        parent = parent_of(parent)
    return made[::-1]


def _content(overlay: Overlay) -> list[Entry]:
    """The add-on's mount: its directory and archive content, root's (inferred)."""
    root = overlay.root
    entries = {root: Entry(root, DIRECTORY, 0o755)}
    for kind, name, value in overlay.content:
        path = f"{root}/{name}"
        parent = parent_of(path)
        while parent not in entries and is_within(parent, root):
            entries[parent] = Entry(parent, DIRECTORY, 0o755)
            parent = parent_of(parent)
        if kind == "l":
            entries[path] = Entry(path, SYMLINK, 0o777, 0, 0, 0, value)
        else:
            entries[path] = Entry(path, _TYPES[kind], int(value, 8))
    return list(entries.values())


def attach(image: RuntimeImage, overlays: Sequence[Overlay]) -> RuntimeImage:
    """A copy of *image* as a workload that attaches *overlays* has it before custom add-ons.

    Each add-on is mounted at ``/runtime-addons/<directory>``; its ``link``
    paths are symlinks into the mount, owned by cdsw, and its ``copy`` paths
    directories cdsw owns with the add-on's files in them; parents missing
    from the runtime are made as cdsw's ``mkdir -p`` makes them. A path the
    runtime already has is left as it is (the add-on could not link it) and
    recorded as skipped. Add-ons *image* had attached already stay recorded.
    """
    placed: dict[str, Entry] = {}
    if image.get(ADDON_MOUNT_ROOT) is None:
        placed[ADDON_MOUNT_ROOT] = Entry(ADDON_MOUNT_ROOT, DIRECTORY, 0o755)
    record: list[dict[str, Any]] = list(attached(image))
    for overlay in overlays:
        for entry in _content(overlay):
            placed[entry.path] = entry
        done: list[str] = []
        skipped: list[str] = []
        made: list[str] = []
        for item in overlay.paths:
            parents = _missing_parents(image, item.path, placed)
            if parents is None or image.get(item.path) is not None or item.path in placed:
                skipped.append(item.path)
                continue
            for entry in parents:
                placed[entry.path] = entry
                made.append(entry.path)
            if item.how == "link":
                target = overlay.root + item.path
                placed[item.path] = Entry(item.path, SYMLINK, 0o777, CDSW, CDSW, 0, target)
            else:
                placed[item.path] = Entry(item.path, DIRECTORY, 0o755, CDSW, CDSW)
                for kind, name, value in overlay.content:
                    path = "/" + name
                    if not is_within(path, item.path) or path == item.path:
                        continue
                    if kind == "l":
                        placed[path] = Entry(path, SYMLINK, 0o777, CDSW, CDSW, 0, value)
                    else:
                        placed[path] = Entry(path, _TYPES[kind], int(value, 8), CDSW, CDSW)
            done.append(item.path)
        record.append(
            {
                "name": overlay.name,
                "title": overlay.title,
                "directory": overlay.directory,
                "placed": done,
                "skipped": skipped,
                "made": made,
                "environment": dict(overlay.environment),
            }
        )
    shown = "; ".join(
        f"the {o.title} at {o.root} ({', '.join(p.path for p in o.paths)})" for o in overlays
    )
    return image.derive(
        placed.values(),
        name=f"{image.name}+{'+'.join(o.name for o in overlays)}",
        description=f"{image.description} With Cloudera's add-ons attached: {shown}.",
        meta={"overlays": json.dumps(record), "base": image.meta.get("base") or image.name},
    )


def variants(image: RuntimeImage, chosen: Sequence[Overlay]) -> list[RuntimeImage]:
    """The workloads a check covers for *image*: alone first, then with each set of *chosen*.

    A runtime that already has some Cloudera add-ons (attached, or captured
    in a session that had them) is checked as it is, and with those of
    *chosen* it could still attach (:func:`still_to_attach`).
    """
    remaining = still_to_attach(image, chosen)
    if not remaining:
        return [image]
    return [image, *(attach(image, combo) for combo in combinations(remaining))]


# -- naming the add-on a path collides with ------------------------------------------------


def _identified(directory: str) -> Overlay | None:
    for overlay in catalog():
        if overlay.identifies(directory):
            return overlay
    return None


def _in_mount(path: str) -> tuple[str, str] | None:
    """(mount directory, workload path) for a path inside /runtime-addons/<dir>/."""
    match = re.fullmatch(rf"{ADDON_MOUNT_ROOT}/([^/]+)(/.*)?", path)
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


def collision(runtime: RuntimeImage, path: str, real: str, existing: Entry | None) -> str | None:
    """Whose entry stands at *real*, when it is a Cloudera add-on's: "the X add-on's /path".

    *path* is the requested path, *real* the same with its parents' symlinks
    resolved, *existing* the entry there. Known from what :func:`attach`
    recorded, or, in a captured session, from the mount directory's name.
    """
    for info in attached(runtime):
        root = f"{ADDON_MOUNT_ROOT}/{info['directory']}"
        if real in info.get("made", ()):
            child = next((p for p in info["placed"] if is_within(p, real)), real)
            return f"the directory {real} that the {info['title']}'s start-up makes for {child}"
        for placed in info["placed"]:
            if is_within(real, placed):
                return f"the {info['title']}'s {real}"
            if is_within(path, placed):
                return f"the {info['title']}'s {path}"
        if is_within(real, root):
            return f"the {info['title']}'s {real[len(root) :] or root}"
    inside = _in_mount(real)
    if inside is None and existing is not None and existing.is_symlink and existing.target:
        found = _in_mount(existing.target)
        if found is not None:
            inside = (found[0], path)
    if inside is not None:
        overlay = _identified(inside[0])
        if overlay is not None:
            return f"the {overlay.title}'s {inside[1] or f'{ADDON_MOUNT_ROOT}/{inside[0]}'}"
    return None


def containing(runtime: RuntimeImage, path: str, real: str) -> str | None:
    """Which Cloudera add-on's mount holds *path* (*real* resolved): "the X add-on's /path".

    The add-on's own path that *path* is inside when :func:`attach` put it
    there; in a captured session, the mount directory its name identifies.
    """
    for info in attached(runtime):
        for placed in info["placed"]:
            if is_within(path, placed) or is_within(real, placed):
                return f"the {info['title']}'s {placed}"
    inside = _in_mount(real)
    if inside is None:
        return None
    overlay = _identified(inside[0])
    return None if overlay is None else f"the {overlay.title}'s {ADDON_MOUNT_ROOT}/{inside[0]}"


# -- one verdict per runtime ---------------------------------------------------------------


@attrs.frozen
class Workloads:
    """The workloads checked for one runtime: the runtime alone, then with add-ons attached."""

    runtime: RuntimeImage
    images: tuple[RuntimeImage, ...]

    def attached_to(self, name: str) -> frozenset[str] | None:
        """The add-on names attached in the workload named *name*, if it is one of these."""
        for image in self.images:
            if image.name == name:
                return frozenset(i["name"] for i in attached(image))
        return None

    def summary(self) -> RuntimeSummary:
        description = self.runtime.description
        if len(self.images) > 1:
            sets = ["+".join(i["name"] for i in attached(image)) for image in self.images[1:]]
            description += (
                " Checked alone and with Cloudera's add-ons attached: " + "; ".join(sets) + "."
            )
        return RuntimeSummary(self.runtime.name, description, len(self.runtime))


def _titles(names: Iterable[str]) -> str:
    titles = [o.title.removesuffix(" add-on") for o in catalog() if o.name in set(names)]
    if len(titles) == 1:
        return f"the {titles[0]} add-on"
    return f"the {', '.join(titles[:-1])} and {titles[-1]} add-ons"


def where(found: Sequence[frozenset[str]], every: Sequence[frozenset[str]], message: str) -> str:
    """Which workloads a finding holds in, as a phrase; '' when it holds in all of them.

    *found* are the attached add-on sets of the workloads with the finding,
    *every* those of every workload checked for the runtime.
    """
    hit = set(found)
    if hit == set(every):
        return ""
    # The add-ons the message itself names, by title or by mount directory.
    named = {
        o.name for o in catalog() if f"the {o.title}'s" in message or f"/{o.directory}" in message
    }
    union = set().union(*every)
    attaching = [n for n in union if hit == {s for s in every if n in s}]
    if set(attaching) & named and IN_WORKLOADS_ATTACHING in message:
        return ""  # the message says so itself
    if attaching:
        chosen = [n for n in attaching if n in named] or attaching
        return f"only in workloads that attach {_titles(chosen)}"
    if hit == {frozenset()}:
        return "only in workloads without Cloudera's add-ons"
    without = [n for n in union if hit == {s for s in every if n not in s}]
    if without:
        return f"only in workloads without {_titles(without)}"
    shown = sorted("+".join(sorted(s)) or "no Cloudera add-on" for s in hit)
    return f"only in workloads with {'; '.join(shown)}"


def merge(report: Report, checked: Sequence[Workloads]) -> Report:
    """*report* of every workload, told per runtime: each finding once, saying where it holds."""
    owner: dict[str, tuple[Workloads, frozenset[str]]] = {}
    for group in checked:
        for image in group.images:
            sets = group.attached_to(image.name)
            owner[image.name] = (group, sets if sets is not None else frozenset())
    # Each finding, told per runtime, with how often each workload has it: the same
    # finding in several workloads is one; two in one workload (two bundles) stay two.
    found: dict[Finding, dict[frozenset[str], int]] = {}
    groups: dict[Finding, Workloads] = {}
    findings: list[Finding] = []
    for finding in report.findings:
        if finding.runtime is None or finding.runtime not in owner:
            findings.append(finding)
            continue
        group, sets = owner[finding.runtime]
        key = attrs.evolve(finding, runtime=group.runtime.name)
        counts = found.setdefault(key, {})
        counts[sets] = counts.get(sets, 0) + 1
        groups[key] = group
    for key, counts in found.items():
        checked_in = groups[key]
        every = [owner[i.name][1] for i in checked_in.images]
        phrase = where(list(counts), every, key.message) if len(every) > 1 else ""
        told = attrs.evolve(key, message=f"{key.message} ({phrase})") if phrase else key
        findings.extend([told] * max(counts.values()))
    links: dict[Link, None] = {}
    for link in report.links:
        base = owner[link.runtime][0].runtime.name if link.runtime in owner else link.runtime
        links.setdefault(attrs.evolve(link, runtime=base), None)
    return attrs.evolve(
        report,
        runtimes=tuple(g.summary() for g in checked),
        links=tuple(links),
        findings=tuple(findings),
    )
