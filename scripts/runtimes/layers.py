"""apt layers: what a Dockerfile's ``apt-get install`` did, captured from a real install.

A layer is installed for real, in a chroot of the Debian root (see
:mod:`.chroot`), and the root is walked before and after: the difference is
the layer (:class:`LayerDiff`). A runtime's model replays it at the point
of its Dockerfile where the ``RUN`` stands, so what the packages create
gets the owner that point gives it: root's after the ``chown`` step, cdsw's
before it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from addon_mount._runtime import Entry

from .tree import Tree

# The fields of an entry a layer can change (the path is the key).
_FIELDS = ("type", "mode", "uid", "gid", "size", "target")


@attrs.frozen
class AptLayer:
    """One ``RUN apt-get install`` of a Dockerfile, as installed in the chroot.

    *after* names the layer it is installed on top of (``None``: the bare
    Debian root). *packages* are Debian's names for the Dockerfile's
    packages; *before* and *script* are the rest of the ``RUN`` (shell, run
    as root in the chroot before and after the install). *note* says what
    stands in for what.
    """

    name: str
    packages: tuple[str, ...]
    after: str | None = None
    script: tuple[str, ...] = ()
    note: str = ""
    #: Shell run before the install (in the same RUN).
    before: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"apt-get install {' '.join(self.packages)}" + (
            f" ({self.note})" if self.note else ""
        )

    def command(self) -> str:
        """The shell command run in the chroot, as the Dockerfile's RUN does it."""
        parts = [
            *self.before,
            "apt-get update -q",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            + " ".join(self.packages),
            "apt-get clean",
            "rm -rf /var/lib/apt/lists/*",
            *self.script,
        ]
        return " && ".join(parts)


def chain(layers: Mapping[str, AptLayer], name: str) -> list[AptLayer]:
    """*name* and the layers below it, bottom first."""
    found: list[AptLayer] = []
    current: str | None = name
    while current is not None:
        layer = layers[current]
        found.append(layer)
        current = layer.after
    return found[::-1]


def cache_key(layers: Mapping[str, AptLayer], name: str, suite: str) -> str:
    """A name for *name*'s capture that changes whenever it or a layer below it does."""
    spec = [suite, *(attrs.asdict(layer) for layer in chain(layers, name))]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:12]}"


@attrs.frozen
class Change:
    """An entry a layer changed in place: as it was, and as the layer left it."""

    before: Entry
    after: Entry

    def fields(self) -> dict[str, Any]:
        """The fields the layer changed, with their new values."""
        return {
            f: getattr(self.after, f)
            for f in _FIELDS
            if getattr(self.before, f) != getattr(self.after, f)
        }


@attrs.frozen
class LayerDiff:
    """What one layer did to a root: entries added, changed in place, and removed."""

    added: tuple[Entry, ...] = ()
    changed: tuple[Change, ...] = ()
    removed: tuple[str, ...] = ()

    @classmethod
    def between(cls, before: Iterable[Entry], after: Iterable[Entry]) -> LayerDiff:
        """The difference of two walks of the same root, before and after the layer."""
        old = {e.path: e for e in before}
        new = {e.path: e for e in after}
        added = tuple(new[p] for p in sorted(new.keys() - old.keys()))
        changed = tuple(
            Change(old[p], new[p]) for p in sorted(new.keys() & old.keys()) if old[p] != new[p]
        )
        removed = tuple(sorted(old.keys() - new.keys()))
        return cls(added, changed, removed)

    def apply(self, tree: Tree) -> None:
        """Replay the layer on *tree*, as dpkg would have done it there.

        An added path the model already has as a directory keeps the model's
        owner and mode (dpkg leaves an existing directory alone); anything
        else the layer added replaces what the model has. A change is applied
        field by field (a maintainer script's ``chmod`` does not undo an
        earlier ``chown``). Removed paths go, with what is below them.
        """
        for path in self.removed:
            tree.remove(path)
        for entry in self.added:
            existing = tree.get(entry.path)
            if existing is not None and existing.is_dir and entry.is_dir:
                continue
            if existing is not None:
                tree.remove(entry.path)
            tree.put(entry)
        for change in self.changed:
            existing = tree.get(change.after.path)
            if (
                existing is None
                or existing.type != change.before.type
                or change.before.type != change.after.type
            ):
                if existing is not None:
                    tree.remove(existing.path)
                tree.put(change.after)
                continue
            tree.put(attrs.evolve(existing, **change.fields()))
