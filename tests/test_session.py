"""Tests for the session around a workload: cdsw's identity, and no programs."""

# The calls under test are os.*, open() and subprocess on purpose.
# ruff: noqa: PTH111, PTH123, S602, S605, S606

from __future__ import annotations

import asyncio
import errno
import getpass
import grp
import importlib.util
import multiprocessing
import multiprocessing.popen_fork
import multiprocessing.popen_spawn_posix
import multiprocessing.resource_tracker
import os
import pty
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from pyfakefs import helpers
from pyfakefs.fake_filesystem import FakeFilesystem

from addon_mount import RuntimeImage, testing

from .conftest import CDSW, TOOL, BundleFactory
from .test_testing import process_state

CDSW_LINE = "cdsw:x:8536:8536:CDSW User:/home/cdsw:/bin/bash"


@pytest.fixture
def tool(bundle: BundleFactory) -> Path:
    """A bundle linking /opt/tool, whose bin/run is a shell script."""
    return bundle("tool", ["/opt/tool"], TOOL)


@pytest.fixture
def session(tool: Path) -> Iterator[testing.StartedWorkload]:
    """The tool add-on started in the default runtime, which has /etc/passwd and /etc/group."""
    with testing.workload(tool) as wl:
        yield wl


# -- identity -------------------------------------------------------------------------


def test_environment_is_the_sessions(session: testing.StartedWorkload) -> None:
    """HOME, USER and LOGNAME are cdsw's, so ~ and getpass answer as in a session."""
    assert {k: os.environ[k] for k in ("HOME", "USER", "LOGNAME")} == {
        "HOME": "/home/cdsw",
        "USER": "cdsw",
        "LOGNAME": "cdsw",
    }
    assert os.path.expanduser("~") == "/home/cdsw"
    assert Path.home() == Path("/home/cdsw")
    assert getpass.getuser() == "cdsw"
    Path("~/.cache/tool").expanduser().mkdir(parents=True)  # cdsw's own home is writable


def test_path_is_the_sessions(session: testing.StartedWorkload) -> None:
    """PATH is a session's, so shutil.which finds an add-on's program where a session would."""
    assert os.environ["PATH"].split(":")[-2:] == ["/home/cdsw/.local/bin", "/opt/conda/bin"]
    assert os.environ["PATH"].split(":")[1] == "/usr/local/bin"
    Path("/home/cdsw/.local/bin").mkdir(parents=True)
    Path("/home/cdsw/.local/bin/mytool").write_text("#!/bin/sh\n")
    assert shutil.which("mytool") is None  # not executable yet
    Path("/home/cdsw/.local/bin/mytool").chmod(0o755)
    assert shutil.which("mytool") == "/home/cdsw/.local/bin/mytool"


def test_path_is_put_back(tool: Path) -> None:
    """The test process's PATH is back once the workload stops."""
    before = os.environ["PATH"]
    with testing.workload(tool):
        assert os.environ["PATH"] != before
    assert os.environ["PATH"] == before


def test_pwd_and_grp_answer_for_cdsw(session: testing.StartedWorkload) -> None:
    """pwd and grp find cdsw by id and by name, and root; other ids are unknown, as on Linux."""
    by_uid = pwd.getpwuid(CDSW)
    assert by_uid == pwd.getpwnam("cdsw")
    assert (by_uid.pw_name, by_uid.pw_uid, by_uid.pw_gid, by_uid.pw_dir) == (
        "cdsw",
        CDSW,
        CDSW,
        "/home/cdsw",
    )
    assert pwd.getpwuid(0).pw_dir == "/root"
    assert grp.getgrgid(CDSW).gr_name == "cdsw"
    assert grp.getgrnam("cdsw").gr_gid == CDSW
    assert os.path.expanduser("~cdsw") == "/home/cdsw"
    with pytest.raises(KeyError, match="uid not found: 4242"):
        pwd.getpwuid(4242)
    with pytest.raises(KeyError, match="name not found: 'nobody-here'"):
        grp.getgrnam("nobody-here")
    assert [e.pw_name for e in pwd.getpwall()] == ["root", "cdsw"]


def test_effective_ids_follow_the_workload_user(session: testing.StartedWorkload) -> None:
    """geteuid, getegid and getgroups say cdsw, and root inside as_root()."""
    assert (os.geteuid(), os.getegid(), os.getgroups()) == (CDSW, CDSW, [CDSW])
    with session.as_root():
        assert (os.geteuid(), os.getegid(), os.getgroups()) == (0, 0, [0])
    assert os.geteuid() == CDSW


def test_user_databases_hold_root_and_cdsw(session: testing.StartedWorkload) -> None:
    """/etc/passwd and /etc/group read with the lines the image has; they stay root's, 644."""
    assert Path("/etc/passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/bash",
        CDSW_LINE,
    ]
    assert Path("/etc/group").read_text() == "root:x:0:\ncdsw:x:8536:\n"
    st = Path("/etc/passwd").stat()
    assert (st.st_uid, st.st_mode & 0o777, st.st_size) == (
        0,
        0o644,
        len(Path("/etc/passwd").read_bytes()),
    )
    with pytest.raises(PermissionError):
        Path("/etc/passwd").write_text("")


def test_a_user_added_by_the_test_is_found(session: testing.StartedWorkload) -> None:
    """pwd reads the workload's /etc/passwd: a line added as root is seen."""
    with session.as_root(), open("/etc/passwd", "a") as passwd:
        passwd.write("spark:x:1001:1001::/opt/spark:/bin/sh\n")
    assert pwd.getpwnam("spark").pw_dir == "/opt/spark"


def test_files_the_runtime_lacks_are_not_created(tool: Path, runtime: RuntimeImage) -> None:
    """A runtime without /etc/passwd gets none; pwd still answers for cdsw."""
    with testing.workload(tool, runtime):
        assert not Path("/etc/passwd").exists()
        assert pwd.getpwuid(CDSW).pw_name == "cdsw"
        assert getpass.getuser() == "cdsw"


def test_existing_lines_are_kept(tool: Path, runtime: RuntimeImage, fs: FakeFilesystem) -> None:
    """With the fs fixture, lines already in /etc/passwd stay and cdsw's is added after them."""
    fs.create_file("/etc/passwd", contents="app:x:500:500::/srv/app:/bin/sh")
    with testing.workload(tool, runtime):
        lines = Path("/etc/passwd").read_text().splitlines()
        assert lines == [
            "app:x:500:500::/srv/app:/bin/sh",
            "root:x:0:0:root:/root:/bin/bash",
            CDSW_LINE,
        ]
        assert pwd.getpwuid(500).pw_name == "app"


def test_identity_is_put_back(tool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset HOME stays unset, a set USER gets its value back, functions are the host's."""
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setenv("USER", "someone")
    state = process_state()
    seen: list[str] = []

    def fail_inside() -> None:
        with testing.workload(tool):
            seen.append(os.environ["HOME"])
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert seen == ["/home/cdsw"]
    assert "HOME" not in os.environ
    assert os.environ["USER"] == "someone"
    assert process_state() == state


def test_the_whole_environment_is_put_back(tool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable set inside is gone after, one removed inside is back; PWD is the session's."""
    monkeypatch.setenv("SHELL_OF_HOST", "/bin/zsh")
    before = dict(os.environ)
    with testing.workload(tool):
        assert os.environ["PWD"] == str(Path.cwd()) == "/home/cdsw"  # noqa: S105
        os.environ["SET_INSIDE"] = "1"
        del os.environ["SHELL_OF_HOST"]
    assert dict(os.environ) == before


def test_the_hosts_temporary_directory_is_not_the_sessions(
    tool: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TMPDIR (macOS always sets it) is the host's: tempfile uses the workload's /tmp."""
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(host_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(host_tmp))  # as a capture plugin caches it
    with testing.workload(tool):
        assert "TMPDIR" not in os.environ
        fd, name = tempfile.mkstemp()
        os.close(fd)
        assert name.startswith("/tmp/")
        assert Path(name).stat().st_uid == CDSW
    assert os.environ["TMPDIR"] == str(host_tmp)
    assert tempfile.tempdir == str(host_tmp)
    assert list(host_tmp.iterdir()) == []  # nothing reached the real disk


def test_stopping_inside_as_root_puts_the_hosts_ids_back(tool: Path) -> None:
    """stop() inside as_root() or as_user(): the ids after are the host's, not cdsw's."""
    with testing.workload(tool) as wl, wl.as_root():
        wl.stop()
    with testing.workload(tool) as wl, wl.as_user(1234, 1234):
        wl.stop()
    assert (helpers.get_uid(), helpers.get_gid()) == (os.getuid(), os.getgid())


def test_resuid_and_resgid_are_the_simulated_ids(session: testing.StartedWorkload) -> None:
    """getresuid and getresgid answer like getuid: cdsw's, root's inside as_root()."""
    assert (os.getresuid(), os.getresgid()) == ((CDSW,) * 3, (CDSW,) * 3)
    with session.as_user(1234, 99):
        assert (os.getresuid(), os.getresgid()) == ((1234,) * 3, (99,) * 3)


# -- programs -----------------------------------------------------------------------------

PROGRAM_CALLS: dict[str, Callable[[], object]] = {
    "subprocess.run": lambda: subprocess.run(["/opt/tool/bin/run"], check=False),
    "subprocess.check_output": lambda: subprocess.check_output("ls /opt/tool", shell=True),
    "subprocess.Popen": lambda: subprocess.Popen(["ls"]),
    "os.system": lambda: os.system("ls /opt/tool"),
    "os.popen": lambda: os.popen("ls"),
    "os.execv": lambda: os.execv("/opt/tool/bin/run", ["run"]),
    "os.execlp": lambda: os.execlp("ls", "ls"),
    "os.spawnv": lambda: os.spawnv(os.P_WAIT, "/opt/tool/bin/run", ["run"]),
    "os.posix_spawn": lambda: os.posix_spawn("/opt/tool/bin/run", ["run"], {}),
    "asyncio": lambda: asyncio.run(asyncio.create_subprocess_exec("ls")),  # type: ignore[arg-type]
    "os.fork": lambda: os.fork(),  # noqa: PLW0108 - looked up inside the workload
    "os.forkpty": lambda: os.forkpty(),  # noqa: PLW0108
    "pty.spawn": lambda: pty.spawn(["ls"]),
    "multiprocessing fork": lambda: _process("fork"),
    "multiprocessing spawn": lambda: _process("spawn"),
}


def _process(method: str) -> None:
    # Its modules are imported above: one first imported while pyfakefs patches is
    # left holding that patcher's fake os module after it stops.
    multiprocessing.get_context(method).Process(target=print).start()


@pytest.mark.parametrize("call", PROGRAM_CALLS.values(), ids=PROGRAM_CALLS.keys())
def test_starting_a_program_is_one_clear_error(
    session: testing.StartedWorkload, call: Callable[[], object]
) -> None:
    """Every way of starting a program raises CannotRunProgramError, saying why and what instead."""
    with pytest.raises(testing.CannotRunProgramError) as caught:
        call()
    assert isinstance(caught.value, testing.HarnessError)
    message = str(caught.value)
    assert "no program can run" in message
    assert "os.access(path, os.X_OK)" in message
    assert "mock the call" in message


def test_the_error_names_the_call_and_program(session: testing.StartedWorkload) -> None:
    """The error says which call was made with which program."""
    with pytest.raises(testing.CannotRunProgramError) as caught:
        subprocess.run(["/opt/tool/bin/run", "--version"], check=True)
    assert caught.value.call == "subprocess.Popen"
    assert caught.value.program == "['/opt/tool/bin/run', '--version']"
    with pytest.raises(testing.CannotRunProgramError) as caught:
        os.spawnv(os.P_WAIT, "/opt/tool/bin/run", ["run"])
    assert (caught.value.call, caught.value.program) == ("os.spawnv", "'/opt/tool/bin/run'")


def test_the_documented_alternatives_work(session: testing.StartedWorkload) -> None:
    """Checking the program's file and mocking subprocess.run both work inside a workload."""
    assert os.access("/opt/tool/bin/run", os.X_OK)
    assert Path("/opt/tool/bin/run").read_text().startswith("#!/bin/sh")
    with mock.patch("subprocess.run") as run:
        run.return_value = subprocess.CompletedProcess(["/opt/tool/bin/run"], 0, b"1.0\n")
        assert subprocess.run(["/opt/tool/bin/run"], check=True).stdout == b"1.0\n"
    run.assert_called_once()


def test_programs_run_again_after_the_workload(tool: Path) -> None:
    """Once the workload stops, a real program runs."""
    with testing.workload(tool):
        pass
    done = subprocess.run(
        [sys.executable, "-c", "print('real')"], capture_output=True, text=True, check=True
    )
    assert done.stdout == "real\n"


def test_a_fork_names_no_program(session: testing.StartedWorkload) -> None:
    """A fork is refused as a process start, with nothing made up for a program."""
    with pytest.raises(testing.CannotRunProgramError) as caught:
        os.fork()
    assert (caught.value.call, caught.value.program) == ("os.fork", "")
    assert str(caught.value).startswith("os.fork(): ")
    with pytest.raises(testing.CannotRunProgramError) as caught:
        _process("spawn")
    assert caught.value.call == "_posixsubprocess.fork_exec"
    assert sys.executable in caught.value.program


# -- calls that would reach the real system -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("os.mkfifo", lambda: os.mkfifo("/tmp/fifo")),
        ("os.statvfs", lambda: os.statvfs("/opt/tool")),
        ("os.chroot", lambda: os.chroot("/opt/tool")),
        ("os.pwrite", lambda: os.pwrite(os.open("/tmp/f", os.O_CREAT | os.O_WRONLY), b"x", 0)),
        ("os.pread", lambda: os.pread(os.open("/etc/passwd", os.O_RDONLY), 1, 0)),
    ],
)
def test_unsimulated_calls_are_refused(
    session: testing.StartedWorkload, name: str, call: Callable[[], object]
) -> None:
    """An os function pyfakefs does not fake is refused, naming it, and touches no real file."""
    with pytest.raises(testing.NotSimulatedError) as caught:
        call()
    assert caught.value.call == name
    assert isinstance(caught.value, testing.HarnessError)
    assert f"unittest.mock.patch('{name}')" in str(caught.value)


def test_no_fifo_is_made_on_the_real_disk(tool: Path, tmp_path: Path) -> None:
    """A path the fake filesystem lacks is not created for real (os.mkfifo would)."""
    target = tmp_path / "fifo"
    with testing.workload(tool), pytest.raises(testing.NotSimulatedError):
        os.mkfifo(target)
    assert not target.exists()
    assert os.mkfifo.__module__ == "posix"  # the real function is back


def test_set_ids_keep_cdsw(session: testing.StartedWorkload) -> None:
    """cdsw may set its own ids but no other, and never changes the process's."""
    real_uid = os.getresuid() if hasattr(os, "getresuid") else None
    os.setuid(8536)
    os.setgid(8536)
    os.setresuid(-1, 8536, -1)
    for call in (
        lambda: os.setuid(0),
        lambda: os.seteuid(0),
        lambda: os.setreuid(8536, 0),
        lambda: os.setgid(0),
        lambda: os.setgroups([0]),
        lambda: os.initgroups("cdsw", 0),
    ):
        with pytest.raises(PermissionError) as caught:
            call()
        assert caught.value.errno == errno.EPERM
    assert (os.getuid(), os.geteuid(), os.getgid()) == (8536, 8536, 8536)
    if real_uid is not None:
        assert os.getresuid() == real_uid


def test_root_sets_the_simulated_id(session: testing.StartedWorkload) -> None:
    """As root (wl.as_root()), setuid changes the simulated user, as it would the process's."""
    with session.as_root():
        os.setuid(8536)
        assert os.getuid() == 8536
        with pytest.raises(PermissionError):
            Path("/root/x").write_text("x")


# -- modules an add-on ships ------------------------------------------------------------------

PYLIB = [
    ("opt/pylib/addon_mod.py", "f", 0o644, "VALUE = 42\n"),
    ("opt/pylib/addon_pkg/__init__.py", "f", 0o644, "from .inner import NAME\n"),
    ("opt/pylib/addon_pkg/inner.py", "f", 0o644, "NAME = 'inner'\n"),
    ("opt/pylib/addon_secret.py", "f", 0o600, "X = 1\n"),
]


def test_an_addons_modules_import_from_its_mount(bundle: BundleFactory) -> None:
    """import finds modules and packages on sys.path entries the add-on links; none after."""
    pylib = bundle("pylib", ["/opt/pylib"], PYLIB)
    sys.path.insert(0, "/opt/pylib")
    try:
        with testing.workload(pylib):
            import addon_mod  # type: ignore[import-not-found]
            import addon_pkg  # type: ignore[import-not-found]

            assert (addon_mod.VALUE, addon_pkg.NAME) == (42, "inner")
            assert addon_mod.__file__ == "/opt/pylib/addon_mod.py"
            spec = importlib.util.spec_from_file_location("by_path", "/opt/pylib/addon_mod.py")
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            assert module.VALUE == 42
            with pytest.raises(PermissionError):  # root's 600: cdsw may not read it
                import addon_secret  # type: ignore[import-not-found]  # noqa: F401
        assert "addon_mod" not in sys.modules
        assert "addon_pkg.inner" not in sys.modules
        with pytest.raises(ModuleNotFoundError):
            import addon_mod
    finally:
        sys.path.remove("/opt/pylib")
        for name in ("addon_mod", "addon_pkg", "addon_pkg.inner", "addon_secret"):
            sys.modules.pop(name, None)
