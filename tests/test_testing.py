"""Tests for the test harness API: addon_mount.testing.workload and its filesystem."""

# These tests call os.*, open() and os.path on purpose: the harness must patch
# every way code reaches the filesystem, not only pathlib. A file opened for
# writing and never closed is the point of several cases (the open must fail),
# as is a chmod to 777 (S103): it must be refused.
# ruff: noqa: PTH101, PTH102, PTH103, PTH106, PTH107, PTH108, PTH109, PTH110, PTH113, PTH114
# ruff: noqa: PTH104, PTH105, PTH115, PTH116, PTH118, PTH123, PTH202, PTH208, PTH211
# ruff: noqa: SIM115, S103

from __future__ import annotations

import builtins
import errno
import grp
import io
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_filesystem_unittest import Patcher

from addon_mount import Entry, RuntimeImage, check, testing
from addon_mount._builders import MemberSpec, tar_bytes
from addon_mount._harness import _OUTCOMES, load_runtime_image

from .conftest import CDSW, TOOL, BundleFactory

ROOT = "/runtime-addons/custom-addon-oracle"
JAR = b"PK\x03\x04\x00\xff binary \x00 jar"
ORACLE: list[MemberSpec] = [
    ("opt/oracle", "d", 0o755, ""),
    ("opt/oracle/ojdbc8.jar", "f", 0o644, JAR),
    ("opt/oracle/conf", "d", 0o755, ""),
    ("opt/oracle/conf/tnsnames.ora", "f", 0o644, "XE = (HOST=db)\n"),
    ("opt/oracle/conf/empty", "d", 0o755, ""),
    ("opt/oracle/latest.jar", "l", 0o777, "ojdbc8.jar"),
    ("opt/oracle/copy.jar", "h", 0o644, "opt/oracle/ojdbc8.jar"),
]


@pytest.fixture
def oracle(bundle: BundleFactory) -> Path:
    """A bundle linking /opt/oracle: a driver, a config directory, a symlink, a hard link."""
    return bundle("oracle", ["/opt/oracle"], ORACLE)


@pytest.fixture
def started(oracle: Path, runtime: RuntimeImage) -> Iterator[testing.StartedWorkload]:
    """The oracle add-on started in the tiny runtime, active for the test."""
    with testing.workload(oracle, runtime) as wl:
        yield wl


def errno_of(call: Callable[[], object]) -> str:
    """The errno name *call* fails with ('ok' when it does not fail)."""
    try:
        call()
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    return "ok"


def process_state() -> tuple[object, ...]:
    """What a workload must leave as it found: patching, ids, environment, identity, guards."""
    return (
        helpers.get_uid(),
        helpers.get_gid(),
        os.getcwd,
        os.stat,
        builtins.open,
        io.open,
        Path.read_bytes,
        shutil.copyfile,
        Patcher.PATCHER,
        *(os.environ.get(name) for name in ("HOME", "USER", "LOGNAME")),
        pwd.getpwuid,
        pwd.getpwnam,
        grp.getgrgid,
        os.geteuid,
        os.getgroups,
        os.system,
        os.execv,
        subprocess.Popen.__init__,
    )


# -- the verdict -------------------------------------------------------------------


def test_clean_workload_reports_links(started: testing.StartedWorkload) -> None:
    """A clean add-on starts ok, with its link listed and no finding."""
    assert started.ok
    assert started.findings == ()
    assert [(link.path, link.target) for link in started.links] == [
        ("/opt/oracle", ROOT + "/opt/oracle")
    ]
    assert started.link("/opt/oracle") == started.links[0]
    assert started.link("/opt/nothing") is None
    assert started.runtime.name == "tiny"
    assert started.staging_root("oracle") == ROOT


@pytest.mark.parametrize("runtime_given", ["image", "default"])
def test_report_is_the_checks_report(
    bundle: BundleFactory, runtime: RuntimeImage, runtime_given: str
) -> None:
    """The workload's report is check()'s for the same inputs, on a first and a later start."""
    bundles = [
        bundle("oracle", ["/opt/oracle"], ORACLE),
        bundle(
            "tool",
            ["/opt/tool", "/usr/local/bin/run"],
            [*TOOL, ("usr/local/bin/run", "l", 0o777, "../../../opt/tool/bin/run")],
        ),
        bundle(
            "broken",
            ["/var/lib/x", "/usr/local/bin/gone", "/etc/cfg/app"],
            [
                ("var/lib/x", "f", 0o644, ""),
                ("etc/cfg/app", "f", 0o600, "secret"),
            ],
            uid=1000,
        ),
    ]
    bundles.append(bundle("Not A Name", ["/opt/x"], [("opt/x", "f", 0o644, "")]))
    image = runtime if runtime_given == "image" else None
    expected = check(bundles, image, cloudera_addons="none")  # one workload: the runtime alone
    for _ in range(2):
        with testing.workload(bundles, image) as wl:
            assert wl.report == expected
    assert not expected.ok


def test_broken_bundle_findings_are_inspectable(
    bundle: BundleFactory, runtime: RuntimeImage
) -> None:
    """A broken add-on does not raise: its findings carry code, kind, severity, path, add-on."""
    b = bundle("drv", ["/etc/hosts", "/opt/drv/lib.so"], [("etc/hosts", "f", 0o644, "")])
    with testing.workload(b, runtime) as wl:
        assert not wl.ok
        found = {(f.code, f.kind, str(f.severity), f.path, f.addon) for f in wl.errors}
        assert ("AM301", "collision", "error", "/etc/hosts", "drv") in found
        assert any(f.code == "AM300" and f.path == "/opt/drv/lib.so" for f in wl.errors)
        assert wl.findings_for("drv") == wl.report.findings_for("drv")
        assert all(f.message for f in wl.findings)
        # The runtime's own file stays; the dangling link exists, as it would.
        assert os.path.islink("/opt/drv/lib.so")
        assert not os.path.exists("/opt/drv/lib.so")


# -- what the process sees ----------------------------------------------------------


def test_runs_as_cdsw_in_the_project_volume(started: testing.StartedWorkload) -> None:
    """The test runs as uid/gid 8536, in /home/cdsw."""
    assert (os.getuid(), os.getgid()) == (CDSW, CDSW)
    assert os.getcwd() == "/home/cdsw"
    assert Path.cwd() == Path("/home/cdsw")


def test_links_are_visible(started: testing.StartedWorkload) -> None:
    """The link is a symlink owned by cdsw, pointing into the add-on's mount."""
    assert os.path.islink("/opt/oracle")
    assert os.readlink("/opt/oracle") == ROOT + "/opt/oracle"
    assert os.lstat("/opt/oracle").st_uid == CDSW
    assert Path("/opt/oracle").resolve() == Path(ROOT, "opt/oracle")
    assert sorted(os.listdir("/opt/oracle")) == ["conf", "copy.jar", "latest.jar", "ojdbc8.jar"]


def test_reads_the_archives_bytes(started: testing.StartedWorkload, tmp_path: Path) -> None:
    """Files read as the archive's bytes: directly, through symlinks and hard links, copied."""
    with open("/opt/oracle/ojdbc8.jar", "rb") as f:
        assert f.read() == JAR
    assert Path("/opt/oracle/latest.jar").read_bytes() == JAR
    assert Path("/opt/oracle/copy.jar").read_bytes() == JAR
    assert Path(ROOT, "opt/oracle/conf/tnsnames.ora").read_text() == "XE = (HOST=db)\n"
    assert os.path.getsize("/opt/oracle/ojdbc8.jar") == len(JAR)
    shutil.copy("/opt/oracle/ojdbc8.jar", "/home/cdsw/driver.jar")
    assert Path("/home/cdsw/driver.jar").read_bytes() == JAR
    assert not (tmp_path / "anything").exists()


def test_runtime_files_are_there_and_read_empty(started: testing.StartedWorkload) -> None:
    """Runtime snapshots hold no contents: a runtime file exists, with its mode, and is empty."""
    st = os.stat("/usr/bin/env")
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_uid == 0
    assert Path("/usr/bin/env").read_bytes() == b""


def test_the_whole_runtime_is_visible(oracle: Path) -> None:
    """Every entry of the default runtime is in the filesystem, with its type, mode and owner."""
    image = load_runtime_image(None)
    with testing.workload(oracle) as wl, wl.as_root():
        seen = {"/"}
        for top, dirs, files in os.walk("/"):
            seen.update(os.path.join(top, n) for n in dirs + files)
        # Every tenth entry's attributes (os.lstat in pyfakefs costs ~0.3 ms).
        for entry in list(image)[::10]:
            st = os.lstat(entry.path)
            assert (st.st_mode, st.st_uid, st.st_gid) == (entry.st_mode, entry.uid, entry.gid)
    assert {e.path for e in image} <= seen
    assert seen - {e.path for e in image} == {
        "/opt/oracle",
        *(ROOT + p for p in ["", "/opt", "/opt/oracle", "/opt/oracle/conf"]),
        *(ROOT + "/opt/oracle/" + p for p in ["ojdbc8.jar", "latest.jar", "copy.jar"]),
        *(ROOT + "/opt/oracle/conf/" + p for p in ["tnsnames.ora", "empty"]),
    }


def test_tmp_and_home_are_added_when_the_runtime_lacks_them(oracle: Path) -> None:
    """A runtime without /tmp or /home/cdsw gets /tmp 1777 and a cdsw-owned home."""
    bare = RuntimeImage.from_entries([Entry("/opt", "d", 0o755, CDSW, CDSW)], name="bare")
    with testing.workload(oracle, bare):
        assert stat.S_IMODE(os.stat("/tmp").st_mode) == 0o1777
        assert os.stat("/home/cdsw").st_uid == CDSW
        Path("/tmp/scratch").write_text("ok")
        Path("/home/cdsw/notes").write_text("ok")
        assert os.getcwd() == "/home/cdsw"


def test_staging_root_is_its_own_mount(started: testing.StartedWorkload) -> None:
    """Each add-on is a separate device, as a mount is."""
    assert os.path.ismount(ROOT)
    assert os.stat(ROOT).st_dev != os.stat("/opt").st_dev
    assert os.stat("/opt/oracle/ojdbc8.jar").st_dev == os.stat(ROOT).st_dev


# -- read-only mounts ---------------------------------------------------------------

IN_MOUNT = "/opt/oracle"  # through the link
DIRECT = ROOT + "/opt/oracle"  # the mount itself

WRITES: dict[str, Callable[[str], object]] = {
    "open w": lambda d: open(f"{d}/ojdbc8.jar", "w"),
    "open wb": lambda d: open(f"{d}/ojdbc8.jar", "wb"),
    "open a": lambda d: open(f"{d}/ojdbc8.jar", "a"),
    "open r+": lambda d: open(f"{d}/ojdbc8.jar", "r+b"),
    "open w new": lambda d: open(f"{d}/new.txt", "w"),
    "open x new": lambda d: open(f"{d}/new.txt", "x"),
    "os.open wronly": lambda d: os.open(f"{d}/ojdbc8.jar", os.O_WRONLY),
    "os.open creat": lambda d: os.open(f"{d}/new.txt", os.O_CREAT | os.O_WRONLY),
    "write_text": lambda d: Path(d, "conf/tnsnames.ora").write_text("x"),
    "write_bytes new": lambda d: Path(d, "conf/new.ora").write_bytes(b"x"),
    "touch existing": lambda d: Path(d, "ojdbc8.jar").touch(),
    "touch new": lambda d: Path(d, "new.txt").touch(),
    "mkdir": lambda d: os.mkdir(f"{d}/sub"),
    "makedirs": lambda d: os.makedirs(f"{d}/a/b", exist_ok=True),
    "Path.mkdir parents": lambda d: Path(d, "a/b").mkdir(parents=True),
    "rmdir empty": lambda d: os.rmdir(f"{d}/conf/empty"),
    "rmdir non-empty": lambda d: os.rmdir(f"{d}/conf"),
    "unlink": lambda d: os.unlink(f"{d}/ojdbc8.jar"),
    "unlink missing": lambda d: os.unlink(f"{d}/missing"),
    "Path.unlink missing_ok": lambda d: Path(d, "missing").unlink(missing_ok=True),
    "remove symlink": lambda d: os.remove(f"{d}/latest.jar"),
    "rename inside": lambda d: os.rename(f"{d}/ojdbc8.jar", f"{d}/renamed.jar"),
    "replace inside": lambda d: os.replace(f"{d}/latest.jar", f"{d}/ojdbc8.jar"),
    "chmod": lambda d: os.chmod(f"{d}/ojdbc8.jar", 0o777),
    "chmod dir": lambda d: os.chmod(f"{d}/conf", 0o777),
    "chown": lambda d: os.chown(f"{d}/ojdbc8.jar", CDSW, CDSW),
    "utime": lambda d: os.utime(f"{d}/ojdbc8.jar", (1, 1)),
    "truncate": lambda d: os.truncate(f"{d}/ojdbc8.jar", 0),
    "symlink inside": lambda d: os.symlink("/etc", f"{d}/etc-link"),
    "hard link into": lambda d: os.link("/home/cdsw/mine", f"{d}/mine"),
    "setxattr": lambda d: os.setxattr(f"{d}/ojdbc8.jar", "user.x", b"1"),
    "shutil.copy into": lambda d: shutil.copy("/home/cdsw/mine", f"{d}/conf/"),
    "shutil.rmtree": lambda d: shutil.rmtree(f"{d}/conf"),
    "shutil.copytree into": lambda d: shutil.copytree("/home/cdsw", f"{d}/conf/copy"),
}


@pytest.mark.parametrize("where", [IN_MOUNT, DIRECT], ids=["through the link", "directly"])
@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_every_write_in_a_mount_is_erofs(
    started: testing.StartedWorkload, where: str, write: str
) -> None:
    """Any change inside an add-on's mount fails with EROFS, and changes nothing."""
    Path("/home/cdsw/mine").write_text("mine")
    before = sorted(os.listdir(DIRECT)), sorted(os.listdir(DIRECT + "/conf"))
    assert errno_of(lambda: WRITES[write](where)) == "EROFS"
    assert (sorted(os.listdir(DIRECT)), sorted(os.listdir(DIRECT + "/conf"))) == before
    assert Path(DIRECT, "ojdbc8.jar").read_bytes() == JAR
    st = os.stat(DIRECT + "/ojdbc8.jar")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, 0)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: os.mkdir(DIRECT + "/conf"), "EEXIST"),  # existence is checked first
        (lambda: open(DIRECT + "/ojdbc8.jar", "x"), "EEXIST"),
        (lambda: os.rename(DIRECT + "/ojdbc8.jar", "/home/cdsw/x.jar"), "EXDEV"),
        (lambda: os.rename("/home/cdsw/mine", DIRECT + "/mine"), "EXDEV"),
        (lambda: os.link(DIRECT + "/ojdbc8.jar", "/home/cdsw/x.jar"), "EXDEV"),
        (lambda: os.unlink("/opt/oracle"), "ok"),  # the link is cdsw's, in cdsw's /opt
        (lambda: open(DIRECT + "/ojdbc8.jar", "rb").close(), "ok"),
        (lambda: os.close(os.open(DIRECT + "/ojdbc8.jar", os.O_RDONLY)), "ok"),
        (lambda: os.close(os.open(DIRECT + "/ojdbc8.jar", os.O_RDONLY | os.O_CREAT)), "ok"),
    ],
)
def test_errno_order_follows_linux(
    started: testing.StartedWorkload, call: Callable[[], object], expected: str
) -> None:
    """Where Linux reports another errno before EROFS (or none), so does the mount."""
    Path("/home/cdsw/mine").write_text("mine")
    assert errno_of(call) == expected


def test_shutil_move_out_of_a_mount_copies_then_fails(started: testing.StartedWorkload) -> None:
    """shutil.move across devices copies, then cannot remove the source: EROFS, source kept."""
    assert errno_of(lambda: shutil.move(DIRECT + "/ojdbc8.jar", "/home/cdsw/moved.jar")) == "EROFS"
    assert Path(DIRECT, "ojdbc8.jar").read_bytes() == JAR


def test_mount_is_read_only_for_root_too(started: testing.StartedWorkload) -> None:
    """Root may write anywhere, except in a read-only mount."""
    with started.as_root():
        assert os.getuid() == 0
        assert errno_of(lambda: open(DIRECT + "/ojdbc8.jar", "w")) == "EROFS"
        assert errno_of(lambda: open(DIRECT + "/ojdbc8.jar", "a")) == "EROFS"
        assert errno_of(lambda: open(DIRECT + "/ojdbc8.jar", "r+")) == "EROFS"
        assert errno_of(lambda: os.open(DIRECT + "/ojdbc8.jar", os.O_RDWR)) == "EROFS"
        assert errno_of(lambda: os.mkdir(DIRECT + "/root-dir")) == "EROFS"
        assert errno_of(lambda: os.chmod(DIRECT + "/ojdbc8.jar", 0o600)) == "EROFS"
        Path("/var/lib/state").write_text("root may")
    assert os.getuid() == CDSW
    assert Path("/var/lib/state").read_text() == "root may"


def test_reading_a_mount_never_updates_it(started: testing.StartedWorkload) -> None:
    """Reading leaves access times alone: a read-only mount records nothing."""
    before = os.stat(DIRECT + "/ojdbc8.jar")
    Path(DIRECT, "ojdbc8.jar").read_bytes()
    after = os.stat(DIRECT + "/ojdbc8.jar")
    assert (after.st_atime_ns, after.st_mtime_ns) == (before.st_atime_ns, before.st_mtime_ns)


# -- permissions outside the mounts --------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: open("/var/lib/new", "w"), "EACCES"),  # root's 755
        (lambda: os.mkdir("/var/lib/dir"), "EACCES"),
        (lambda: open("/usr/bin/env", "w"), "EACCES"),  # root's file
        (lambda: os.listdir("/root"), "EACCES"),  # root's 700
        (lambda: os.mkdir("/runtime-addons/mine"), "EACCES"),  # root's mount point
        (lambda: Path("/usr/bin/mytool").write_text("x"), "ok"),  # cdsw owns /usr/bin
        (lambda: Path("/etc/app.conf").write_text("x"), "ok"),  # /etc is 777
        (lambda: Path("/home/cdsw/x").write_text("x"), "ok"),
        (lambda: Path("/tmp/x").write_text("x"), "ok"),
    ],
)
def test_permissions_are_the_runtimes(
    started: testing.StartedWorkload, call: Callable[[], object], expected: str
) -> None:
    """Outside the mounts, cdsw gets EACCES exactly where the runtime's modes say."""
    assert errno_of(call) == expected


def test_cdsw_may_write_where_it_owns(started: testing.StartedWorkload) -> None:
    """/home/cdsw is cdsw's, /tmp is 1777: files there belong to cdsw."""
    Path("/tmp/out.txt").write_text("data")
    assert os.stat("/tmp/out.txt").st_uid == CDSW
    assert stat.S_IMODE(os.stat("/tmp").st_mode) == 0o1777
    os.makedirs("/home/cdsw/a/b")
    assert stat.S_IMODE(os.stat("/home/cdsw/a/b").st_mode) == 0o755


# -- leaving ------------------------------------------------------------------------


def test_leaving_restores_the_process(oracle: Path, runtime: RuntimeImage, tmp_path: Path) -> None:
    """After the block, even one that raised, patching and pyfakefs's ids are as before."""
    state = process_state()
    real = tmp_path / "real.txt"

    def fail_inside() -> None:
        with testing.workload(oracle, runtime) as wl:
            seen.append(wl)
            os.makedirs(tmp_path, exist_ok=True)
            real.write_text("fake")
            assert real.read_text() == "fake"
            _ = 1 / 0

    seen: list[testing.StartedWorkload] = []
    with pytest.raises(ZeroDivisionError):
        fail_inside()
    (wl,) = seen
    assert process_state() == state
    assert not real.exists()
    assert not wl.active
    with pytest.raises(testing.HarnessError, match="has stopped"), wl.as_root():
        pass


def test_ids_set_before_are_restored_exactly(oracle: Path, runtime: RuntimeImage) -> None:
    """Uid and gid emulation set by the caller is put back as it was, not reset to the host's."""
    previous = helpers.get_uid(), helpers.get_gid()
    helpers.set_uid(4242)
    helpers.set_gid(4343)
    try:
        with testing.workload(oracle, runtime):
            assert os.getuid() == CDSW
        assert (helpers.get_uid(), helpers.get_gid()) == (4242, 4343)
    finally:
        helpers.set_uid(previous[0])
        helpers.set_gid(previous[1])


def test_failing_start_restores_the_process(bundle: BundleFactory, tmp_path: Path) -> None:
    """An input that cannot be read raises before anything is patched."""
    state = process_state()
    with pytest.raises(Exception, match="does not exist"), testing.workload(tmp_path / "none"):
        pass
    with (
        pytest.raises(Exception, match="cannot load runtime"),
        testing.workload(
            bundle("a", ["/opt/a"], [("opt/a", "f", 0o644, "")]), tmp_path / "no-runtime"
        ),
    ):
        pass
    assert process_state() == state


def test_one_workload_at_a_time(oracle: Path, runtime: RuntimeImage) -> None:
    """A second workload inside the first is refused, and the first stays intact."""
    with testing.workload(oracle, runtime) as first:
        with (
            pytest.raises(testing.HarnessError, match="already active"),
            testing.workload(oracle, runtime),
        ):
            pass
        assert first.active
        assert os.getuid() == CDSW
        assert Path("/opt/oracle/ojdbc8.jar").read_bytes() == JAR


@pytest.mark.parametrize("runtime_arg", ["all", ["a", "b"]])
def test_one_runtime_per_workload(oracle: Path, runtime_arg: object) -> None:
    """A workload runs in one runtime; 'all' and lists are refused with a hint."""
    with (
        pytest.raises(testing.HarnessError, match="one runtime"),
        testing.workload(
            oracle,
            runtime_arg,  # type: ignore[arg-type]
        ),
    ):
        pass


# -- inputs -------------------------------------------------------------------------


def test_runtime_from_a_docker_export_tarball(oracle: Path, tmp_path: Path) -> None:
    """runtime= takes what --runtime takes, here a root filesystem tarball."""
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(
        tar_bytes(
            [("opt", "d", 0o755, ""), ("etc", "d", 0o755, ""), ("etc/motd", "f", 0o644, "hi")],
            uid=CDSW,
        )
    )
    with testing.workload([oracle], runtime=tarball) as wl:
        assert wl.runtime.name == "rootfs"
        assert wl.ok, wl.findings
        assert sorted(os.listdir("/etc")) == ["motd"]
        assert Path("/opt/oracle/ojdbc8.jar").read_bytes() == JAR


def test_a_changed_bundle_is_read_again(bundle: BundleFactory, runtime: RuntimeImage) -> None:
    """Bundles are cached while their files are unchanged; a rewrite is picked up."""
    b = bundle("cfg", ["/opt/cfg"], [("opt/cfg", "f", 0o644, "v1")])
    with testing.workload(b, runtime):
        assert Path("/opt/cfg").read_text() == "v1"
    bundle("cfg", ["/opt/cfg"], [("opt/cfg", "f", 0o644, "version 2")])
    with testing.workload(b, runtime):
        assert Path("/opt/cfg").read_text() == "version 2"


def test_later_starts_replay_the_first(
    oracle: Path, bundle: BundleFactory, runtime: RuntimeImage
) -> None:
    """A later start-up with the same inputs rebuilds the same filesystem from the cache."""
    made = bundle("deep", ["/srv/app/bin/tool"], [("srv/app/bin/tool", "f", 0o755, "#!")])

    def snapshot() -> list[tuple[str, int, int, str]]:
        rows = []
        for top in ("/opt", "/srv", "/etc", "/runtime-addons", "/home", "/tmp"):
            for dirpath, dirs, files in os.walk(top):
                for name in sorted(dirs + files):
                    p = os.path.join(dirpath, name)
                    st = os.lstat(p)
                    target = os.readlink(p) if os.path.islink(p) else ""
                    rows.append((p, st.st_mode, st.st_uid, target))
        return sorted(rows)

    _OUTCOMES.clear()
    shots = []
    for _ in range(2):
        with testing.workload([oracle, made], runtime) as wl, wl.as_root():
            shots.append((snapshot(), wl.report))
    assert shots[0] == shots[1]
    assert len(_OUTCOMES) == 1


# -- with pyfakefs's own fs fixture ----------------------------------------------------


def test_builds_into_an_active_fake_filesystem(
    oracle: Path, runtime: RuntimeImage, fs: FakeFilesystem
) -> None:
    """With fs active, the workload goes into that filesystem, beside the test's files."""
    fs.create_file("/etc/app.conf", contents="mine")
    with testing.workload(oracle, runtime) as wl:
        assert wl.fs is fs
        assert Path("/etc/app.conf").read_text() == "mine"
        assert Path("/opt/oracle/ojdbc8.jar").read_bytes() == JAR
        assert errno_of(lambda: open("/opt/oracle/x", "w")) == "EROFS"
        with wl.as_root():
            fs.create_file("/var/lib/app/state", contents="s")
    # fs is still patching after the workload; its cwd and ids are back.
    assert Path("/var/lib/app/state").read_text() == "s"
    assert os.getcwd() == "/"
    assert Patcher.PATCHER is not None


def test_one_workload_per_fake_filesystem(
    oracle: Path, runtime: RuntimeImage, fs: FakeFilesystem
) -> None:
    """A fake filesystem that already holds a workload is refused a second one."""
    with testing.workload(oracle, runtime):
        pass
    # Reading the inputs pauses and resumes pyfakefs, which re-binds its fakes:
    # compare what the harness itself sets.
    state = helpers.get_uid(), helpers.get_gid(), fs.cwd, fs.umask, Patcher.PATCHER
    with pytest.raises(testing.HarnessError, match="already holds a workload"):
        testing.workload(oracle, runtime).__enter__()
    assert (helpers.get_uid(), helpers.get_gid(), fs.cwd, fs.umask, Patcher.PATCHER) == state


def test_bundle_made_in_the_fake_filesystem(fs: FakeFilesystem, runtime: RuntimeImage) -> None:
    """A bundle that only exists in the active fake filesystem is read from there."""
    from addon_mount._builders import write_bundle

    b = write_bundle(
        "/work/bundles/fake", "fake", ["/opt/fake"], [("opt/fake", "f", 0o644, "in fs")]
    )
    with testing.workload(b, runtime) as wl:
        assert wl.ok, wl.findings
        assert Path("/opt/fake").read_text() == "in fs"


def test_clear_cache_forgets_inputs(oracle: Path, runtime: RuntimeImage) -> None:
    """clear_cache empties the process caches; the next workload reads everything again."""
    with testing.workload(oracle, runtime):
        pass
    testing.clear_cache()
    assert not _OUTCOMES
    with testing.workload(oracle, runtime) as wl:
        assert wl.ok


def test_a_workload_without_add_ons_is_the_runtime(runtime: RuntimeImage) -> None:
    """No bundles: nothing is mounted, nothing linked, the runtime is there."""
    with testing.workload([], runtime) as wl:
        assert wl.ok
        assert wl.links == ()
        assert sorted(os.listdir("/runtime-addons")) == []
        assert os.path.isfile("/usr/bin/env")


def test_factory_takes_bundles_as_arguments_or_a_list(
    oracle: Path, bundle: BundleFactory, runtime: RuntimeImage
) -> None:
    """addon_workload(a, b) and addon_workload([a, b]) start the same workload, once."""
    tool = bundle("tool", ["/opt/tool"], TOOL)
    for call in ((oracle, tool), ([oracle, tool],)):
        factory = testing.WorkloadFactory()
        try:
            wl = factory(*call, runtime=runtime)
            assert [link.path for link in wl.links] == ["/opt/oracle", "/opt/tool"]
            with pytest.raises(testing.HarnessError, match="already called in this test"):
                factory(oracle, runtime=runtime)
        finally:
            factory.close()
        assert not wl.active
    factory.close()  # closing twice is harmless


# -- several workloads in a test ----------------------------------------------------


def test_workloads_one_after_another(oracle: Path, runtime: RuntimeImage) -> None:
    """Stopping a workload lets the next start: before and after enabling an add-on."""
    state = process_state()
    before = testing.WorkloadFactory(runtime)
    try:
        with before() as empty:
            assert not os.path.exists("/opt/oracle")
        assert not empty.active
        assert process_state() == state
        after = before(oracle)
        assert Path("/opt/oracle/ojdbc8.jar").read_bytes() == JAR
        after.stop()
        after.stop()  # stopping twice does nothing
        assert process_state() == state
        assert empty.links == ()
        assert [link.path for link in after.links] == ["/opt/oracle"]  # still readable
    finally:
        before.close()
    assert process_state() == state


def test_factory_refuses_a_second_active_workload(oracle: Path, runtime: RuntimeImage) -> None:
    """A call while the previous workload is active fails and says how to go on."""
    factory = testing.WorkloadFactory()
    try:
        first = factory(oracle, runtime=runtime)
        with pytest.raises(testing.HarnessError, match=r"call its stop\(\)"):
            factory(oracle, runtime=runtime)
        assert first.active
        assert Path("/opt/oracle/ojdbc8.jar").read_bytes() == JAR
    finally:
        factory.close()
    assert not first.active


def test_factory_runtime_is_the_default_of_each_call(oracle: Path, runtime: RuntimeImage) -> None:
    """The factory's runtime serves calls that name none; a call's runtime wins."""
    factory = testing.WorkloadFactory(runtime)
    try:
        assert factory(oracle).runtime is runtime
        factory.started.stop()  # type: ignore[union-attr]
        assert factory(oracle, runtime="cml-r").runtime.name == "cml-r"
    finally:
        factory.close()


def test_two_runtimes_in_one_test(oracle: Path) -> None:
    """A workload per runtime, one after the other, each with its own runtime's modes."""
    seen = {}
    for name in ("cml-workbench-python", "cml-conda"):
        with testing.workload(oracle, name) as wl:
            seen[name] = (
                wl.runtime.name,
                Path("/opt/conda").stat().st_uid if Path("/opt/conda").is_dir() else None,
            )
    assert seen == {
        "cml-workbench-python": ("cml-workbench-python", None),
        "cml-conda": ("cml-conda", 0),
    }


# -- failure output ----------------------------------------------------------------------


def test_assert_ok_passes_a_clean_start(started: testing.StartedWorkload) -> None:
    """assert_ok returns quietly when no finding is an error."""
    started.assert_ok()
    started.assert_ok(strict=True)


def test_assert_ok_fails_with_the_cli_report(
    bundle: BundleFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed start-up's AssertionError is the text report the CLI prints at 100 columns."""
    from .conftest import run_cli

    broken = bundle("broken", ["/opt/ora"], ORACLE[:2])
    with testing.workload(broken) as wl, pytest.raises(AssertionError) as caught:
        wl.assert_ok()
    monkeypatch.setenv("COLUMNS", str(testing.REPORT_WIDTH))
    status, out, _ = run_cli(["check", str(broken)], capsys)
    assert status == 1
    assert str(caught.value) == out
    assert "error   AM300 missing-entry  /opt/ora" in out


def test_assert_ok_strict_fails_on_warnings(bundle: BundleFactory, runtime: RuntimeImage) -> None:
    """With strict, a warning fails too, and the report says FAILED."""
    vendor = bundle("vendor", ["/opt/vendor/tool"], [("opt/vendor/tool", "f", 0o644, "")])
    with testing.workload(vendor, runtime) as wl:
        wl.assert_ok()
        with pytest.raises(AssertionError, match=r"vendor \(custom-addon-vendor\): FAILED"):
            wl.assert_ok(strict=True)


# -- runtimes to parametrize over ----------------------------------------------------------


def test_runtimes_lists_and_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runtimes() is every built-in one; names stay, 'all' expands, paths become absolute."""
    from addon_mount import builtin_names

    assert testing.runtimes() == builtin_names()
    assert testing.runtimes("cml-r", "builtin:cml-conda", "cml-r") == ["cml-r", "cml-conda"]
    # A built-in's other name is the same runtime: it runs once.
    assert testing.runtimes("cml-r", "cml-2025.01-r4.4") == ["cml-r"]
    assert testing.runtimes("cml-2025.01-r4.4", "all").count("cml-r") == 0
    assert testing.runtimes("cml-r", "all")[0] == "cml-r"
    assert len(testing.runtimes("cml-r", "all")) == len(builtin_names())
    snap = tmp_path / "runtime.snap"
    snap.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert testing.runtimes("runtime.snap") == [str(snap)]


def test_runtimes_suggests_the_nearest_name() -> None:
    """A misspelt runtime name is refused with the built-in name it is closest to."""
    from addon_mount import RuntimeLoadError

    with pytest.raises(RuntimeLoadError, match="did you mean 'cml-workbench-python'"):
        testing.runtimes("cml-workbench-pyhton")
    with pytest.raises(RuntimeLoadError) as caught:
        testing.runtimes("nothing-like-it")
    assert "did you mean" not in str(caught.value)


# -- Cloudera's own add-ons ----------------------------------------------------------------


def test_cloudera_addons_are_attached_as_a_session_has_them(bundle: BundleFactory) -> None:
    """cloudera_addons= links Spark, the Hadoop CLI and cmladdon first, from their mounts."""
    tool = bundle("tool", ["/opt/tool"], TOOL)
    with testing.workload(tool) as alone:
        assert not os.path.lexists("/opt/spark")
    assert alone.ok
    with testing.workload(tool, cloudera_addons="default") as wl:
        assert os.readlink("/opt/spark").startswith("/runtime-addons/spark3")
        assert os.path.isdir("/opt/cmladdons")  # noqa: PTH112
        assert os.path.isdir("/etc/hadoop/conf")  # noqa: PTH112
        assert os.path.isfile("/opt/tool/bin/run")
    assert wl.ok


def test_a_path_cloudera_ships_collides_only_with_its_addon(bundle: BundleFactory) -> None:
    """A bundle asking for /opt/spark passes alone, and fails where Spark is attached."""
    spark = bundle("myspark", ["/opt/spark"], [("opt/spark", "d", 0o755, None)])
    with testing.workload(spark) as alone:
        pass
    assert alone.ok
    factory = testing.WorkloadFactory()
    try:
        attached = factory(spark, cloudera_addons="spark3")
        assert not attached.ok
        assert "AM301" in {f.code for f in attached.findings}
        assert os.readlink("/opt/spark").startswith("/runtime-addons/spark3")
    finally:
        factory.close()


def test_cloudera_addons_are_read_only_and_set_the_sessions_variables(
    bundle: BundleFactory,
) -> None:
    """Spark's and the Hadoop CLI's mounts refuse writes (EROFS); SPARK_HOME and such are set."""
    tool = bundle("tool", ["/opt/tool"], TOOL)
    before = {name: os.environ.get(name) for name in ("SPARK_HOME", "HADOOP_CONF_DIR")}
    with testing.workload(tool, cloudera_addons="spark3,hadoop-cli"):
        assert os.environ["SPARK_HOME"] == "/opt/spark"
        assert os.environ["HADOOP_CONF_DIR"] == "/etc/hadoop/conf"
        assert os.path.isdir(os.environ["JAVA_HOME"])  # noqa: PTH112
        for path in ("/opt/spark/new.jar", "/etc/hadoop/conf/new.xml"):
            with pytest.raises(OSError, match="Read-only file system") as exc:
                Path(path).write_text("x")
            assert exc.value.errno == errno.EROFS, path
        # The Spark conf is a copy cdsw owns: users may add to it.
        Path("/etc/spark/conf/extra.conf").write_text("x")
    assert {name: os.environ.get(name) for name in before} == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("spark2,spark3", "one session attaches one of each kind (one Spark)"),
        ("all", "start one workload per set"),
        ("sparky", "sparky"),
        ("none,all", "stand alone"),
    ],
)
def test_cloudera_addons_one_session_cannot_have(
    bundle: BundleFactory, value: str, message: str
) -> None:
    """Names no one session can attach, or no add-on has, are a HarnessError saying so."""
    tool = bundle("tool", ["/opt/tool"], TOOL)
    with (
        pytest.raises(testing.HarnessError, match=re.escape(message)),
        testing.workload(tool, cloudera_addons=value),
    ):
        pass
    assert not os.path.lexists("/opt/tool")
