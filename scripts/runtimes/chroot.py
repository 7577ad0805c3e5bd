"""The real root filesystems: debootstrap, and the apt layers installed in a chroot.

Needs root and the network (a Debian mirror, read from this machine's apt
configuration unless one is given). Every walk is kept as a snapshot file in
a work directory, named after what it captures, so a later build that changes
only modelled steps needs neither.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from addon_mount import _capture
from addon_mount._runtime import Entry, RuntimeImage

from .layers import AptLayer, LayerDiff, cache_key, chain


class BuildError(SystemExit):
    """The build cannot go on; the message says why (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"build_runtimes: {message}")


def walk_rootfs(rootfs: Path) -> list[Entry]:
    """Every recorded entry of the root at *rootfs*, read with lstat (the capture walk)."""
    report = _capture.WalkReport()
    entries = [Entry(*row) for row in _capture.walk(str(rootfs), report=report)]
    if report.unreadable or report.errors:
        raise BuildError(f"cannot read all of {rootfs}: {report.errors[:5]}")
    return entries


# -- the mirror ---------------------------------------------------------------------


def _deb822_uris(text: str, suite: str) -> Iterator[tuple[bool, str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith((" ", "\t", "#")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            yield suite in suites, uri


def _one_line_uris(text: str, suite: str) -> Iterator[tuple[bool, str]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[2] == suite, words[1]


def apt_mirror(suite: str, etc: Path = Path("/etc/apt")) -> str | None:
    """The first ``deb`` URI of this machine's apt sources, preferring one for *suite*."""
    found: list[tuple[bool, str]] = []
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        found.extend(_deb822_uris(path.read_text(errors="replace"), suite))
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            found.extend(_one_line_uris(path.read_text(errors="replace"), suite))
    for preferred in (True, False):
        for matches, uri in found:
            if matches is preferred:
                return uri
    return None


def hosts_of(uris: Iterable[str]) -> set[str]:
    return {urllib.parse.urlsplit(u).hostname or "" for u in uris} - {""}


def check_no_hosts(entries: Iterable[Entry], hosts: set[str]) -> None:
    """Refuse to write a catalog with a mirror's host name in any path or link target.

    apt's list files are named after the mirror; whatever the mirror, none may remain.
    """
    for entry in entries:
        if (
            entry.path.startswith("/var/lib/apt/lists/")
            and entry.path != "/var/lib/apt/lists/partial"
        ):
            raise BuildError(f"apt list file left in the model: {entry.path!r}")
        for host in hosts:
            if host in entry.path or (entry.target and host in entry.target):
                raise BuildError(f"a mirror host name is in {entry.path!r}")


# -- root filesystems ---------------------------------------------------------------


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise BuildError(f"{what} needs root (or reuse captures in the work directory)")


def debootstrap(suite: str, mirror: str, target: Path) -> None:
    """Run ``debootstrap --variant=minbase`` into *target* (needs root)."""
    _need_root("debootstrap")
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed (apt-get install debootstrap)")
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(target), mirror],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BuildError(f"debootstrap failed (exit {done.returncode}): {' / '.join(tail)}")


def install_layer(root: Path, layer: AptLayer, log: Path) -> None:
    """Run *layer*'s RUN in a chroot of *root*, with /proc mounted; its output goes to *log*."""
    _need_root("installing packages in a chroot")
    proc = root / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                ["chroot", str(root), "/bin/sh", "-ec", layer.command()],
                check=False,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    finally:
        subprocess.run(["umount", str(proc)], check=True)
    if done.returncode != 0:
        raise BuildError(f"layer {layer.name!r} failed (exit {done.returncode}); see {log}")
    if _capture.mount_points(str(root)):
        raise BuildError(f"mounts left under {root}; unmount them, then remove it")


def _copy_root(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)


def _remove_root(path: Path) -> None:
    if _capture.mount_points(str(path)):
        # Never rm -rf through a mount (a proc left mounted in the chroot).
        raise BuildError(f"mounts left under {path}; unmount them, then remove it")
    shutil.rmtree(path)


class Captures:
    """Walks of the base root and of each apt layer's result, kept as snapshot files."""

    def __init__(self, work: Path, suite: str, layers: Mapping[str, AptLayer]) -> None:
        self.work = work
        self.suite = suite
        self.layers = layers
        self.directory = work / "captures"

    def _file(self, key: str) -> Path:
        return self.directory / f"{key}.snap.gz"

    def base_key(self) -> str:
        return f"base-{self.suite}"

    def layer_key(self, name: str) -> str:
        return cache_key(self.layers, name, self.suite)

    def missing(self, names: Iterable[str]) -> list[str]:
        """The layers among *names* (and below them) whose capture is not in the work dir."""
        wanted: list[str] = []
        for name in names:
            current: str | None = name
            while current is not None:
                if current not in wanted:
                    wanted.append(current)
                current = self.layers[current].after
        return [n for n in wanted if not self._file(self.layer_key(n)).is_file()]

    def forget_others(self, names: Iterable[str]) -> list[Path]:
        """Remove captures and logs of layers not among *names* (old definitions); return them."""
        wanted = {layer.name for n in names for layer in chain(self.layers, n)}
        # Captures are named by key, logs by layer name.
        keep = {self.base_key(), *wanted, *(self.layer_key(n) for n in wanted)}
        stale = [
            path
            for path in sorted(self.directory.glob("*"))
            if path.name.removesuffix(".snap.gz").removesuffix(".log") not in keep
        ]
        for path in stale:
            path.unlink()
        return stale

    def _save(self, key: str, entries: list[Entry]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        rows = ((e.path, e.type, e.mode, e.uid, e.gid, e.size, e.target) for e in entries)
        meta = {"name": key, "description": f"capture {key}", "source": "build_runtimes"}
        _capture.write_snapshot(str(self._file(key)), rows, meta, force=True)

    def _load(self, key: str) -> list[Entry]:
        path = self._file(key)
        if not path.is_file():
            raise BuildError(f"no capture {path}; run the build as root to make it")
        image = RuntimeImage.from_snapshot(path)
        try:
            return list(image)
        finally:
            image.close()

    def base(self) -> list[Entry]:
        return self._load(self.base_key())

    def diff(self, name: str) -> LayerDiff:
        """What layer *name* did: its capture against the capture it was installed on."""
        layer = self.layers[name]
        before = self._load(self.layer_key(layer.after) if layer.after else self.base_key())
        return LayerDiff.between(before, self._load(self.layer_key(name)))

    def make(self, names: list[str], mirror: str | None, rootfs: Path | None) -> None:
        """Capture the base (unless there) and every layer in *names*, installing for real."""
        todo = self.missing(names)
        if not todo and self._file(self.base_key()).is_file():
            return
        roots = self.work / "roots"
        if roots.exists():
            _remove_root(roots)
        roots.mkdir(parents=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        base = roots / "base"
        try:
            if rootfs is not None:
                _copy_root(rootfs, base)
            else:
                if mirror is None:
                    raise BuildError("no apt mirror configured; pass --mirror URL")
                debootstrap(self.suite, mirror, base)
            self._save(self.base_key(), walk_rootfs(base))
            done: dict[str | None, Path] = {None: base}
            order = _in_order(self.layers, todo)
            # How many layers still to install on each root: the last one moves it.
            pending = {key: sum(1 for n in order if self.layers[n].after == key) for key in done}
            for name in order:
                layer = self.layers[name]
                parent = done[layer.after]
                pending[layer.after] -= 1
                root = roots / name
                if pending[layer.after] == 0:
                    parent.rename(root)
                    del done[layer.after]
                else:
                    _copy_root(parent, root)
                print(f"installing layer {name} ({len(layer.packages)} packages)", flush=True)
                install_layer(root, layer, self.directory / f"{name}.log")
                self._save(self.layer_key(name), walk_rootfs(root))
                pending[name] = sum(1 for n in order if self.layers[n].after == name)
                if pending[name]:
                    done[name] = root
                else:
                    _remove_root(root)
        finally:
            _remove_root(roots)


def _in_order(layers: Mapping[str, AptLayer], names: Iterable[str]) -> list[str]:
    """*names* with every layer below each, bottom first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        after = layers[name].after
        if after is not None:
            visit(after)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered
