"""What a workload shows at a path: the runtime image with the add-ons mounted.

One model, for the check and the test harness alike. Each add-on's archive
is mounted read-only at its staging root (``/runtime-addons/<dir>``), hiding
whatever the runtime has there; ``/runtime-addons`` itself appears with the
first mount. The view puts pyfakefs objects in place lazily: one entry when
a path walk needs it, a whole directory when something lists it.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

import attrs
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from ._archive import HARDLINK, ArchiveIndex
from ._linux import objects
from ._metadata import ADDON_MOUNT_ROOT, AddonSpec
from ._runtime import DIRECTORY, FILE, SYMLINK, Entry, RuntimeImage

_IN_A_MOUNT: Final = ADDON_MOUNT_ROOT + "/"

#: Where a custom add-on is mounted: ``/runtime-addons/`` + this, ``{name}`` filled in.
#: Cloudera's own add-ons' directories carry a suffix (``spark332-...-ht9wmb``), so a
#: directory named so followed by ``-<suffix>`` is taken as the same add-on.
DEFAULT_MOUNT_DIR = "custom-addon-{name}"


@attrs.frozen
class StagedAddon:
    """An add-on ready to mount: its validated spec, its archive index and its mount root."""

    spec: AddonSpec
    archive: ArchiveIndex
    root: str = attrs.field(
        default=attrs.Factory(lambda self: self.spec.staging_root, takes_self=True)
    )

    def target_of(self, path: str) -> str:
        """Where the link at *path* points: the path's place in the mounted archive."""
        return self.root + path


def mounted_dir(names: Iterable[str], addon: str, template: str = DEFAULT_MOUNT_DIR) -> str | None:
    """The directory among *names* (of /runtime-addons) that holds add-on *addon*, if any."""
    wanted = template.format(name=addon)
    for name in sorted(names):
        if name == wanted:
            return name
    for name in sorted(names):
        suffix = name[len(wanted) + 1 :]
        if (
            name.startswith(wanted + "-")
            and suffix
            and all(c.isascii() and (c.isalnum() or c in "-.") for c in suffix)
        ):
            return name
    return None


@attrs.frozen
class RuntimeIndex:
    """A runtime's entries by directory, built once (the harness lists whole directories)."""

    root: Entry
    #: Entries by path, and the child names of each directory.
    entries: Mapping[str, Entry]
    children: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, image: RuntimeImage) -> RuntimeIndex:
        entries: dict[str, Entry] = {}
        children: dict[str, list[str]] = {}
        root = Entry("/", DIRECTORY, 0o755)
        for entry in image:
            if entry.path == "/":
                root = entry
            else:
                entries[entry.path] = entry
                parent, _, name = entry.path.rpartition("/")
                children.setdefault(parent or "/", []).append(name)
        return cls(root, entries, {k: tuple(v) for k, v in children.items()})


def archive_children(archive: ArchiveIndex) -> dict[str, tuple[str, ...]]:
    """Each archive directory's child names ('' is the archive root)."""
    children: dict[str, list[str]] = {}
    for name in archive.members.keys() | archive.directories:
        if name:
            parent, _, base = name.rpartition("/")
            children.setdefault(parent, []).append(base)
    return {k: tuple(sorted(v)) for k, v in children.items()}


def is_stray(name: str) -> bool:
    """True for macOS metadata a Mac's tar adds: ``._*``, ``.DS_Store``, ``__MACOSX/``."""
    base = name.rpartition("/")[2]
    return base.startswith("._") or base == ".DS_Store" or "/__MACOSX/" in f"/{name}/"


def archive_entry(path: str, archive: ArchiveIndex, name: str) -> Entry | None:
    """The entry archive member *name* shows at *path* once mounted."""
    member = archive.get(name)
    if member is None:
        return None
    if member.type == HARDLINK:
        # A hard link is the file it names, under a second name.
        original = archive.members[member.linkname]
        return Entry(path, FILE, original.mode, original.uid, original.gid, original.size)
    if member.type == SYMLINK:
        return Entry(path, SYMLINK, 0o777, member.uid, member.gid, 0, member.linkname)
    return Entry(path, member.type, member.mode, member.uid, member.gid, member.size)


@attrs.frozen
class Created:
    """An entry the start-up created (a link, a directory cdsw made for one)."""

    path: str
    is_dir: bool
    st_mode: int
    uid: int
    gid: int
    contents: bytes


class _Mount:
    def __init__(self, addon: StagedAddon, children: Mapping[str, tuple[str, ...]] | None) -> None:
        self.addon = addon
        self.archive = addon.archive
        self._children = children

    @property
    def children(self) -> Mapping[str, tuple[str, ...]]:
        if self._children is None:
            self._children = archive_children(self.archive)
        return self._children


class WorkloadView:
    """The runtime and the mounted add-ons, shown in one pyfakefs filesystem.

    *index* lists whole directories fast (the harness); without it, the
    runtime image is asked one path at a time (the check). *trees* gives
    archives' directory listings already made (see :func:`archive_children`),
    by staging root.
    """

    def __init__(
        self,
        runtime: RuntimeImage,
        addons: Sequence[StagedAddon],
        *,
        index: RuntimeIndex | None = None,
        trees: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
        mount_dir: str = DEFAULT_MOUNT_DIR,
    ) -> None:
        self.runtime = runtime
        self.index = index
        trees = trees or {}
        self.mount_dir = mount_dir
        self.addons = tuple(self._place(a) for a in addons)
        self.mounts: dict[str, _Mount] = {
            a.root: _Mount(a, trees.get(a.spec.staging_root)) for a in self.addons
        }
        self.fs: FakeFilesystem | None = None

    def _place(self, addon: StagedAddon) -> StagedAddon:
        """Mount *addon* where the runtime already has it (a live session), else as named."""
        existing = self._runtime_names(ADDON_MOUNT_ROOT)
        found = mounted_dir(existing, addon.spec.name, self.mount_dir)
        name = found or self.mount_dir.format(name=addon.spec.name)
        root = f"{ADDON_MOUNT_ROOT}/{name}"
        return addon if root == addon.root else attrs.evolve(addon, root=root)

    def _runtime_names(self, path: str) -> tuple[str, ...]:
        if self.index is not None:
            return self.index.children.get(path, ())
        return tuple(e.path.rpartition("/")[2] for e in self.runtime.children(path))

    # -- the model: what is at a path ------------------------------------------------

    def mount_of(self, path: str) -> str | None:
        """The staging root of the mount *path* is in, if any."""
        for root in self.mounts:
            if path == root or path.startswith(root + "/"):
                return root
        return None

    def _runtime_entry(self, path: str) -> Entry | None:
        if self.index is not None:
            if path == "/":
                return self.index.root
            return self.index.entries.get(path)
        return self.runtime.get(path)

    def root_entry(self) -> Entry:
        return self._runtime_entry("/") or Entry("/", DIRECTORY, 0o755)

    def entry(self, path: str) -> tuple[Entry, bool] | None:
        """What is at *path* before start-up (no symlink followed), and if it is read-only."""
        root = self.mount_of(path)
        if root is not None:
            archive = self.mounts[root].archive
            if path == root:
                # The mount root takes the archive's own '.' entry when it has one.
                top = archive.members.get("")
                if top is not None:
                    return Entry(root, DIRECTORY, top.mode, top.uid, top.gid), True
                return Entry(root, DIRECTORY, 0o755), True
            found = archive_entry(path, archive, path[len(root) + 1 :])
            return None if found is None else (found, True)
        found = self._runtime_entry(path)
        if found is None and path == ADDON_MOUNT_ROOT and self.mounts:
            # The platform creates the mount point when it mounts the first add-on.
            found = Entry(ADDON_MOUNT_ROOT, DIRECTORY, 0o755)
        # What the runtime shows inside /runtime-addons/<dir> is an add-on already
        # mounted (Cloudera's attached, or a live session's): read-only, like ours.
        return None if found is None else (found, path.startswith(_IN_A_MOUNT))

    def lookup(self, path: str) -> Entry | None:
        """What the workload has at *path* before start-up (no symlinks followed)."""
        found = self.entry(path)
        return None if found is None else found[0]

    def names(self, path: str) -> Iterator[str]:
        """The names in directory *path* (a mount hides what the runtime has there)."""
        root = self.mount_of(path)
        if root is not None:
            yield from self.mounts[root].children.get(path[len(root) + 1 :], ())
            return
        runtime = self._runtime_names(path)
        yield from runtime
        if path == "/" and self.mounts and "runtime-addons" not in runtime:
            yield "runtime-addons"
        if path == ADDON_MOUNT_ROOT:
            yield from (
                r.rpartition("/")[2] for r in self.mounts if r.rpartition("/")[2] not in runtime
            )

    def contents_of(self, path: str) -> bytes | None:
        """The archive bytes of a mounted file, when the archive kept contents."""
        root = self.mount_of(path)
        if root is None or path == root:
            return None
        archive = self.mounts[root].archive
        if archive.contents is None:
            return None
        name = path[len(root) + 1 :]
        member = archive.members.get(name)
        if member is not None and member.type == HARDLINK:
            name = member.linkname
        return archive.contents.get(name)

    # -- objects -----------------------------------------------------------------------

    def attach(self, fs: FakeFilesystem) -> None:
        """Show the view in *fs*: its root becomes the runtime's root, filled lazily."""
        self.fs = fs
        root = self.root_entry()
        objects.graft(fs.root, self, "/", stat.S_IFDIR | root.mode, root.uid, root.gid)

    def make(self, name: str, entry: Entry, path: str, readonly: bool) -> FakeFile:
        """A new object for *entry*, not yet in any directory."""
        if self.fs is None:  # pragma: no cover - attach() comes first
            raise AssertionError("view not attached")
        if entry.is_dir:
            return objects.make_object(
                self.fs,
                name,
                stat.S_IFDIR | entry.mode,
                entry.uid,
                entry.gid,
                readonly=readonly,
                loader=self,
                path=path,
            )
        if entry.is_symlink:
            contents = (entry.target or "").encode("utf-8", "surrogateescape")
            st_mode = stat.S_IFLNK | 0o777
        else:
            # Runtime snapshots hold no contents: a runtime file reads as empty.
            contents = (readonly and self.contents_of(path)) or b""
            st_mode = entry.st_mode
        return objects.make_object(
            self.fs, name, st_mode, entry.uid, entry.gid, readonly=readonly, contents=contents
        )

    def _insert(self, directory: FakeDirectory, obj: FakeFile, path: str) -> None:
        objects.insert(directory, obj, mount=path in self.mounts)

    def load(self, directory: objects.LazyDirectory) -> None:
        """Put *directory*'s children in place; entries already there win."""
        path = directory._am_path
        existing = objects.unloaded_entries(directory)
        for name in self.names(path):
            child_path = objects.join(path, name)
            found = self.entry(child_path)
            if found is None:
                continue
            entry, readonly = found
            present = existing.get(name)
            if present is None:
                self._insert(directory, self.make(name, entry, child_path, readonly), child_path)
            elif entry.is_dir and type(present) is FakeDirectory:
                objects.graft(
                    present,
                    self,
                    child_path,
                    stat.S_IFDIR | entry.mode,
                    entry.uid,
                    entry.gid,
                    readonly=readonly,
                )

    def child(self, directory: FakeDirectory, name: str) -> FakeFile | None:
        """The child *name* of *directory*, put in place alone if the directory is not loaded."""
        present = objects.unloaded_entries(directory).get(name)
        if (
            present is not None
            or not isinstance(directory, objects.LazyDirectory)
            or directory.loaded
        ):
            return present
        path = objects.join(directory._am_path, name)
        found = self.entry(path)
        if found is None:
            return None
        obj = self.make(name, found[0], path, found[1])
        self._insert(directory, obj, path)
        return obj

    def add_directory(self, path: str, mode: int, uid: int, gid: int) -> None:
        """Create directory *path* (missing parents root's, 755) unless something is there."""
        if self.fs is None:  # pragma: no cover - attach() comes first
            raise AssertionError("view not attached")
        parent: FakeFile = self.fs.root
        current = "/"
        for part in path.strip("/").split("/"):
            current = objects.join(current, part)
            if not isinstance(parent, FakeDirectory):
                return
            obj = self.child(parent, part)
            if obj is None:
                last = current == path
                obj = objects.make_object(
                    self.fs,
                    part,
                    stat.S_IFDIR | (mode if last else 0o755),
                    *((uid, gid) if last else (0, 0)),
                    path=current,
                )
                self._insert(parent, obj, current)
            parent = obj

    # -- what the start-up created -------------------------------------------------------

    def created(self) -> list[Created]:
        """Every entry not made from the model, parents first (the start-up's work)."""
        if self.fs is None:  # pragma: no cover - attach() comes first
            raise AssertionError("view not attached")
        found: list[Created] = []

        def visit(directory: FakeDirectory, path: str) -> None:
            # Entries already in place only: an unloaded directory holds nothing created.
            for name, obj in objects.unloaded_entries(directory).items():
                child_path = objects.join(path, name)
                is_dir = isinstance(obj, FakeDirectory)
                if not objects.is_made(obj):
                    st = obj.stat_result
                    contents = b"" if is_dir else objects.byte_contents(obj)
                    found.append(
                        Created(child_path, is_dir, st.st_mode, st.st_uid, st.st_gid, contents)
                    )
                if isinstance(obj, FakeDirectory):
                    visit(obj, child_path)

        visit(self.fs.root, "/")
        return found

    def replay(self, created: Iterable[Created]) -> None:
        """Create *created* again: the start-up's work, without running it."""
        if self.fs is None:  # pragma: no cover - attach() comes first
            raise AssertionError("view not attached")
        for item in created:
            parent_path, _, name = item.path.rpartition("/")
            parent: FakeFile | None = self.fs.root
            for part in parent_path.split("/"):
                if part and isinstance(parent, FakeDirectory):
                    parent = self.child(parent, part)
            if not isinstance(parent, FakeDirectory):  # pragma: no cover - same model
                raise AssertionError(f"cannot replay {item.path!r}")  # noqa: TRY004 - a bug, not bad input
            new = objects.make_object(
                self.fs,
                name,
                item.st_mode,
                item.uid,
                item.gid,
                contents=item.contents,
                path=item.path,
                made=False,
            )
            self._insert(parent, new, item.path)


def describe_entry(entry: Entry) -> str:
    """'a file', 'a directory', 'a symlink to X', with owner and mode."""
    what = {DIRECTORY: "a directory", FILE: "a file", SYMLINK: "a symlink"}.get(
        entry.type, "a special file"
    )
    if entry.is_symlink:
        what += f" to {entry.target!r}"
    return f"{what} (owner uid {entry.uid}, mode {entry.mode:03o})"
