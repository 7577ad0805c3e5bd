"""Assemble each runtime from the captures and write the catalog: snapshots and catalog.json."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence

from addon_mount._runtime import Entry, RuntimeImage, new_snapshot_db, write_entries

from .catalog import DEFAULT, GENERATIONS, Runtime
from .layers import LayerDiff
from .steps import PRUNED_TREES, Context
from .tree import Tree

#: A budget for one snapshot, gzipped: the wheel carries every one.
MAX_BYTES = 300 * 1024
SOURCE = (
    "debootstrap --variant=minbase {suite} (Debian), walked with lstat; apt layers "
    "installed in a chroot of it and captured the same way"
)
NOTE = (
    " Inferred: a Debian {suite} minbase root stands in for Ubuntu's base image (both "
    "merged-/usr), and Debian's packages for Ubuntu's; Python, R, conda, CUDA and sbt "
    "trees are modelled by name with placeholder sizes; files (not directories) under "
    "documentation, locale and header trees are left out."
)


def assemble(base: Iterable[Entry], runtime: Runtime, layers: Mapping[str, LayerDiff]) -> Tree:
    """The tree *runtime*'s steps leave, starting from *base*."""
    tree = Tree(base)
    ctx = Context(layers)
    for step in runtime.steps:
        step(tree, ctx)
    return tree


def snapshot(tree: Tree, runtime: Runtime, suite: str) -> bytes:
    """The gzipped snapshot of *tree*: deterministic (sorted, no timestamps, gzip mtime 0)."""
    db = new_snapshot_db(":memory:")
    count = write_entries(db, tree.entries())
    generation = GENERATIONS[runtime.generation]
    meta = {
        "name": runtime.name,
        "description": runtime.description() + NOTE.format(suite=suite),
        "source": SOURCE.format(suite=suite),
        "steps": json.dumps([s.line for s in runtime.steps]),
        "entries": str(count),
        "default": "true" if runtime.name == DEFAULT else "false",
        "generation": generation.name,
        "edition": runtime.edition,
        "models": runtime.models,
        "dockerfile": runtime.dockerfile,
        "aliases": json.dumps(list(runtime.aliases)),
        "pruned": json.dumps(list(PRUNED_TREES)),
    }
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
    db.commit()
    # Rebuild the file compactly (REPLACE of '/' left a free page), for a stable image.
    db.execute("VACUUM")
    data = db.serialize()
    db.close()
    RuntimeImage.from_bytes(data, source=runtime.name).close()  # the result must open
    return gzip.compress(data, compresslevel=9, mtime=0)


def catalog_json(runtimes: Sequence[Runtime]) -> str:
    """``catalog.json``: the default, each runtime's aliases and generation, the generations."""
    data = {
        "default": DEFAULT,
        "runtimes": [
            {
                "name": r.name,
                "aliases": list(r.aliases),
                "generation": r.generation,
                "edition": r.edition,
            }
            for r in runtimes
        ],
        "generations": [
            {"name": g.name, "ubuntu": g.ubuntu, "covers": g.covers, "ordering": g.ordering}
            for g in GENERATIONS.values()
        ],
    }
    return json.dumps(data, indent=2) + "\n"
