"""Tests for the session around a workload: cdsw's identity, and no programs."""

# The calls under test are os.*, open() and subprocess on purpose.
# ruff: noqa: PTH111, PTH123, S602, S605, S606

from __future__ import annotations

import asyncio
import getpass
import grp
import os
import pwd
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
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
}


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
