"""The real kernel's replay of a workload start-up, as the platform does it.

Run inside a private mount namespace, one process for a whole batch::

    unshare --mount --propagation private python -m tests.oracle.kernel BATCH.json

BATCH.json is ``{"scenarios": [{"id", "root", "scratch", "archive", "paths"}]}``.
For each scenario, as root: extract the archive with GNU tar into *scratch*
(created 0:0 mode 755; a './' member then sets its mode and owner), create
``/runtime-addons/custom-addon-tool`` in the root tree if absent (0:0, 755),
bind-mount *scratch* there and remount it read-only. A child process then
chroots into the tree, becomes cdsw (uid and gid 8536, no supplementary
groups, umask 022) and, for each requested path in order, does what start-up
does: symlink, ``makedirs`` of the parent and symlink again on ENOENT, then
stat the link and read or search what it reaches. Every call's outcome ('ok'
or the errno's name) is printed as JSON on stdout, one record per path.

When the link reaches something inside the add-on that cdsw may use (a
directory it may list and search, a file it may open), the child also audits
what it reaches: every entry below the link, through the link's path, as
cdsw uses it (list and search a directory, open a file, ``access(X_OK)`` a
file with an x bit), skipping macOS metadata (``._*``, ``.DS_Store``,
``__MACOSX``) and symlinks and never going below a directory it may not search.
The names come from root's listing of the extracted tree, made before the
chroot: cdsw cannot list a directory it may search but not read (711), yet
reaches what is in it.

The mounts die with the namespace; each is also unmounted after its scenario.
"""

# The replay makes exactly the calls start-up makes, so os, not pathlib, on cdsw's side.
# ruff: noqa: PTH103, PTH116, PTH120, PTH208, PTH211

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CDSW = 8536
MOUNT = "/runtime-addons/custom-addon-tool"
PROTECTED_SYMLINKS = Path("/proc/sys/fs/protected_symlinks")
LOCK = Path(tempfile.gettempdir()) / "addon-mount-kernel-oracle.lock"
# mount(2) flags: 'mount --bind' is MS_BIND; 'mount -o remount,bind,ro' adds
# MS_REMOUNT | MS_RDONLY. The syscalls are made directly (what mount(8) does),
# three fewer processes per scenario.
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2

Record = dict[str, Any]
# Root's listing of the extracted archive: directory (relative, '' the root) -> names.
Listing = dict[str, list[str]]
# Names the audit skips (macOS metadata).
STRAY_NAMES = (".DS_Store", "__MACOSX")


def unavailable() -> str | None:
    """Why the kernel replay cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the kernel oracle needs root (chroot, chown, mount, setuid)"
    if shutil.which("unshare") is None:
        return "the kernel oracle needs unshare(1) (util-linux)"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip()
        return f"'unshare -m true' failed ({reason or probe.returncode}): no mount namespaces"
    tar = shutil.which("tar")
    version = subprocess.run(
        [tar or "tar", "--version"], capture_output=True, check=False
    ).stdout.decode(errors="replace")
    if tar is None or "GNU tar" not in version:
        return "the kernel oracle extracts archives with GNU tar, which is not installed"
    return None


@contextlib.contextmanager
def protected_symlinks() -> Iterator[None]:
    """Set fs.protected_symlinks to 1 for the block (the model assumes it); restore it after.

    The setting is the machine's: concurrent runs take turns (a lock file), so
    none restores a value another one set. Raises OSError when the setting
    cannot be read or written.
    """
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = PROTECTED_SYMLINKS.read_text().strip()
        PROTECTED_SYMLINKS.write_text("1\n")
        try:
            if PROTECTED_SYMLINKS.read_text().strip() != "1":
                raise OSError(errno.EPERM, "fs.protected_symlinks did not change to 1")
            yield
        finally:
            PROTECTED_SYMLINKS.write_text(previous + "\n")


# -- the child: cdsw's start-up in the chroot ------------------------------------------


def _outcome(call: Callable[..., object], *args: object) -> str:
    try:
        call(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _ancestors(directory: str) -> list[str]:
    parts = [p for p in directory.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _describe(path: str) -> str:
    """'d 0755 8536:8536' for what lstat shows at *path* (as cdsw), or the errno."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, "?")
    kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
    return f"{kind} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"


def _open_close(path: str) -> None:
    os.close(os.open(path, os.O_RDONLY))


def _stray(name: str) -> bool:
    return name.startswith("._") or name in STRAY_NAMES


def _file_entry(path: str, mode: int, opened: str) -> Record:
    entry: Record = {"path": path, "type": "f", "mode": f"{mode:04o}", "open": opened}
    if mode & 0o111:
        entry["exec"] = "ok" if os.access(path, os.X_OK) else "denied"
    return entry


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def audit(path: str, real: str, listing: Listing) -> list[Record]:
    """What cdsw meets below the directory *path* (at *real* in the mount): one record an entry."""
    entries: list[Record] = []

    def walk(directory: str, rel: str) -> None:
        for name in listing.get(rel, ()):
            if _stray(name):
                continue
            here = f"{directory}/{name}"
            try:
                st = os.lstat(here)
            except OSError as exc:
                entries.append(
                    {"path": here, "type": "?", "lstat": errno.errorcode[exc.errno or 0]}
                )
                continue
            if stat.S_ISDIR(st.st_mode):
                entry = {
                    "path": here,
                    "type": "d",
                    "mode": f"{stat.S_IMODE(st.st_mode):04o}",
                    "read": _outcome(os.listdir, here),
                    "search": _outcome(os.stat, here + "/."),
                }
                entries.append(entry)
                if entry["search"] == "ok":
                    walk(here, f"{rel}/{name}" if rel else name)
            elif stat.S_ISREG(st.st_mode):
                opened = _outcome(_open_close, here)
                entries.append(_file_entry(here, stat.S_IMODE(st.st_mode), opened))
            elif stat.S_ISLNK(st.st_mode):
                # A symlink: cdsw follows it; where it leads (as root sees it) says
                # whether its target is audited as itself, inside this directory.
                entry = {"path": here, "type": "l", "follow": _outcome(os.stat, here)}
                entry["inside"] = _inside(os.path.realpath(here), real)
                # Who owns the link and its directory: fs.protected_symlinks refuses to
                # follow another's link in a sticky world-writable directory.
                parent = os.lstat(directory)
                entry["protected"] = bool(
                    parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
                ) and st.st_uid not in (os.getuid(), parent.st_uid)
                if entry["follow"] == "ok" and os.path.isfile(here):  # noqa: PTH113
                    entry["open"] = _outcome(_open_close, here)
                elif entry["follow"] == "ok" and os.path.isdir(here):  # noqa: PTH112
                    entry["read"] = _outcome(os.listdir, here)
                    entry["search"] = _outcome(os.stat, here + "/.")
                entries.append(entry)

    walk(path, real[len(MOUNT) + 1 :])
    return entries


def link_one(path: str, listing: Listing) -> Record:
    """Start-up's steps for one requested path, as cdsw: the outcome of each call."""
    target = MOUNT + path
    record: Record = {"path": path, "symlink": _outcome(lambda: os.symlink(target, path))}
    linked = record["symlink"] == "ok"
    if record["symlink"] == "ENOENT":
        parent = os.path.dirname(path)
        before = [a for a in _ancestors(parent) if not os.path.lexists(a)]
        record["makedirs"] = _outcome(lambda: os.makedirs(parent, 0o755, exist_ok=True))
        record["created"] = {a: _describe(a) for a in before if os.path.lexists(a)}
        if record["makedirs"] != "ok":
            return record
        record["symlink2"] = _outcome(lambda: os.symlink(target, path))
        linked = record["symlink2"] == "ok"
    if not linked:
        return record
    try:
        st = os.stat(path)
    except OSError as exc:
        record["stat"] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return record
    record["stat"] = "ok"
    owner = f"{stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
    if stat.S_ISDIR(st.st_mode):
        record["reached"] = f"d {owner}"
        record["listdir"] = _outcome(lambda: os.listdir(path))
        record["search"] = _outcome(lambda: os.stat(path + "/."))
        usable = record["listdir"] == record["search"] == "ok"
    else:
        record["reached"] = f"{'f' if stat.S_ISREG(st.st_mode) else '?'} {owner}"
        record["open"] = _outcome(lambda: _open_close(path))
        usable = record["open"] == "ok" and stat.S_ISREG(st.st_mode)
    if usable:
        # The audit covers the add-on's own content: where the link leads, resolved.
        record["real"] = real = os.path.realpath(path)
        if real.startswith(MOUNT + "/"):
            if stat.S_ISDIR(st.st_mode):
                record["audit"] = audit(path, real, listing)
            else:
                entry = _file_entry(path, stat.S_IMODE(st.st_mode), record["open"])
                record["audit"] = [{**entry, "top": True}]
    return record


def _child(root: str, paths: list[str], listing: Listing, out: int) -> None:
    """In the forked child: chroot, become cdsw, link every path, report, exit."""
    status = 0
    try:
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        os.setgid(CDSW)
        os.setuid(CDSW)
        os.umask(0o022)
        payload: Any = [link_one(p, listing) for p in paths]
    except BaseException as exc:  # noqa: BLE001 - anything goes back to the parent as text
        payload = {"error": f"child: {type(exc).__name__}: {exc}"}
        status = 1
    data = json.dumps(payload).encode()
    while data:
        data = data[os.write(out, data) :]
    os._exit(status)


# -- the parent: root's part of the replay ---------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    if _libc.mount(src, target.encode(), None, flags, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {source} {target}: {os.strerror(code)}")


def _umount(target: str) -> None:
    if _libc.umount2(target.encode(), 0) != 0 and _libc.umount2(target.encode(), MNT_DETACH):
        code = ctypes.get_errno()
        raise OSError(code, f"umount {target}: {os.strerror(code)}")


def _make_dir(path: Path) -> None:
    if not os.path.lexists(path):
        path.mkdir()
        os.chown(path, 0, 0)
        path.chmod(0o755)


def _listing(top: Path) -> Listing:
    """Root's listing of the extracted tree (no symlinks followed)."""
    listing: Listing = {}
    for directory, dirs, files in os.walk(top):
        rel = os.path.relpath(directory, top)
        listing["" if rel == "." else rel] = sorted(dirs + files)
    return listing


def replay(item: dict[str, Any]) -> Record:
    """Replay one scenario: extract, mount, start up as cdsw, unmount."""
    root = Path(item["root"])
    scratch = Path(item["scratch"])
    scratch.mkdir()
    os.chown(scratch, 0, 0)
    scratch.chmod(0o755)
    tar = subprocess.run(
        ["tar", "-xzpf", item["archive"], "--numeric-owner", "--same-owner", "-C", str(scratch)],
        capture_output=True,
        check=False,
    )
    if tar.returncode != 0:
        return {"error": f"tar failed: {tar.stderr.decode(errors='replace').strip()}"}
    listing = _listing(scratch)
    _make_dir(root / "runtime-addons")
    mountpoint = root / MOUNT[1:]
    _make_dir(mountpoint)
    _mount(str(scratch), str(mountpoint), MS_BIND)
    try:
        _mount(None, str(mountpoint), MS_REMOUNT | MS_BIND | MS_RDONLY)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            _child(str(root), list(item["paths"]), listing, write)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
    finally:
        _umount(str(mountpoint))
    result = json.loads(data) if data else {"error": f"child gave nothing (status {status})"}
    return result if isinstance(result, dict) else {"records": result}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tests.oracle.kernel BATCH.json (inside unshare -m)\n")
        return 2
    batch = json.loads(Path(argv[0]).read_text())
    os.umask(0o022)  # tar gives implied directories 0777 & ~umask
    results = []
    for item in batch["scenarios"]:
        try:
            outcome = replay(item)
        except OSError as exc:
            outcome = {"error": f"replay: {exc}"}
        results.append({"id": item["id"], **outcome})
    sys.stdout.write(json.dumps(results))
    return 0


def command(batch: Path) -> list[str]:
    """The command that replays *batch* in a private mount namespace."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        sys.executable,
        "-m",
        "tests.oracle.kernel",
        str(batch),
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
