#!/usr/bin/env python3
"""Doctor: the add-on state of a running workload, as the workload sees it.

Run inside a Cloudera AI session (copy this one file into a terminal)::

    python3 doctor.py [--metadata metadata.json ...] [--json]

It lists the add-ons mounted under /runtime-addons, every symlink that
points into them and the add-on it belongs to, links that dangle or loop,
targets the current user may not read or run, and, for each metadata file
given, requested paths that were never linked and paths another add-on or
the runtime shadows. Standard library only, Python 3.8 or newer, and it runs
isolated (``python3 -I -S doctor.py``). Exit status: 0 nothing wrong, 1
problems found, 2 it could not run.

``addon-mount doctor`` reads a snapshot or a root directory with this
module's :func:`diagnose` too, with the package's model of Linux in place of
the live system calls.
"""

# This file must stay importable by Python 3.8 with nothing but the standard
# library: no 3.9+ syntax or APIs, and no imports from addon_mount.
# It works on path strings as the OS hands them out.
# ruff: noqa: PTH100, PTH112, PTH115, PTH118, PTH123, PTH208, TRY004

from __future__ import annotations

import argparse
import errno
import json
import os
import posixpath
import stat
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

MOUNT_ROOT = "/runtime-addons"
REGISTERED_PREFIX = "custom-addon-"
CDSW_UID = 8536
# Never walked: kernel trees, and the add-ons' own content (links inside an
# archive are the archive's business). The project volume is walked one level.
SKIPPED = ("/proc", "/sys", "/dev", MOUNT_ROOT)
SHALLOW = ("/home/cdsw",)
MAX_SYMLINKS = 40
#: Entries looked at below linked directories, all links together.
MAX_CONTENT = 200_000

OK, DANGLING, LOOP, UNREADABLE = "ok", "dangling", "loop", "unreadable"


def under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def addon_of(
    mount: str,
    names: Sequence[str],
    holds: Callable[[str, str], bool] | None = None,
) -> str | None:
    """The add-on name a mount directory belongs to: ``custom-addon-<name>[-<suffix>]``.

    ``custom-addon-tool`` is ``tool``'s. ``custom-addon-tool-x7k2p`` may be
    ``tool``'s with a suffix or another add-on's (``tool-x7k2p``): it is
    given to the longest name that fits and, when *holds* is given, only if
    ``holds(mount, name)`` says the directory holds what that add-on ships.
    """
    if mount.startswith(REGISTERED_PREFIX) and mount[len(REGISTERED_PREFIX) :] in names:
        return mount[len(REGISTERED_PREFIX) :]
    fitting = sorted(
        (n for n in names if mount.startswith(REGISTERED_PREFIX + n + "-")), key=len, reverse=True
    )
    for name in fitting:
        if holds is None or holds(mount, name):
            return name
    return None


def link_target(path: str, target: str) -> str:
    """Where a symlink at *path* points, as an absolute normalized path (not resolved)."""
    joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
    return posixpath.normpath(joined)


def mount_of(target: str) -> str | None:
    """The mount directory under /runtime-addons a normalized path lies in."""
    if not target.startswith(MOUNT_ROOT + "/"):
        return None
    return target[len(MOUNT_ROOT) + 1 :].split("/", 1)[0] or None


# -- the live system ------------------------------------------------------------------------


class RefusedError(Exception):
    """A path walk stopped: ``code`` is the errno, ``at`` where it stopped."""

    def __init__(self, code: int, at: str) -> None:
        super().__init__(code, at)
        self.code = code
        self.at = at


def permitted(st: os.stat_result, uid: int, gids: Sequence[int], mask: int) -> bool:
    """Linux's check of one class of mode bits (owner, else group, else other)."""
    mode = st.st_mode
    if uid == 0:
        # Root reads and searches anything; it executes a file only if some x bit is set.
        if mask & 1 and not stat.S_ISDIR(mode):
            return bool(mode & 0o111)
        return True
    if st.st_uid == uid:
        bits = (mode >> 6) & 7
    elif st.st_gid in gids:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & mask == mask


class LiveProbe:
    """The filesystem under *root* (default ``/``), walked as the kernel does, as this user.

    Paths are resolved inside *root*: an absolute symlink target starts again
    at *root*, so a root filesystem unpacked in a directory reads as it would
    in its container.
    """

    def __init__(self, root: str = "/", uid: int | None = None, gids: Sequence[int] = ()) -> None:
        self.root = os.path.abspath(root)
        self.uid = os.geteuid() if uid is None else uid
        self.gids = tuple(gids) if uid is not None else (os.getegid(), *os.getgroups())
        self.unlisted: list[str] = []

    def user(self) -> str:
        return f"uid {self.uid}"

    def _host(self, path: str) -> str:
        return path if self.root == "/" else self.root + path

    def _lstat(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(self._host(path))
        except OSError:
            return None

    def walk(self, path: str, follow: bool = True) -> tuple[str, os.stat_result]:
        """Resolve *path*: (the path it names, its stat); raises :class:`RefusedError`."""
        todo = [p for p in path.split("/") if p]
        current = "/"
        links = 0
        while todo:
            name = todo.pop(0)
            if name == ".":
                continue
            if name == "..":
                current = posixpath.dirname(current) or "/"
                continue
            here = self._lstat(current)
            if here is None or not stat.S_ISDIR(here.st_mode):
                raise RefusedError(errno.ENOTDIR, current)
            if not permitted(here, self.uid, self.gids, 1):
                raise RefusedError(errno.EACCES, current)
            following = posixpath.join(current, name)
            st = self._lstat(following)
            if st is None:
                raise RefusedError(errno.ENOENT, following)
            if stat.S_ISLNK(st.st_mode) and (todo or follow):
                links += 1
                if links > MAX_SYMLINKS:
                    raise RefusedError(errno.ELOOP, following)
                target = os.readlink(self._host(following))
                if not target:
                    raise RefusedError(errno.ENOENT, following)
                if target.startswith("/"):
                    current = "/"
                todo = [p for p in target.split("/") if p] + todo
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                raise RefusedError(errno.ENOTDIR, following)
            current = following
        st = self._lstat(current)
        if st is None:  # pragma: no cover - removed while walking
            raise RefusedError(errno.ENOENT, current)
        return current, st

    # The interface diagnose() uses --------------------------------------------------------

    def mounts(self) -> list[str]:
        """The directories under /runtime-addons (a stray file there is no mount)."""
        top = self._host(MOUNT_ROOT)
        try:
            names = os.listdir(top)
        except OSError:
            return []
        return sorted(n for n in names if os.path.isdir(os.path.join(top, n)))

    def symlinks(self) -> Iterator[tuple[str, str]]:
        top = self._lstat("/")
        device = top.st_dev if top is not None else None
        stack = ["/"]
        while stack:
            directory = stack.pop()
            try:
                entries = sorted(os.scandir(self._host(directory)), key=lambda e: e.name)
            except OSError:
                self.unlisted.append(directory)
                continue
            shallow = any(under(directory, s) and directory != s for s in SHALLOW)
            for entry in entries:
                path = posixpath.join(directory, entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    try:
                        yield path, os.readlink(entry.path)
                    except OSError:
                        continue
                elif (
                    stat.S_ISDIR(st.st_mode)
                    and not shallow
                    and not any(under(path, s) for s in SKIPPED)
                    and (st.st_dev == device or any(under(path, s) for s in SHALLOW))
                ):
                    stack.append(path)

    def children(self, path: str) -> list[str] | None:
        """The names in the directory *path* resolves to (None when it cannot be listed)."""
        try:
            real, _ = self.walk(path)
            return sorted(os.listdir(self._host(real)))
        except (OSError, RefusedError):
            return None

    def lstat(self, path: str) -> tuple[str, int, int, int, str] | None:
        """(type letter, mode bits, uid, gid, link target) of *path*'s last component."""
        try:
            real, st = self.walk(path, follow=False)
        except RefusedError:
            return None
        kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
        target = os.readlink(self._host(real)) if kind == "l" else ""
        return kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, target

    def resolve(self, path: str) -> tuple[str, str, int, int, int]:
        """(real path, type letter, mode bits, uid, gid); raises :class:`RefusedError`."""
        real, st = self.walk(path)
        kind = "d" if stat.S_ISDIR(st.st_mode) else "f"
        return real, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    def may(self, path: str, need: str) -> bool:
        """Whether this user may read, list, search or run what *path* names."""
        try:
            _, st = self.walk(path)
        except RefusedError:
            return False
        mask = {"read": 4, "list": 4, "search": 1, "run": 1, "write in": 3}[need]
        return permitted(st, self.uid, self.gids, mask)


# -- the diagnosis ----------------------------------------------------------------------------


def _problem(
    code: str, addon: str | None, path: str, message: str, severity: str = "error"
) -> dict[str, Any]:
    return {"code": code, "severity": severity, "addon": addon, "path": path, "message": message}


def _kind_word(kind: str) -> str:
    return {"d": "directory", "l": "symlink", "f": "file"}.get(kind, "file")


def diagnose(probe: Any, requested: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """What the workload shows: mounts, links into them, and every problem found.

    *requested* maps an add-on's name to the paths its metadata requests.
    """
    requested = requested or {}
    names = sorted(requested)
    mounts = probe.mounts()

    def holds(mount: str, name: str) -> bool:
        # A suffixed directory is this add-on's only if it holds a path it requests.
        return any(
            probe.lstat(f"{MOUNT_ROOT}/{mount}/{p.strip('/')}") is not None
            for p in requested.get(name, ())
        )

    def owner(mount: str) -> str | None:
        return addon_of(mount, names, holds)

    result: dict[str, Any] = {
        "user": probe.user(),
        "mounts": [{"dir": m, "addon": owner(m) or m} for m in mounts],
        "links": [],
        "problems": [],
        "not_mounted": [],
    }
    problems: list[dict[str, Any]] = result["problems"]
    by_path: dict[str, dict[str, Any]] = {}
    for path, raw in probe.symlinks():
        target = link_target(path, raw)
        mount = mount_of(target)
        if mount is None:
            continue
        addon = owner(mount) or mount
        link = {"path": path, "target": raw, "mount": mount, "addon": addon, "state": OK}
        result["links"].append(link)
        by_path[path] = link
        _check_link(probe, link, target, mounts, problems)
        _check_shadowed(probe, link, target, mounts, owner, problems)
    budget = [MAX_CONTENT]
    for link in result["links"]:
        if link["state"] == OK:
            _check_content(probe, link, problems, budget)
    if budget[0] <= 0:
        result["content_truncated"] = MAX_CONTENT
    for name in names:
        own = [m for m in mounts if owner(m) == name]
        if not own:
            result["not_mounted"].append(name)
            continue
        for path in requested[name]:
            _check_requested(probe, name, path, own, by_path, names, problems)
    problems.sort(key=lambda p: (p["addon"] or "", p["path"], p["code"]))
    return result


def _check_link(
    probe: Any, link: dict[str, Any], target: str, mounts: Sequence[str], problems: list[Any]
) -> None:
    path, mount, addon = link["path"], link["mount"], link["addon"]
    shown = f"{path} -> {link['target']}"
    try:
        _, kind, mode, uid, gid = probe.resolve(path)
    except RefusedError as exc:
        if exc.code == errno.ELOOP:
            link["state"] = LOOP
            problems.append(_problem("AM300", addon, path, f"{shown}: following it loops"))
            return
        if exc.code == errno.EACCES:
            link["state"] = UNREADABLE
            problems.append(
                _problem(
                    "AM321",
                    addon,
                    path,
                    f"{shown}: {probe.user()} may not search {exc.at}",
                )
            )
            return
        link["state"] = DANGLING
        if mount not in mounts:
            why = f"{MOUNT_ROOT}/{mount} is not mounted in this workload"
        elif under(exc.at, f"{MOUNT_ROOT}/{mount}"):
            rel = target[len(MOUNT_ROOT) + len(mount) + 2 :]
            why = f"{mount} has no {rel!r}"
        else:
            why = f"{exc.at} does not exist"
        problems.append(_problem("AM300", addon, path, f"{shown} dangles: {why}"))
        return
    needs = ["list", "search"] if kind == "d" else ["read"] + (["run"] if mode & 0o111 else [])
    refused = [n for n in needs if not probe.may(path, n)]
    if refused:
        link["state"] = UNREADABLE
        what = _kind_word(kind)
        problems.append(
            _problem(
                "AM321",
                addon,
                path,
                f"{shown}: {probe.user()} may not {' or '.join(refused)} the {what} "
                f"(owner uid {uid}, group {gid}, mode {mode:03o})",
            )
        )


def _check_content(
    probe: Any, link: dict[str, Any], problems: list[Any], budget: list[int]
) -> None:
    """What cdsw may not read, list, search or run below a linked directory.

    One cause, one problem: a directory cdsw may not search is reported and
    not entered; a program cdsw may not run is not reported again as unreadable.
    """
    path, addon = link["path"], link["addon"]
    try:
        _, kind, _, _, _ = probe.resolve(path)
    except RefusedError:
        return
    if kind != "d":
        return
    user = probe.user()
    stack = [path]
    while stack:
        directory = stack.pop()
        names = probe.children(directory)
        for name in names or ():
            budget[0] -= 1
            if budget[0] < 0:
                return
            shown = posixpath.join(directory, name)
            found = probe.lstat(shown)
            if found is None or found[0] == "l":
                continue
            kind, mode, uid, gid, _ = found
            owner = f"owner uid {uid}, group {gid}, mode {mode:03o}"
            if kind == "d":
                refused = [n for n in ("list", "search") if not probe.may(shown, n)]
                if refused:
                    problems.append(
                        _problem(
                            "AM322",
                            addon,
                            shown,
                            f"{shown} (through {path}) is a directory {user} may not "
                            f"{' or '.join(refused)}: {owner}",
                        )
                    )
                if "search" not in refused:
                    stack.append(shown)
                continue
            x_bits = mode & 0o111
            if x_bits and not probe.may(shown, "run"):
                problems.append(
                    _problem(
                        "AM323", addon, shown, f"{shown} is a program {user} may not run: {owner}"
                    )
                )
            elif not probe.may(shown, "read"):
                problems.append(
                    _problem(
                        "AM322",
                        addon,
                        shown,
                        f"{shown} (through {path}) is a file {user} may not read: {owner}",
                    )
                )
            if not x_bits and posixpath.basename(directory) in ("bin", "sbin"):
                problems.append(
                    _problem(
                        "AM324",
                        addon,
                        shown,
                        f"{shown} is in a bin directory but has no x bit: {owner}",
                        "warning",
                    )
                )


def _check_shadowed(
    probe: Any,
    link: dict[str, Any],
    target: str,
    mounts: Sequence[str],
    owner: Callable[[str], str | None],
    problems: list[Any],
) -> None:
    rel = target[len(MOUNT_ROOT) + len(link["mount"]) + 1 :]
    if not rel:
        return
    for other in mounts:
        if other == link["mount"] or probe.lstat(f"{MOUNT_ROOT}/{other}{rel}") is None:
            continue
        shadowed = owner(other) or other
        problems.append(
            _problem(
                "AM310",
                shadowed,
                link["path"],
                f"{shadowed} ships {link['path']} too, but the link there goes to "
                f"{link['addon']}: {shadowed}'s copy is unreachable",
                "warning",
            )
        )


def _check_requested(
    probe: Any,
    name: str,
    path: str,
    own: Sequence[str],
    links: Mapping[str, dict[str, Any]],
    names: Sequence[str],
    problems: list[Any],
) -> None:
    link = links.get(path)
    if link is None:
        # The walk finds links at their real paths: /bin/tool is /usr/bin/tool.
        try:
            real_parent = probe.resolve(posixpath.dirname(path))[0]
        except RefusedError:
            real_parent = None
        if real_parent is not None:
            link = links.get(posixpath.join(real_parent, posixpath.basename(path)))
    if link is not None and link["mount"] in own:
        return  # linked; its state is reported with the links
    if link is not None:
        problems.append(
            _problem(
                "AM310",
                name,
                path,
                f"{path} is requested by {name}, but the link there goes to {link['addon']}: "
                f"{name}'s {path} is shadowed",
            )
        )
        return
    found = probe.lstat(path)
    if found is not None:
        kind, mode, uid, _, target = found
        what = f"a symlink to {target!r}" if kind == "l" else f"a {_kind_word(kind)}"
        problems.append(
            _problem(
                "AM301",
                name,
                path,
                f"{path} is requested by {name}, but the runtime has {what} there (owner uid "
                f"{uid}, mode {mode:03o}): it shadows the add-on's {path}",
            )
        )
        return
    parent = posixpath.dirname(path)
    try:
        probe.resolve(parent)
    except RefusedError:
        problems.append(
            _problem(
                "AM330",
                name,
                path,
                f"{path} was never linked: its parent {parent} does not exist here",
            )
        )
        return
    if not probe.may(parent, "write in"):
        problems.append(
            _problem(
                "AM320",
                name,
                path,
                f"{path} was never linked: uid {CDSW_UID} may not write in {parent}",
            )
        )
        return
    problems.append(
        _problem(
            "AM313",
            name,
            path,
            f"{path} was never linked, though nothing stands in its way: the link was "
            "removed, or this workload started before the add-on was enabled",
        )
    )


def failed(result: Mapping[str, Any]) -> bool:
    """True when the diagnosis found an error (exit status 1)."""
    return bool(result["not_mounted"]) or any(p["severity"] == "error" for p in result["problems"])


def render(result: Mapping[str, Any], source: str, hints: Mapping[str, str] | None = None) -> str:
    """The diagnosis as text; *hints* gives each code's fix (else: 'addon-mount explain')."""
    lines = [f"doctor: {source}, checked as {result['user']}", ""]
    mounts = result["mounts"]
    lines.append(f"Add-ons mounted under {MOUNT_ROOT} ({len(mounts)}):")
    for m in mounts:
        named = "" if m["addon"] == m["dir"] else f"  (add-on {m['addon']})"
        lines.append(f"  {m['dir']}{named}")
    for name in result["not_mounted"]:
        lines.append(
            f"  not mounted: {name}: it is not enabled, or this workload started before it was"
        )
    links = result["links"]
    lines += ["", f"Links into {MOUNT_ROOT} ({len(links)}):"]
    for link in links:
        lines.append(
            f"  {link['state']:<10}  {link['path']} -> {link['target']}  ({link['addon']})"
        )
    problems = result["problems"]
    if problems:
        lines += ["", f"Problems ({len(problems)}):"]
    for p in problems:
        lines.append(f"  {p['severity']:<7} {p['code']}  {p['path']}  ({p['addon']})")
        lines.append(f"    {p['message']}")
        hint = (hints or {}).get(p["code"])
        lines.append(
            f"    fix: {hint}" if hint else f"    explain: addon-mount explain {p['code']}"
        )
    counts = {s: sum(1 for x in links if x["state"] == s) for s in (DANGLING, LOOP, UNREADABLE)}
    errors = sum(1 for p in problems if p["severity"] == "error")
    warnings = len(problems) - errors
    missing = result["not_mounted"]
    summary = (
        f"Summary: {len(mounts)} mounted, {_plural(len(links), 'link')} "
        f"({counts[DANGLING]} dangling, {counts[LOOP]} looping, {counts[UNREADABLE]} unreadable); "
        f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    )
    lines += ["", summary + (f"; {len(missing)} not mounted" if missing else "")]
    if result.get("content_truncated"):
        lines.append(
            f"(content below the links looked at up to {result['content_truncated']:,} entries)"
        )
    return "\n".join(lines) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def read_metadata(path: str) -> tuple[str, list[str]]:
    """The add-on name and requested paths of a metadata.json (or a bundle directory's)."""
    if os.path.isdir(path):
        path = os.path.join(path, "metadata.json")
    with open(path, "rb") as f:
        data = json.loads(f.read(1 << 20).decode("utf-8"))
    name = data.get("name") if isinstance(data, dict) else None
    spec = data.get("spec") if isinstance(data, dict) else None
    paths = spec.get("paths") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not isinstance(paths, list):
        raise ValueError('expected {"name": ..., "spec": {"paths": [...]}}')
    return name, [p for p in paths if isinstance(p, str)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="doctor.py",
        description="Show the add-ons of this workload: mounts, links, and what is wrong.",
    )
    parser.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="FILE",
        help="an add-on's metadata.json (or its bundle directory): check its requested paths",
    )
    parser.add_argument("--root", default="/", help="the root to read (default: /)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    requested: dict[str, list[str]] = {}
    for given in args.metadata:
        try:
            name, paths = read_metadata(given)
        except (OSError, ValueError) as exc:
            print(f"doctor.py: error: cannot read {given!r}: {exc}", file=sys.stderr)
            return 2
        requested[name] = paths
    if not os.path.isdir(args.root):
        print(f"doctor.py: error: {args.root!r} is not a directory", file=sys.stderr)
        return 2
    result = diagnose(LiveProbe(args.root), requested)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        sys.stdout.write(render(result, args.root))
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
