"""The workload: a simulated start-up on pyfakefs, run as the cdsw user.

For one runtime, the workload mounts each add-on's archive read-only under
``/runtime-addons/custom-addon-<name>/`` and then, as uid 8536 gid 8536
with no supplementary groups, symlinks each requested path to it, exactly
as a Cloudera AI workload does at start-up. Every verdict comes from a
system call of :class:`~addon_mount._linux.LinuxFS` and the errno it gives,
the kernel's (``tests/test_kernel_oracle.py`` holds the two equal).

The runtime and the archives are indexes (:class:`~addon_mount._view.WorkloadView`):
an entry is put in the fake filesystem only when a path walk reaches it, so
the cost of a check does not depend on the runtime's size.
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem

from ._audit import ContentAudit
from ._linux import (
    ROOT,
    Cred,
    LinuxError,
    LinuxFS,
    describe,
    errno_name,
    objects,
)
from ._log import get_logger
from ._metadata import AddonSpec
from ._report import Finding, Link
from ._runtime import SYMLINK, RuntimeImage, parent_of
from ._view import (
    DEFAULT_MOUNT_DIR,
    StagedAddon,
    WorkloadView,
    describe_entry,
)

__all__ = ["CDSW_GID", "CDSW_UID", "ROOT_UID", "StagedAddon", "Workload", "running_as"]

CDSW_UID = 8536
CDSW_GID = 8536
ROOT_UID = 0
#: Who links: cdsw, with no supplementary groups (a pod's fsGroup would add some).
CDSW = Cred(CDSW_UID, CDSW_GID)
# A workload's umask: cdsw creates directories 755.
WORKLOAD_UMASK = 0o022


@contextmanager
def running_as(uid: int, gid: int) -> Iterator[None]:
    """Run the block as *uid*/*gid* in pyfakefs, restoring the previous ids after."""
    previous = helpers.get_uid(), helpers.get_gid()
    helpers.set_uid(uid)
    helpers.set_gid(gid)
    try:
        yield
    finally:
        helpers.set_uid(previous[0])
        helpers.set_gid(previous[1])


class Workload:
    """One runtime's filesystem with the given add-ons mounted, on pyfakefs."""

    def __init__(
        self,
        runtime: RuntimeImage,
        addons: Sequence[StagedAddon],
        *,
        fs: FakeFilesystem | None = None,
        view: WorkloadView | None = None,
        mount_dir: str = DEFAULT_MOUNT_DIR,
    ) -> None:
        """Prepare the workload; *fs* is a fake filesystem to start up in (default: a new one).

        A given *fs* is used as it is (the test harness passes one that
        already shows the whole runtime through *view*).
        """
        self.runtime = runtime
        if view is None:
            view = WorkloadView(runtime, addons, mount_dir=mount_dir)
            if fs is None:
                fs = objects.new_filesystem(WORKLOAD_UMASK)
            view.attach(fs)
        elif fs is None:
            fs = view.fs
        if fs is None:  # pragma: no cover - a view is attached before use
            raise AssertionError("workload without a filesystem")
        self.fs = fs
        self.view = view
        # Placed by the view: where the runtime already mounts one, there.
        self.addons = view.addons
        self._staged = {a.spec.name: a for a in self.addons}
        self.linux = LinuxFS(fs, lookup=objects.lookup_child, umask=WORKLOAD_UMASK)
        self.findings: list[Finding] = []
        self.links: list[Link] = []
        # What cdsw reaches through each link, and the programs found there.
        self._content = ContentAudit(self.linux, self.view, CDSW, runtime.name, self.add)
        self._log = get_logger().bind(runtime=runtime.name)

    # -- the model -------------------------------------------------------------------

    def lookup(self, path: str) -> object | None:
        """What the workload has at *path* before start-up (no symlinks followed)."""
        return self.view.lookup(path)

    # -- the simulated start-up ---------------------------------------------------------

    def mount(self) -> None:
        """Mount every add-on's archive (the platform does this as root)."""
        for addon in self.addons:
            root = addon.root
            if self.runtime.get(root) is not None:
                # A live session's snapshot: the add-on is mounted already. Its archive
                # is shown there; links that point into it are in place.
                self.add(
                    Finding(
                        "AM312",
                        f"the runtime already mounts {root}: taken as add-on "
                        f"{addon.spec.name!r} in place (a live session's snapshot); if it "
                        "is another add-on, the name is taken",
                        addon=addon.spec.name,
                        runtime=self.runtime.name,
                        path=root,
                    )
                )
            self._log.info(
                "staged", addon=addon.spec.name, root=root, members=len(addon.archive.members)
            )

    def start(self, skip: frozenset[tuple[str, str]] = frozenset()) -> None:
        """Mount the add-ons, then link each requested path as cdsw.

        *skip* holds (add-on, path) pairs not to link (those already reported as
        colliding with another add-on).
        """
        self.mount()
        for addon in self.addons:
            for path in addon.spec.paths:
                if (addon.spec.name, path) not in skip:
                    self.link(addon.spec, path)
        self._content.check_programs()

    def link(self, spec: AddonSpec, path: str) -> bool:
        """Create one link as cdsw and check what it reaches; True if it was created."""
        addon = self._staged[spec.name]
        target = addon.target_of(path)
        existing = self.view.lookup(path)
        if existing is not None and existing.is_symlink and existing.target == target:
            self.finding(
                "AM312",
                f"{path} is linked to {target} already: in place (a live session's snapshot)",
                spec,
                path,
            )
            self._check_reachable(spec, path, target)
            return False
        try:
            self.linux.symlink(target, path, CDSW)
        except LinuxError as exc:
            if exc.errno != errno.ENOENT or not self._make_parents(spec, path):
                if exc.errno != errno.ENOENT:
                    self._link_failed(spec, path, exc)
                return False
            try:
                self.linux.symlink(target, path, CDSW)
            except LinuxError as again:
                self._link_failed(spec, path, again)
                return False
        self.links.append(Link(path, target, spec.name, self.runtime.name))
        self._log.info("linked", addon=spec.name, path=path, target=target)
        self._check_reachable(spec, path, target)
        return True

    def _make_parents(self, spec: AddonSpec, path: str) -> bool:
        """``mkdir -p`` the link's parent as cdsw; report and return False if it fails."""
        parent = parent_of(path)
        try:
            created = self.linux.makedirs(parent, 0o755, CDSW)
        except LinuxError as exc:
            self._log.info(
                "link_failed", addon=spec.name, path=path, errno=errno_name(exc.errno), step="mkdir"
            )
            if exc.errno in (errno.ENOENT, errno.EEXIST):
                self._broken_parent(spec, path, exc)
            elif exc.errno in (errno.EACCES, errno.EPERM):
                self.finding(
                    "AM320",
                    f"cannot link {path}: its parent {parent} does not exist and cdsw "
                    f"(uid {CDSW_UID}) cannot create it: it {self._blocker(exc)}"
                    + self._instead(path, exc),
                    spec,
                    path,
                )
            else:
                self._link_failed(spec, path, exc)
            return False
        if not created:  # pragma: no cover - symlink said ENOENT, so something was missing
            return True
        real = [self._real_path(d) for d in created]
        shown = parent if real[-1] == parent else f"{parent} ({real[-1]})"
        self.finding(
            "AM330",
            f"{shown} does not exist in the runtime; cdsw created {real[0]} "
            f"(mode {0o777 & ~WORKLOAD_UMASK:03o}) to link {path}",
            spec,
            path,
        )
        self._log.info("parent_created", addon=spec.name, path=path, created=real)
        return True

    def _real_path(self, path: str) -> str:
        """*path* with the symlinks of its parents resolved (/lib/x -> /usr/lib/x)."""
        try:
            walked = self.linux.walk(path, ROOT, follow=False)
        except LinuxError:
            return path
        return walked.path

    def _link_failed(self, spec: AddonSpec, path: str, error: LinuxError) -> None:
        code = error.errno or 0
        self._log.info("link_failed", addon=spec.name, path=path, errno=errno_name(code))
        if code == errno.EEXIST:
            # Only a collision asks whose entry it is: one of Cloudera's add-ons, or the runtime's.
            from ._overlays import IN_WORKLOADS_ATTACHING, collision  # noqa: PLC0415

            real = self._real_path(path)
            existing = self.view.lookup(real)
            what = describe_entry(existing) if existing else "an entry"
            theirs = collision(self.runtime, path, real, existing)
            message = (
                f"cannot link {path}: it collides with {theirs} {IN_WORKLOADS_ATTACHING}"
                if theirs
                else f"cannot link {path}: the runtime already has {what} there"
            )
            self.finding("AM301", message, spec, path)
        elif code == errno.EROFS:
            self._in_a_mount(spec, path, error)
        elif code == errno.ENOTDIR:
            self._not_a_directory(spec, path, error)
        elif code in (errno.EACCES, errno.EPERM):
            self.finding(
                "AM320",
                f"cannot link {path}: cdsw (uid {CDSW_UID}) {self._blocker(error)}"
                + self._instead(path, error),
                spec,
                path,
            )
        elif code == errno.ELOOP:
            self._broken_parent(spec, path, error)
        else:
            self.finding(
                "AM390",
                f"cannot link {path}: the kernel would refuse with {errno_name(code)} "
                f"({os.strerror(code)}) at {error.at}",
                spec,
                path,
            )

    def _in_a_mount(self, spec: AddonSpec, path: str, error: LinuxError) -> None:
        """EROFS: the path is inside an add-on already mounted (Cloudera's, or a session's)."""
        from ._overlays import IN_WORKLOADS_ATTACHING, containing  # noqa: PLC0415

        # error.at is the parent as the kernel resolved it: inside the mount.
        theirs = containing(self.runtime, path, error.at)
        mount = self.view.mount_of(error.at) or error.at
        where = (
            f"it is inside {theirs}, a read-only mount, {IN_WORKLOADS_ATTACHING}"
            if theirs
            else f"its parent resolves to {error.at}, inside the read-only mount {mount}"
        )
        self.finding("AM310", f"cannot link {path}: {where}", spec, path)

    def _blocker(self, error: LinuxError) -> str:
        """'may not search /opt/priv: owner uid 0, group 0, mode 700' for an EACCES."""
        at = error.at
        try:
            obj = self.linux.stat(at, ROOT, follow=error.need != "follow")
        except LinuxError:
            return f"may not {error.need or 'use'} {at}"
        if error.need == "follow":
            return (
                f"may not follow the symlink {at} (owner uid {obj.st_uid}): it is in a "
                f"sticky world-writable directory and fs.protected_symlinks is on"
            )
        return f"may not {error.need or 'use'} {at}: {describe(obj)}"

    def _instead(self, path: str, error: LinuxError) -> str:
        """'; cdsw may link /opt/tool instead': the nearest place above the blocker."""
        name = path.rpartition("/")[2]
        directory = parent_of(error.at)
        while True:
            candidate = f"{directory.rstrip('/')}/{name}"
            try:
                obj = self.linux.stat(directory, CDSW)
            except LinuxError:
                obj = None
            if (
                obj is not None
                and stat.S_ISDIR(obj.st_mode)
                and directory not in ("/", "/runtime-addons")
                and self.linux.access(directory, os.W_OK | os.X_OK, CDSW)
                and not self.linux.exists(candidate, ROOT)
            ):
                return f"; in this runtime cdsw may link {candidate} instead"
            if directory == "/":
                return ""
            directory = parent_of(directory)

    def _not_a_directory(self, spec: AddonSpec, path: str, error: LinuxError) -> None:
        blocker = error.at
        entry = self.view.lookup(self._real_path(blocker))
        what = describe_entry(entry) if entry else "not a directory"
        self.finding(
            "AM302", f"cannot link {path}: {blocker} is {what}, not a directory", spec, path
        )

    def _broken_parent(self, spec: AddonSpec, path: str, error: LinuxError) -> None:
        """A parent is a symlink that dangles (AM303) or loops (AM304): name it."""
        link, target, code = self._broken_link(parent_of(path))
        if errno.ELOOP in (code, error.errno):
            self.finding(
                "AM304",
                f"cannot link {path}: its parent {link} is a symlink to {target!r} that "
                f"loops (too many levels of symbolic links)",
                spec,
                path,
            )
            return
        self.finding(
            "AM303",
            f"cannot link {path}: its parent {link} is a symlink to {target!r}, which "
            f"does not exist in this runtime, so no directory can be made there",
            spec,
            path,
        )

    def _broken_link(self, path: str) -> tuple[str, str, int]:
        """The first symlink on *path* that leads nowhere: (link, target, errno)."""
        step = "/"
        for part in path.strip("/").split("/"):
            step = f"{step}{part}" if step.endswith("/") else f"{step}/{part}"
            try:
                obj = self.linux.stat(step, ROOT, follow=False)
            except LinuxError:
                break
            if not stat.S_ISLNK(obj.st_mode):
                continue
            try:
                self.linux.stat(step, ROOT)
            except LinuxError as exc:
                return step, objects.symlink_target(obj), exc.errno or 0
        return path, "", 0

    def _check_reachable(self, spec: AddonSpec, path: str, target: str) -> None:
        try:
            obj = self.linux.stat(path, CDSW)
        except LinuxError as exc:
            self._unreachable(spec, path, target, exc)
            return
        is_dir = stat.S_ISDIR(obj.st_mode)
        # What a workload does with the link: open the file, or list and enter the directory.
        calls = (
            (("read", self.linux.listdir), ("search", self.linux.search))
            if is_dir
            else (("read", self.linux.open_read),)
        )
        refused = []
        for need, call in calls:
            try:
                call(path, CDSW)
            except LinuxError:
                refused.append(need)
        if refused:
            kind = "directory" if is_dir else "file"
            self.finding(
                "AM321",
                f"{path} links to a {kind} that cdsw (uid {CDSW_UID}) may not "
                f"{' or '.join(refused)}: the archive gives it {describe(obj)}",
                spec,
                path,
            )
        else:
            self._content.audit(spec, path)

    # -- the content a link reaches ------------------------------------------------------

    def _unreachable(self, spec: AddonSpec, path: str, target: str, exc: LinuxError) -> None:
        addon = self._staged[spec.name]
        name = path[1:]
        if exc.errno in (errno.EACCES, errno.EPERM):
            self.finding(
                "AM321",
                f"{path} links into the add-on, but cdsw (uid {CDSW_UID}) may not reach "
                f"{target}: it {self._blocker(exc)}",
                spec,
                path,
            )
            return
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            self.finding(
                "AM390",
                f"{path} links into the add-on, but the kernel would refuse to reach {target} "
                f"with {errno_name(exc.errno)} ({os.strerror(exc.errno or 0)})",
                spec,
                path,
            )
            return
        member = addon.archive.members.get(name)
        if member is None and addon.archive.get(name) is None and not addon.archive.complete:
            if not addon.archive.member_count:
                return  # nothing could be read at all (already reported)
            self.add(
                Finding(
                    "AM300",
                    f"{path} may dangle: the archive has no member {name!r} as far as it "
                    "could be read, and it could not be read to the end (see above)",
                    addon=spec.name,
                    runtime=self.runtime.name,
                    path=path,
                )
            )
            return
        if member is not None and member.type == SYMLINK and exc.errno == errno.ELOOP:
            message = (
                f"{path} would not resolve: archive member {name!r} is a symlink to "
                f"{member.linkname!r}, and following it leads back to itself"
            )
        elif member is not None and member.type == SYMLINK:
            message = (
                f"{path} would dangle: archive member {name!r} is a symlink to "
                f"{member.linkname!r}, which does not exist in the workload"
            )
        elif exc.errno == errno.ELOOP:
            message = f"{path} would not resolve: too many levels of symbolic links"
        elif member is None and addon.archive.get(name) is None:
            message = f"{path} would dangle: the archive has no member {name!r}" + (
                _left_out(addon, name) or _suggest(addon, name)
            )
        else:
            message = (
                f"{path} would not resolve: {target} leads through {exc.at}, which is not "
                f"a directory or does not exist"
            )
        self.add(Finding("AM300", message, addon=spec.name, runtime=self.runtime.name, path=path))

    def finding(self, code: str, message: str, spec: AddonSpec, path: str) -> None:
        """Record a start-up finding about *path* of *spec*, in this runtime."""
        self.add(Finding(code, message, addon=spec.name, runtime=self.runtime.name, path=path))

    def add(self, finding: Finding) -> None:
        """Record *finding*."""
        self.findings.append(finding)


def _left_out(addon: StagedAddon, name: str) -> str:
    """'; its member ... was left out (AM210)' when a rejected member would have served it."""
    rejected = addon.archive.rejected
    code = rejected.get(name)
    if code is None:
        below = sorted(r for r in rejected if r.startswith(name + "/"))
        if not below:
            return ""
        return (
            f"; {len(below):,} member{'s' if len(below) != 1 else ''} below it "
            f"{'were' if len(below) != 1 else 'was'} left out (see {rejected[below[0]]} above)"
        )
    return f"; a member of that name was left out (see {code} above)"


def _suggest(addon: StagedAddon, name: str) -> str:
    """Why *name* is missing, when the archive says: a near name, or nothing at all."""
    archive = addon.archive
    if not archive.members:
        if archive.member_count:
            return " (every member of the archive was left out; see the findings above)"
        return " (the archive is empty)"
    parent, _, base = name.rpartition("/")
    everything = archive.members.keys() | archive.directories
    # The usual slips: the right name at another depth, or a near name beside it.
    elsewhere = sorted(
        n for n in everything if n and n != name and (n == base or n.endswith("/" + base))
    )
    siblings = [n.rpartition("/")[2] for n in everything if n and n.rpartition("/")[0] == parent]
    near = [
        f"{parent}/{s}" if parent else s
        for s in difflib.get_close_matches(base, siblings, n=3, cutoff=0.6)
    ]
    if base in siblings:  # pragma: no cover - then the name exists
        near = []
    close = list(dict.fromkeys([*near, *elsewhere]))[:3]
    if not close:
        return ""
    shown = ", ".join(repr(n) for n in close)
    return f"; it has {shown} (the layout must mirror the absolute path: {name!r})"
