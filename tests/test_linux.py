"""Tests for addon_mount._linux: Linux path semantics on pyfakefs.

Each rule here is also held against the real kernel by test_kernel_oracle.py;
these pin the rules one by one, fast, on any machine.
"""

from __future__ import annotations

import errno
import inspect
import os
import stat
from pathlib import Path

import pyfakefs
import pytest
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from addon_mount import _linux, testing
from addon_mount._builders import write_bundle
from addon_mount._linux import ROOT, Cred, LinuxError, LinuxFS, objects
from addon_mount._runtime import Entry, RuntimeImage

CDSW = Cred(8536, 8536)
OTHER = 1000

# (path, type, mode, uid, gid, target)
Spec = tuple[str, str, int, int, int, str]


def build(*entries: Spec, protected_symlinks: bool = True) -> LinuxFS:
    """A LinuxFS over a fresh fake filesystem holding *entries* (parents first)."""
    fs = objects.new_filesystem(0o022)
    linux = LinuxFS(fs, protected_symlinks=protected_symlinks)
    for path, kind, mode, uid, gid, target in entries:
        if kind == "d":
            obj: FakeFile = linux.mkdir(path, 0o777, ROOT)
        elif kind == "l":
            obj = linux.symlink(target, path, ROOT)
        else:
            walked = linux.walk(path, ROOT, create=True)
            obj = objects.make_object(fs, walked.name, stat.S_IFREG | mode, uid, gid)
            objects.insert(walked.parent, obj)
        obj.st_uid, obj.st_gid = uid, gid
        if kind != "l":
            obj.st_mode = stat.S_IFMT(obj.st_mode) | mode
    return linux


def errno_of(call: object, *args: object) -> str:
    try:
        call(*args)  # type: ignore[operator]
    except LinuxError as exc:
        return errno.errorcode[exc.errno or 0]
    return "ok"


def test_search_permission_is_checked_through_symlinks() -> None:
    """A symlink inside a directory cdsw may not search cannot be followed (EACCES)."""
    linux = build(
        ("/opt", "d", 0o755, 8536, 8536, ""),
        ("/opt/pub", "d", 0o755, 8536, 8536, ""),
        ("/opt/priv", "d", 0o700, 0, 0, ""),
        ("/opt/priv/ln", "l", 0o777, 0, 0, "/opt/pub"),
    )
    with pytest.raises(LinuxError) as caught:
        linux.symlink("/x", "/opt/priv/ln/tool", CDSW)
    assert caught.value.errno == errno.EACCES
    assert (caught.value.at, caught.value.need) == ("/opt/priv", "search")
    assert errno_of(linux.symlink, "/x", "/opt/priv/ln/tool", ROOT) == "ok"


def test_search_without_read_is_enough_to_pass() -> None:
    """A 711 directory is traversed by cdsw; only listing it needs read."""
    linux = build(
        ("/opt", "d", 0o711, 0, 0, ""),
        ("/opt/sub", "d", 0o755, 8536, 8536, ""),
    )
    assert errno_of(linux.symlink, "/x", "/opt/sub/tool", CDSW) == "ok"
    assert errno_of(linux.listdir, "/opt", CDSW) == "EACCES"
    assert errno_of(linux.search, "/opt", CDSW) == "ok"


def test_one_class_of_bits_decides() -> None:
    """The owner class is used alone: an owner without bits is refused what others may do."""
    linux = build(("/f", "f", 0o077, 8536, 0, ""), ("/g", "f", 0o704, 0, 8536, ""))
    assert errno_of(linux.open_read, "/f", CDSW) == "EACCES"
    assert errno_of(linux.open_read, "/g", CDSW) == "EACCES"
    assert errno_of(linux.open_read, "/g", Cred(OTHER, OTHER)) == "ok"
    assert errno_of(linux.open_read, "/g", Cred(OTHER, OTHER, frozenset({8536}))) == "EACCES"


@pytest.mark.parametrize(("count", "expected"), [(40, "ok"), (41, "ELOOP")])
def test_forty_symlinks_and_no_more(count: int, expected: str) -> None:
    """A chain of 40 symlinks resolves; one more is ELOOP, as on Linux."""
    chain: list[Spec] = [("/d", "d", 0o755, 0, 0, "")]
    chain += [(f"/l{i}", "l", 0o777, 0, 0, f"/l{i + 1}") for i in range(count - 1)]
    chain.append((f"/l{count - 1}", "l", 0o777, 0, 0, "/d"))
    linux = build(*chain)
    assert errno_of(linux.stat, "/l0", CDSW) == expected


def test_dotdot_is_the_physical_parent() -> None:
    """'..' after a symlink goes to the target's parent, not back where the link is."""
    linux = build(
        ("/a", "d", 0o755, 0, 0, ""),
        ("/x", "d", 0o755, 0, 0, ""),
        ("/x/y", "d", 0o755, 0, 0, ""),
        ("/x/z", "f", 0o644, 0, 0, ""),
        ("/a/ln", "l", 0o777, 0, 0, "/x/y"),
    )
    assert linux.walk("/a/ln/../z", CDSW).path == "/x/z"
    assert errno_of(linux.stat, "/a/z", CDSW) == "ENOENT"


@pytest.mark.parametrize(
    ("link_owner", "dir_owner", "protected", "expected"),
    [
        (OTHER, 0, True, "EACCES"),  # another user's link in root's /tmp
        (8536, 0, True, "ok"),  # cdsw's own link
        (OTHER, OTHER, True, "ok"),  # the directory's owner owns the link
        (OTHER, 0, False, "ok"),  # fs.protected_symlinks off
    ],
)
def test_protected_symlinks(
    link_owner: int, dir_owner: int, protected: bool, expected: str
) -> None:
    """In a sticky world-writable directory, only some users' links are followed."""
    linux = build(
        ("/home", "d", 0o755, 8536, 8536, ""),
        ("/tmp", "d", 0o1777, dir_owner, 0, ""),
        ("/tmp/ln", "l", 0o777, link_owner, link_owner, "/home"),
        protected_symlinks=protected,
    )
    assert errno_of(linux.stat, "/tmp/ln", CDSW) == expected
    assert errno_of(linux.stat, "/tmp/ln/", CDSW) == expected  # a trailing '/' ends there too
    assert errno_of(linux.stat, "/tmp/ln/.", CDSW) == "ok"  # walked through: followed


def test_root_bypasses_but_needs_an_x_bit_to_execute() -> None:
    """Root searches a 000 directory and reads a 000 file, but executes only with an x bit."""
    linux = build(
        ("/d", "d", 0o000, 8536, 8536, ""),
        ("/d/f", "f", 0o000, 8536, 8536, ""),
        ("/d/x", "f", 0o100, 8536, 8536, ""),
    )
    assert errno_of(linux.open_read, "/d/f", ROOT) == "ok"
    assert not linux.access("/d/f", os.X_OK, ROOT)
    assert linux.access("/d/x", os.X_OK, ROOT)
    assert not linux.access("/d/x", os.X_OK, CDSW)


@pytest.mark.parametrize(
    ("mode", "exists", "expected"),
    [
        (0o555, True, "EEXIST"),  # the name is checked before write permission
        (0o555, False, "EACCES"),
        (0o644, True, "EACCES"),  # search permission comes before the name
        (0o777, True, "EEXIST"),
    ],
)
def test_create_checks_in_linux_order(mode: int, exists: bool, expected: str) -> None:
    """symlink(2): search, then EEXIST, then write permission."""
    entries: list[Spec] = [("/d", "d", 0o777, 0, 0, "")]
    if exists:
        entries.append(("/d/name", "l", 0o777, 0, 0, "/nowhere"))  # dangling counts
    linux = build(*entries)
    linux.stat("/d", ROOT).st_mode = stat.S_IFDIR | mode
    assert errno_of(linux.symlink, "/x", "/d/name", CDSW) == expected


def test_read_only_mount_is_erofs_after_eexist() -> None:
    """In a read-only mount an existing name is EEXIST, a new one EROFS, root or not."""
    fs = objects.new_filesystem(0o022)
    linux = LinuxFS(fs)
    mount = objects.make_object(fs, "ro", stat.S_IFDIR | 0o777, 0, 0, readonly=True)
    objects.insert(fs.root, mount, mount=True)
    objects.insert(mount, objects.make_object(fs, "f", stat.S_IFREG | 0o644, 0, 0, readonly=True))  # type: ignore[arg-type]
    assert errno_of(linux.symlink, "/x", "/ro/f", CDSW) == "EEXIST"
    assert errno_of(linux.symlink, "/x", "/ro/new", CDSW) == "EROFS"
    assert errno_of(linux.mkdir, "/ro/new", 0o755, ROOT) == "EROFS"
    assert not linux.access("/ro/f", os.W_OK, ROOT)


def test_setgid_directory_passes_its_group() -> None:
    """mkdir in a setgid directory: the new directory takes its group and the setgid bit."""
    linux = build(("/shared", "d", 0o2777, 0, 1234, ""))
    made = linux.mkdir("/shared/new", 0o755, CDSW)
    assert (made.st_uid, made.st_gid) == (8536, 1234)
    assert stat.S_IMODE(made.st_mode) == 0o2755


def test_makedirs_fails_on_a_dangling_parent() -> None:
    """os.makedirs cannot make a directory where a dangling symlink stands.

    mkdir of the link's own name is EEXIST, which makedirs takes as a race;
    the next mkdir goes through the link and finds nothing: ENOENT.
    """
    linux = build(("/opt", "d", 0o777, 0, 0, ""), ("/opt/data", "l", 0o777, 0, 0, "/mnt/data"))
    assert errno_of(linux.makedirs, "/opt/data/tool", 0o755, CDSW) == "ENOENT"
    assert errno_of(linux.makedirs, "/opt/data", 0o755, CDSW) == "EEXIST"
    assert linux.makedirs("/opt/new/deep", 0o755, CDSW) == ["/opt/new", "/opt/new/deep"]


# -- the hooks: code under test sees the same rules ------------------------------------


@pytest.fixture
def private_runtime(tmp_path: Path) -> tuple[RuntimeImage, Path]:
    image = RuntimeImage.from_entries(
        [
            Entry("/", "d", 0o755, 8536, 8536),
            Entry("/opt", "d", 0o755, 8536, 8536),
            Entry("/opt/priv", "d", 0o700, 0, 0),
            Entry("/opt/priv/data.txt", "f", 0o644, 0, 0),
            Entry("/opt/run", "f", 0o700, 501, 20),
            Entry("/opt/lib", "d", 0o711, 0, 0),
            Entry("/opt/lib/x.so", "f", 0o644, 0, 0),
        ],
        name="private",
    )
    bundle = write_bundle(tmp_path / "b", "b", ["/opt/b"], [("opt/b", "f", 0o644, "b\n")])
    return image, bundle


def test_code_under_test_meets_search_permission(
    private_runtime: tuple[RuntimeImage, Path],
) -> None:
    """Inside a workload, paths below a directory cdsw may not search are out of reach."""
    image, bundle = private_runtime
    with testing.workload([bundle], image):
        with pytest.raises(PermissionError):
            Path("/opt/priv/data.txt").read_text()
        # The os calls user code makes, on purpose.
        assert not os.path.exists("/opt/priv/data.txt")  # noqa: PTH110
        with pytest.raises(PermissionError):
            os.listdir("/opt/lib")  # noqa: PTH208
        assert os.stat("/opt/lib/x.so").st_size == 0  # noqa: PTH116 - 711: search is enough


def test_code_under_test_meets_linux_access(private_runtime: tuple[RuntimeImage, Path]) -> None:
    """os.access answers from the class of bits Linux uses, X_OK included."""
    image, bundle = private_runtime
    with testing.workload([bundle], image):
        assert os.access("/opt/run", os.F_OK)
        assert not os.access("/opt/run", os.X_OK)
        assert not os.access("/opt/run", os.R_OK)
        assert os.access("/opt/b", os.R_OK)
        assert not os.access("/opt/b", os.W_OK)  # a read-only mount
        assert not os.access("/opt/priv/data.txt", os.F_OK)


# -- pyfakefs internals the package relies on ---------------------------------------------


def test_pyfakefs_internals_are_the_tested_ones() -> None:
    """The pyfakefs internals addon_mount._linux overrides exist with the expected shapes."""
    version = pyfakefs.__version__
    where = f"pyfakefs {version} (addon_mount._linux is tested with {_linux.PYFAKEFS_TESTED})"
    assert ".".join(version.split(".")[:2]) in _linux.PYFAKEFS_TESTED, where
    expected = {
        "resolve_path": ["file_path", "allow_fd"],
        "get_object_from_normpath": [
            "file_path",
            "check_read_perm",
            "check_exe_perm",
            "check_owner",
        ],
        "lresolve": ["path"],
        "remove": ["path"],
        "rmdir": ["target_directory", "allow_symlink"],
        "rename": ["old_file_path", "new_file_path", "force_replace"],
        "link": ["old_path", "new_path", "follow_symlinks"],
        "add_open_file": ["file_obj", "new_fd"],
        "chmod": ["path", "mode", "follow_symlinks", "force_unix_mode"],
    }
    for name, params in expected.items():
        signature = inspect.signature(getattr(FakeFilesystem, name))
        assert list(signature.parameters)[1:] == params, f"{where}: FakeFilesystem.{name}"
    fs = objects.new_filesystem(0o022)
    directory = FakeDirectory("d", 0o755, filesystem=fs)
    assert isinstance(directory._entries, dict), where
    file = FakeFile("f", stat.S_IFREG | 0o644, contents=b"x", filesystem=fs)  # type: ignore[type-var]
    assert file.__dict__.get("_byte_contents") == b"x", where
    assert hasattr(file, "stat_result"), where
    assert hasattr(fs, "mount_points"), where
