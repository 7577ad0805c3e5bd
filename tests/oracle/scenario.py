"""Start-up scenarios: a runtime root tree, one add-on, the paths it requests.

:func:`generate` makes a scenario from a seed (the same seed, the same
scenario); :func:`write` lays it out on disk: the runtime as a real root tree
(owners, modes, symlinks as given) and the bundle directory (metadata.json
and an addon.tar.gz built in memory with numeric owners, hard links last). Run
``python -m tests.oracle.scenario SEED`` to print the scenario of a seed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import random
import sys
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

CDSW = 8536
ADDON = "tool"
MOUNT = f"/runtime-addons/custom-addon-{ADDON}"
DIR, FILE, LINK, HARD = "d", "f", "l", "h"
MTIME = 1_700_000_000

# Runtime owners (uid, gid): root, cdsw, another user, and mixed ones.
OWNERS = ((0, 0), (CDSW, CDSW), (1000, 1000), (0, CDSW), (CDSW, 0), (1000, CDSW))
DIR_MODES = (
    0o700, 0o711, 0o750, 0o755, 0o775, 0o777, 0o1777, 0o000, 0o2775, 0o555, 0o733, 0o703,
    0o770, 0o070, 0o707,
)  # fmt: skip
FILE_MODES = (0o644, 0o600, 0o640, 0o604, 0o000, 0o755, 0o700)
ROOT_MODES = (0o755, 0o755, 0o711, 0o700, 0o555, 0o775, 0o777, 0o1777)
# Archive owners are single ids (uid and gid drawn apart); 501 is a macOS builder's.
MEMBER_IDS = (0, 0, CDSW, 1000, 501)
MEMBER_FILE_MODES = (0o644, 0o644, 0o600, 0o700, 0o755, 0o000)
MEMBER_DIR_MODES = (0o755, 0o755, 0o700, 0o711, 0o750, 0o000, 0o555, 0o1777)
TOP = ("opt", "usr", "etc", "srv", "data", "var")
NAMES = ("a", "b", "bin", "lib", "x", "sub", "pub", "priv", "share", "conf", "local", "cache")
LINK_NAMES = ("ln", "ln2", "link", "cur", "alt", "lib64", "tmp")
NEW_NAMES = ("tool", "tool2", "cli", "driver", "plugin", "jdk")
MISSING_NAMES = ("vendor", "pkg", "new", "deep")
# Content below a requested directory, for the audit of what cdsw reaches through a link.
# 'lib' and 'lib.d' (or 'x-1'): a sibling that sorts between a directory and its children.
SUB_DIRS = ("bin", "sbin", "bin", "lib", "lib.d", "share", "x", "x-1")
SUB_FILES = ("run", "tool", "conf", "data", "a.sh", "b")
SUB_DIR_MODES = (0o755, 0o755, 0o700, 0o711, 0o750, 0o000)
SUB_FILE_MODES = (
    0o644, 0o644, 0o600, 0o640, 0o700, 0o750, 0o755, 0o755, 0o000, 0o711, 0o070, 0o604,
)  # fmt: skip
SUB_IDS = (0, 0, CDSW, 1000, 501)
# macOS metadata (AM250), skipped by the audit.
STRAYS = ("._run", "._tool", ".DS_Store")
# Paths the metadata stage refuses or warns about: never requested here.
RESERVED = ("/runtime-addons", "/home/cdsw", "/proc", "/sys", "/dev")


@dataclass(frozen=True)
class Node:
    """A runtime entry (absolute ``path``) or an archive member (relative name, '' is './')."""

    path: str
    type: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    target: str = ""

    def show(self) -> str:
        name = self.path if self.path else "./"
        owner = f"{self.uid}:{self.gid}"
        if self.type == LINK:
            return f"l      {owner:>9}  {name} -> {self.target}"
        if self.type == HARD:
            return f"h {self.mode:04o} {owner:>9}  {name} => {self.target} (hard link)"
        return f"{self.type} {self.mode:04o} {owner:>9}  {name}"


@dataclass(frozen=True)
class Scenario:
    """A runtime tree (``entries[0]`` is '/'), the add-on's members and its requested paths."""

    entries: tuple[Node, ...]
    members: tuple[Node, ...]
    paths: tuple[str, ...]
    seed: int | None = None
    label: str = ""

    @property
    def size(self) -> int:
        return len(self.entries) + len(self.members) + len(self.paths)

    def describe(self) -> str:
        if self.seed is None:
            title = f"scenario {self.label!r}"
        else:
            title = f"seed {self.seed}" + (f" ({self.label})" if self.label else "")
        lines = [f"{title}: add-on {ADDON!r} mounted at {MOUNT}", "  runtime tree:"]
        lines += [f"    {e.show()}" for e in self.entries]
        lines.append("  archive members:" if self.members else "  archive members: (none)")
        lines += [f"    {m.show()}" for m in self.members]
        lines.append(f"  requested paths: {', '.join(self.paths)}")
        return "\n".join(lines)


def _below(name: str, top: str, root: str) -> bool:
    """*name* is *top* or inside it (the archive root '' holds only itself here)."""
    return name == top or (top not in ("", root) and name.startswith(top.rstrip("/") + "/"))


def reductions(scn: Scenario, keep: str) -> list[Scenario]:
    """Each smaller scenario one removal away: another path, a member or an entry (with
    what is below it). *keep* stays requested."""
    label = "shrunk" if scn.seed is not None else scn.label
    smaller = []
    for path in scn.paths:
        if path != keep:
            paths = tuple(p for p in scn.paths if p != path)
            smaller.append(replace(scn, paths=paths, label=label))
    for member in scn.members:
        # A hard link goes with the file it names: tar cannot make it without that file.
        members = tuple(
            m
            for m in scn.members
            if not _below(m.path, member.path, "")
            and not (m.type == HARD and _below(m.target, member.path, ""))
        )
        smaller.append(replace(scn, members=members, label=label))
    for entry in scn.entries[1:]:
        entries = tuple(e for e in scn.entries if not _below(e.path, entry.path, "/"))
        smaller.append(replace(scn, entries=entries, label=label))
    return smaller


def common(scn: Scenario, variants: list[Scenario]) -> Scenario:
    """*scn* with every removal that any of *variants* made."""
    return replace(
        variants[0],
        entries=tuple(e for e in scn.entries if all(e in v.entries for v in variants)),
        members=tuple(m for m in scn.members if all(m in v.members for v in variants)),
        paths=tuple(p for p in scn.paths if all(p in v.paths for v in variants)),
    )


# -- building scenarios by hand ------------------------------------------------------


def d(path: str, mode: int = 0o755, uid: int = 0, gid: int | None = None) -> Node:
    """A directory (runtime path or member name); gid defaults to uid."""
    return Node(path, DIR, mode, uid, uid if gid is None else gid)


def f(path: str, mode: int = 0o644, uid: int = 0, gid: int | None = None) -> Node:
    """A regular file; gid defaults to uid."""
    return Node(path, FILE, mode, uid, uid if gid is None else gid)


def ln(path: str, target: str, uid: int = 0, gid: int | None = None) -> Node:
    """A symlink with its own owner; gid defaults to uid."""
    return Node(path, LINK, 0o777, uid, uid if gid is None else gid, target)


def hl(path: str, target: Node) -> Node:
    """An archive hard link to the file member *target* (its header has the file's mode
    and owner, as tar writes one)."""
    return Node(path, HARD, target.mode, target.uid, target.gid, target.path)


def scenario(
    entries: list[Node], members: list[Node], paths: list[str], label: str = ""
) -> Scenario:
    """A handwritten scenario; entries must start with '/' and list parents first."""
    if not entries or entries[0].path != "/":
        raise ValueError("the first entry is the root '/'")
    return Scenario(tuple(entries), tuple(members), tuple(paths), None, label)


# -- the generator -------------------------------------------------------------------


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def valid_request(path: str, others: list[str]) -> bool:
    """A path the metadata stage accepts and that nests with none of *others*."""
    if path == "/" or not path.startswith("/") or posixpath.normpath(path) != path:
        return False
    if any(_within(path, r) for r in RESERVED):
        return False
    return not any(_within(path, o) or _within(o, path) for o in others)


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.nodes: dict[str, Node] = {}
        self.members: dict[str, Node] = {}

    # the runtime tree

    def owner(self) -> tuple[int, int]:
        return self.rng.choice(OWNERS)

    def tree(self) -> None:
        rng = self.rng
        cloudera = rng.random() < 0.6
        if cloudera:
            uid, gid = (CDSW, CDSW) if rng.random() < 0.8 else (0, 0)
            self.nodes["/"] = d("/", 0o755, uid, gid)
        else:
            uid, gid = self.owner()
            self.nodes["/"] = d("/", rng.choice(ROOT_MODES), uid, gid)
        for top in rng.sample(TOP, rng.randint(2, 4)):
            self.directory("/" + top, 1, cloudera)
        if rng.random() < 0.25:
            self.sticky()
        for _ in range(rng.randint(1, 5)):
            self.symlink()

    def dir_attrs(self, cloudera: bool) -> tuple[int, int, int]:
        rng = self.rng
        if cloudera and rng.random() < 0.6:
            return 0o755, CDSW, CDSW
        if rng.random() < 0.3:
            return 0o755, 0, 0
        uid, gid = self.owner()
        return rng.choice(DIR_MODES), uid, gid

    def directory(self, path: str, depth: int, cloudera: bool) -> None:
        rng = self.rng
        mode, uid, gid = self.dir_attrs(cloudera)
        self.nodes[path] = d(path, mode, uid, gid)
        for _ in range(rng.randint(0 if depth > 1 else 1, max(0, 3 - depth))):
            name = rng.choice(NAMES)
            child = f"{path}/{name}"
            if child in self.nodes:
                continue
            if rng.random() < 0.6:
                self.directory(child, depth + 1, cloudera)
            else:
                uid, gid = self.owner() if rng.random() < 0.5 else (0, 0)
                self.nodes[child] = f(child, rng.choice(FILE_MODES), uid, gid)

    def dirs(self) -> list[str]:
        return [p for p, n in self.nodes.items() if n.type == DIR]

    def of_type(self, kind: str) -> list[str]:
        return [p for p, n in self.nodes.items() if n.type == kind and p != "/"]

    def free_name(self, parent: str, names: tuple[str, ...]) -> str | None:
        for name in self.rng.sample(names, len(names)):
            path = posixpath.join(parent, name)
            if path not in self.nodes:
                return path
        return None

    def sticky(self) -> None:
        """A shared /tmp-like directory holding another user's link to a directory."""
        rng = self.rng
        parent = rng.choice(self.dirs())
        path = self.free_name(parent, ("tmp", "shared", "scratch"))
        if path is None:
            return
        self.nodes[path] = d(path, 0o1777, *rng.choice(((0, 0), (1000, 1000), (CDSW, CDSW))))
        link = f"{path}/ln"
        target = rng.choice([p for p in self.dirs() if p != path])
        self.nodes[link] = ln(link, target, *rng.choice(OWNERS))

    def symlink(self) -> None:
        rng = self.rng
        dirs = self.dirs()
        sticky = [p for p in dirs if self.nodes[p].mode & 0o1000]
        parent = rng.choice(sticky if sticky and rng.random() < 0.3 else dirs)
        path = self.free_name(parent, LINK_NAMES)
        if path is None:
            return
        uid, gid = self.owner() if rng.random() < 0.4 else (0, 0)
        kind = rng.choices(
            ("dir", "file", "chain", "loop", "self", "dangling", "mount", "dotdot"),
            (30, 8, 10, 10, 5, 15, 5, 7),
        )[0]
        absolute = rng.random() < 0.5
        target: str
        if kind in ("dir", "dotdot"):
            target = rng.choice([p for p in dirs if p != parent] or dirs)
            absolute = absolute and kind == "dir"
        elif kind == "file":
            target = rng.choice(self.of_type(FILE) or dirs)
        elif kind == "chain":
            target = rng.choice(self.of_type(LINK) or dirs)
        elif kind == "loop":
            name = posixpath.basename(path)
            other = self.free_name(parent, tuple(n for n in LINK_NAMES if n != name))
            if other is None:
                return
            self.nodes[other] = ln(other, posixpath.basename(path), uid, gid)
            target = other
        elif kind == "self":
            target = path
        elif kind == "dangling":
            base = rng.choice(dirs)
            target = posixpath.join(base, rng.choice(("gone", "gone/deeper", "x/y/z")))
            if target in self.nodes:
                return
        else:
            target = rng.choice((MOUNT, MOUNT, "/runtime-addons", f"{MOUNT}/opt"))
            absolute = True
        if not absolute:
            target = posixpath.relpath(target, parent)
        self.nodes[path] = ln(path, target, uid, gid)

    # the requested paths

    def request(self, taken: list[str]) -> str | None:
        rng = self.rng
        dirs = self.dirs()
        links = self.of_type(LINK)
        files = self.of_type(FILE)
        existing = [p for p in self.nodes if p != "/"]
        new = rng.choice(NEW_NAMES)
        kind = rng.choices(
            ("new", "existing", "below-link", "below-file", "missing", "via-link", "top"),
            (25, 12, 20, 6, 20, 8, 5),
        )[0]
        path: str | None = None
        if kind == "new":
            path = posixpath.join(rng.choice(dirs + links), new)
        elif kind == "existing":
            path = rng.choice(existing)
        elif kind == "below-link" and links:
            path = posixpath.join(rng.choice(links), new)
        elif kind == "below-file" and files:
            path = posixpath.join(rng.choice(files), new)
        elif kind == "missing":
            levels = rng.sample(MISSING_NAMES, rng.randint(1, 3))
            path = posixpath.join(rng.choice(dirs + links), *levels, new)
        elif kind == "via-link" and links:
            # Through a link, to something that exists behind it (or not).
            link = rng.choice(links)
            target = posixpath.normpath(
                posixpath.join(posixpath.dirname(link), self.nodes[link].target)
            )
            children = [p for p in self.nodes if posixpath.dirname(p) == target and p != "/"]
            name = posixpath.basename(rng.choice(children)) if children else new
            path = posixpath.join(link, name)
        elif kind == "top":
            path = posixpath.join("/", rng.choice((new, f"{rng.choice(MISSING_NAMES)}/{new}")))
        if path is None or not valid_request(path, taken):
            return None
        return path

    def requests(self) -> list[str]:
        paths: list[str] = []
        wanted = self.rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]
        for _ in range(wanted * 10):
            if len(paths) == wanted:
                break
            path = self.request(paths)
            if path is not None:
                paths.append(path)
        return paths

    # the archive

    def member_id(self) -> tuple[int, int]:
        return self.rng.choice(MEMBER_IDS), self.rng.choice(MEMBER_IDS)

    def add(self, node: Node) -> None:
        self.members.setdefault(node.path, node)

    def free_member(self, name: str) -> bool:
        """No member at or below *name*, and every listed ancestor is a directory."""
        if name in self.members or any(m.startswith(name + "/") for m in self.members):
            return False
        parts = name.split("/")
        for i in range(1, len(parts)):
            above = self.members.get("/".join(parts[:i]))
            if above is not None and above.type != DIR:
                return False
        return True

    def ancestors(self, name: str) -> None:
        rng = self.rng
        parts = name.split("/")
        for i in range(1, len(parts)):
            above = "/".join(parts[:i])
            if above in self.members or rng.random() < 0.5:
                continue  # listed already, or left implied (tar makes it root's, 755)
            if rng.random() < 0.7:
                self.add(d(above))
            else:
                uid, gid = self.member_id()
                self.add(d(above, rng.choice(MEMBER_DIR_MODES), uid, gid))

    def file_member(self, name: str) -> None:
        uid, gid = self.member_id()
        self.add(f(name, self.rng.choice(MEMBER_FILE_MODES), uid, gid))

    def dir_member(self, name: str, children: bool = True) -> None:
        rng = self.rng
        uid, gid = self.member_id() if rng.random() < 0.5 else (0, 0)
        self.add(d(name, rng.choice(MEMBER_DIR_MODES), uid, gid))
        if children and rng.random() < 0.8:
            self.subtree(name, 1)
        elif children:
            for child in rng.sample(("f1", "d1"), rng.randint(0, 2)):
                if child == "f1":
                    self.file_member(f"{name}/f1")
                else:
                    self.dir_member(f"{name}/d1", children=False)

    def sub_id(self) -> tuple[int, int]:
        return self.rng.choice(SUB_IDS), self.rng.choice(SUB_IDS)

    def subtree(self, name: str, depth: int) -> None:
        """Content for the audit: nested directories, files (in bin/ and sbin/ too), hard
        links to files, macOS metadata files."""
        rng = self.rng
        in_bin = posixpath.basename(name) in ("bin", "sbin")
        for _ in range(rng.randint(2, 6 - depth)):
            kind = rng.choices(("dir", "file", "hard", "stray", "symlink"), (30, 45, 10, 10, 5))[0]
            if kind == "dir" and depth < 4:
                child = f"{name}/{rng.choice(SUB_DIRS)}"
                if child not in self.members:
                    self.add(d(child, rng.choice(SUB_DIR_MODES), *self.sub_id()))
                    self.subtree(child, depth + 1)
            elif kind == "hard":
                files = [
                    m
                    for m in self.members.values()
                    if m.type == FILE and posixpath.basename(m.path) not in STRAYS
                ]
                child = f"{name}/{rng.choice(SUB_FILES)}"
                if files and child not in self.members:
                    self.add(hl(child, rng.choice(files)))
            elif kind == "symlink":
                # To anything of the add-on, inside the linked directory or out of it.
                others = [m.path for m in self.members.values() if m.path not in (name, "")]
                child = f"{name}/{rng.choice(SUB_FILES)}"
                if others and child not in self.members:
                    target = posixpath.relpath(rng.choice(others), name)
                    self.add(ln(child, target, *self.sub_id()))
            elif kind == "stray":
                mode = rng.choice((0o644, 0o000, 0o600))
                self.add(f(f"{name}/{rng.choice(STRAYS)}", mode, 501, 20))
            else:
                child = f"{name}/{rng.choice(SUB_FILES)}"
                mode = rng.choice(
                    (0o644, 0o755) if in_bin and rng.random() < 0.3 else SUB_FILE_MODES
                )
                self.add(f(child, mode, *self.sub_id()))

    def member_for(self, name: str) -> None:
        rng = self.rng
        parts = name.split("/")
        if len(parts) >= 2 and rng.random() < 0.07:
            # A parent of the member is a file, or a symlink to a sibling directory.
            parent = "/".join(parts[:-1])
            if not self.free_member(parent):
                return
            self.ancestors(parent)
            if rng.random() < 0.5:
                self.file_member(parent)
            else:
                real = parent + ".d"
                self.add(ln(parent, posixpath.basename(real)))
                self.dir_member(real, children=False)
                if rng.random() < 0.6:
                    self.file_member(f"{real}/{parts[-1]}")
            return
        if not self.free_member(name):
            return
        self.ancestors(name)
        kind = rng.choices(("missing", "file", "dir", "symlink"), (10, 30, 38, 22))[0]
        if kind == "file":
            self.file_member(name)
        elif kind == "dir":
            self.dir_member(name)
        elif kind == "symlink":
            self.symlink_member(name)

    def symlink_member(self, name: str) -> None:
        rng = self.rng
        base = posixpath.basename(name)
        uid, gid = self.member_id() if rng.random() < 0.3 else (0, 0)
        kind = rng.choices(
            ("file", "dir", "dangling", "loop", "self", "dotdot", "runtime", "mount"),
            (20, 20, 12, 10, 5, 10, 13, 10),
        )[0]
        real = f"{name}.real"
        target = f"{base}.real"
        if kind == "file":
            self.file_member(real)
        elif kind == "dir":
            self.dir_member(real)
        elif kind == "dangling":
            target = f"{base}.gone"
        elif kind == "loop":
            self.add(ln(f"{name}.loop", base, uid, gid))
            target = f"{base}.loop"
        elif kind == "self":
            target = base
        elif kind == "dotdot" and name.count("/") >= 2:
            # '..' that stays inside the add-on: a/b/c -> ../other/c.real
            up = posixpath.dirname(posixpath.dirname(name))
            other = f"{up}/other"
            if not self.free_member(other) and self.members.get(other, d("")).type != DIR:
                return
            self.file_member(f"{other}/{base}.real")
            target = f"../other/{base}.real"
        elif kind == "runtime":
            pool = [p for p in self.nodes if p != "/"] + ["/nowhere/at/all"]
            target = rng.choice(pool)
        elif kind == "mount":
            self.file_member(real)
            target = f"{MOUNT}/{real}" if rng.random() < 0.7 else f"{MOUNT}/{name}.gone"
        else:
            self.file_member(real)
        self.add(ln(name, target, uid, gid))

    def archive(self, paths: list[str]) -> list[Node]:
        rng = self.rng
        if rng.random() < 0.15:
            uid, gid = self.member_id()
            mode = rng.choice((0o755, 0o700, 0o711, 0o750, 0o000, 0o555, 0o777))
            self.members[""] = d("", mode, uid, gid)
        for path in paths:
            self.member_for(path[1:])
        return sorted(self.members.values(), key=lambda m: m.path.split("/"))

    def scenario(self) -> Scenario:
        self.tree()
        paths = self.requests()
        members = self.archive(paths)
        entries = sorted(self.nodes.values(), key=lambda n: n.path.split("/")[1:])
        return Scenario(tuple(entries), tuple(members), tuple(paths), self.seed)


def generate(seed: int) -> Scenario:
    """The scenario of *seed*: always the same one."""
    return _Generator(seed).scenario()


# -- writing a scenario to disk ------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a written scenario is: the runtime root, the bundle, the kernel's scratch dir."""

    root: Path
    bundle: Path
    scratch: Path

    @property
    def archive(self) -> Path:
        return self.bundle / "addon.tar.gz"


def archive_bytes(members: tuple[Node, ...]) -> bytes:
    """addon.tar.gz: each member with its mode and numeric owner (no user or group names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        # Hard links last: each after the file it names.
        for member in sorted(members, key=lambda m: m.type == HARD):
            info = tarfile.TarInfo(member.path or ".")
            info.mode = member.mode
            info.uid, info.gid = member.uid, member.gid
            info.uname = info.gname = ""
            info.mtime = MTIME
            data = b""
            if member.type == DIR:
                info.type = tarfile.DIRTYPE
            elif member.type == LINK:
                info.type = tarfile.SYMTYPE
                info.linkname = member.target
            elif member.type == HARD:
                info.type = tarfile.LNKTYPE
                info.linkname = member.target
            else:
                data = f"{member.path}\n".encode()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)


def write(scn: Scenario, base: Path) -> Layout:
    """Lay *scn* out under *base* (which must exist): root/, bundle/, and scratch/ to be."""
    root = base / "root"
    root.mkdir()
    real = {e.path: root / e.path[1:] for e in scn.entries}
    for entry in scn.entries[1:]:
        if entry.type == DIR:
            real[entry.path].mkdir()
        elif entry.type == FILE:
            real[entry.path].write_bytes(b"runtime file\n")
        else:
            real[entry.path].symlink_to(entry.target)
    # Owners first (a symlink's own owner matters to fs.protected_symlinks), then
    # modes, directories deepest first and the root last.
    for entry in scn.entries:
        os.chown(real[entry.path], entry.uid, entry.gid, follow_symlinks=False)
    for entry in scn.entries:
        if entry.type == FILE:
            real[entry.path].chmod(entry.mode)
    for entry in sorted(scn.entries, key=lambda e: -e.path.count("/") - (e.path != "/")):
        if entry.type == DIR:
            real[entry.path].chmod(entry.mode)
    bundle = base / "bundle"
    bundle.mkdir()
    metadata = {"name": ADDON, "spec": {"paths": list(scn.paths)}}
    (bundle / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (bundle / "addon.tar.gz").write_bytes(archive_bytes(scn.members))
    return Layout(root, bundle, base / "scratch")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(generate(int(arg)).describe())
