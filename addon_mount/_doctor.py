"""Doctor and owns: the add-on state a workload shows, read from a snapshot or a root.

The diagnosis itself lives in :mod:`addon_mount._doctor_script`, the
stand-alone script ``doctor --print-script`` prints, so a session and this
package report the same things. There it walks the live system; here
:class:`ModelProbe` answers the same questions from a runtime image through
the package's model of Linux, as cdsw (uid 8536).
"""

from __future__ import annotations

import errno
import posixpath
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from . import _doctor_script as script
from ._linux import ROOT, Cred, LinuxError, objects
from ._runtime import RuntimeImage
from ._workload import CDSW_GID, CDSW_UID, Workload

CDSW = Cred(CDSW_UID, CDSW_GID)


class ModelProbe:
    """The questions :func:`~addon_mount._doctor_script.diagnose` asks, answered by the model."""

    def __init__(
        self,
        image: RuntimeImage,
        workload: Workload | None = None,
        *,
        links: Sequence[tuple[str, str]] = (),
        cred: Cred = CDSW,
    ) -> None:
        self.image = image
        self.workload = workload or Workload(image, [])
        self.linux = self.workload.linux
        self.extra_links = tuple(links)
        self.cred = cred

    def user(self) -> str:
        return f"uid {self.cred.uid}" + (" (cdsw)" if self.cred == CDSW else "")

    def mounts(self) -> list[str]:
        names = {
            posixpath.basename(e.path)
            for e in self.image.children(script.MOUNT_ROOT)
            if e.is_dir  # a stray file there is no mount
        }
        names.update(posixpath.basename(root) for root in self.workload.view.mounts)
        return sorted(names)

    def symlinks(self) -> Iterator[tuple[str, str]]:
        for entry in self.image:
            if not entry.is_symlink or any(script.under(entry.path, s) for s in script.SKIPPED):
                continue
            yield entry.path, entry.target or ""
        yield from self.extra_links

    def children(self, path: str) -> list[str] | None:
        try:
            return sorted(self.linux.listdir(path, ROOT).entries)
        except LinuxError:
            return None

    def lstat(self, path: str) -> tuple[str, int, int, int, str] | None:
        try:
            obj = self.linux.stat(path, self.cred, follow=False)
        except LinuxError:
            return None
        kind = "l" if stat.S_ISLNK(obj.st_mode) else "d" if stat.S_ISDIR(obj.st_mode) else "f"
        target = objects.symlink_target(obj) if kind == "l" else ""
        return kind, stat.S_IMODE(obj.st_mode), obj.st_uid, obj.st_gid, target

    def resolve(self, path: str) -> tuple[str, str, int, int, int]:
        try:
            walked = self.linux.walk(path, self.cred)
        except LinuxError as exc:
            raise script.RefusedError(exc.errno or errno.ENOENT, exc.at or path) from exc
        obj = walked.obj
        if obj is None:  # pragma: no cover - walk raises for a missing path
            raise script.RefusedError(errno.ENOENT, path)
        kind = "d" if stat.S_ISDIR(obj.st_mode) else "f"
        return walked.path, kind, stat.S_IMODE(obj.st_mode), obj.st_uid, obj.st_gid

    def may(self, path: str, need: str) -> bool:
        try:
            if need == "read":
                self.linux.open_read(path, self.cred)
            elif need == "list":
                self.linux.listdir(path, self.cred)
            elif need == "search":
                self.linux.search(path, self.cred)
            else:
                return self.linux.access(path, {"run": 1, "write in": 3}[need], self.cred)
        except LinuxError:
            return False
        return True


def diagnose(
    image: RuntimeImage, requested: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """Doctor's findings for a runtime image (a snapshot or a root directory read)."""
    return script.diagnose(ModelProbe(image), requested)


# -- owns -------------------------------------------------------------------------------------


@attrs.frozen
class Owner:
    """Who provides a path: an add-on (``addon``), the runtime (``runtime``), or nothing."""

    path: str
    kind: str  # "addon", "runtime" or "nothing"
    addon: str | None = None
    via: str | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.kind == "addon":
            through = f", through the link {self.via}" if self.via else ""
            return f"{self.path}: add-on {self.addon}{through}"
        if self.kind == "runtime":
            return f"{self.path}: the runtime ({self.detail})"
        return f"{self.path}: nothing ({self.detail})"


def owner_of(probe: ModelProbe, path: str, names: Sequence[str] = ()) -> Owner:
    """Which add-on, or the runtime, provides *path* in the workload *probe* shows."""
    path = posixpath.normpath("/" + path.lstrip("/"))
    try:
        real, kind, mode, uid, _ = probe.resolve(path)
    except script.RefusedError as exc:
        reason = {errno.ELOOP: "its symlinks loop", errno.EACCES: f"{exc.at} is not searchable"}
        return Owner(path, "nothing", detail=reason.get(exc.code, f"{exc.at} does not exist"))
    mount = script.mount_of(real)
    if mount is None:
        what = "directory" if kind == "d" else "file"
        return Owner(path, "runtime", detail=f"a {what}, owner uid {uid}, mode {mode:03o}")
    via = None
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        step = "/" + "/".join(parts[:i])
        found = probe.lstat(step)
        if found is not None and found[0] == "l":
            target = script.link_target(step, found[4])
            if script.mount_of(target) == mount:
                via = f"{step} -> {found[4]}"
                break
    return Owner(path, "addon", addon=script.addon_of(mount, names) or mount, via=via)


def without(image: RuntimeImage, mounts: Sequence[str]) -> RuntimeImage:
    """*image* with the add-ons mounted at *mounts* gone: their mounts and links into them."""
    roots = [f"{script.MOUNT_ROOT}/{m}" for m in mounts]

    def kept(path: str, target: str | None) -> bool:
        if any(script.under(path, r) for r in roots):
            return False
        if target is None:
            return True
        pointed = script.link_target(path, target)
        return not any(script.under(pointed, r) for r in roots)

    return RuntimeImage.from_entries(
        (e for e in image if kept(e.path, e.target if e.is_symlink else None)),
        name=image.name,
        description=image.description,
    )


def would_dangle(before: ModelProbe, after: ModelProbe) -> list[tuple[str, str]]:
    """Symlinks outside /runtime-addons that resolve now and would not after."""
    found = []
    after_links = {p for p, _ in after.symlinks()}
    for path, target in before.symlinks():
        if path not in after_links or script.mount_of(script.link_target(path, target)):
            continue
        try:
            before.resolve(path)
        except script.RefusedError:
            continue
        try:
            after.resolve(path)
        except script.RefusedError:
            found.append((path, target))
    return found


__all__ = ["ROOT", "ModelProbe", "Owner", "diagnose", "owner_of", "without", "would_dangle"]
