"""Tests for the pytest plugin: a user's test file using addon_workload, run by pytester."""

from __future__ import annotations

import builtins
import grp
import io
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pyfakefs import helpers
from pyfakefs.fake_filesystem_unittest import Patcher

from addon_mount._builders import MemberSpec, write_bundle

from .conftest import REPO

pytest_plugins = ["pytester"]

DOCS = REPO / "README.md"
ORACLE: list[MemberSpec] = [
    ("opt/oracle", "d", 0o755, ""),
    ("opt/oracle/ojdbc8.jar", "f", 0o644, b"PK\x03\x04 driver"),
    ("opt/oracle/conf", "d", 0o755, ""),
    ("opt/oracle/conf/tnsnames.ora", "f", 0o644, "XE = (HOST=db)(PORT=1521)\n"),
]
# The plugin must work under the strictest warning filter a project may use.
# (Hypothesis's plugin, unrelated, would import hypothesis in every inner run.)
INI = (
    "[pytest]\nfilterwarnings =\n    error\naddopts = -p no:cacheprovider -p no:hypothesispytest\n"
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: the docs' bundles beside the tests, and a strict pytest config."""
    bundles = pytester.path / "bundles"
    write_bundle(bundles / "oracle-driver", "oracle-driver", ["/opt/oracle"], ORACLE)
    write_bundle(bundles / "broken-driver", "broken-driver", ["/opt/ora"], ORACLE[:2])
    pytester.makeini(INI)
    return pytester


def readme_examples() -> dict[str, str]:
    """Every Python example of the README marked ``<!-- example: NAME -->``, by NAME."""
    found = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", DOCS.read_text(), re.S)
    return dict(found)


def docs_example() -> str:
    """The complete example test file of the README."""
    return readme_examples()["test_oracle_addon.py"]


def process_state() -> tuple[object, ...]:
    """What a test using the fixture must leave as it found."""
    return (
        helpers.get_uid(),
        helpers.get_gid(),
        Path.cwd(),
        os.stat,
        builtins.open,
        io.open,
        Path.read_text,
        shutil.copyfile,
        Patcher.PATCHER,
        # The session's identity and the process guard are put back too.
        *(os.environ.get(name) for name in ("HOME", "USER", "LOGNAME")),
        pwd.getpwuid,
        grp.getgrgid,
        os.geteuid,
        os.system,
        subprocess.Popen.__init__,
    )


def real_files(root: Path) -> set[str]:
    """Every path under *root* on the real disk, less the bytecode pytest writes."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_plugin_is_registered_through_the_entry_point(pytestconfig: pytest.Config) -> None:
    """Installing the package is enough: pytest loads the plugin from its pytest11 entry point."""
    plugin = pytestconfig.pluginmanager.get_plugin("addon_mount")
    assert plugin is not None
    assert plugin.__name__ == "addon_mount.pytest_plugin"


def test_docs_example_passes(project: pytest.Pytester) -> None:
    """The example test file of the README runs green with nothing but the package."""
    project.makepyfile(test_oracle_addon=docs_example())
    result = project.runpytest()
    result.assert_outcomes(passed=8)


def test_every_readme_example_runs(project: pytest.Pytester) -> None:
    """Each marked README example runs green: test files under pytest, the others as scripts."""
    examples = readme_examples()
    tests = {name: code for name, code in examples.items() if name.startswith("test_")}
    scripts = {name: code for name, code in examples.items() if name not in tests}
    assert {"test_before_after.py", "test_every_runtime.py", "without_pytest.py"} <= set(examples)
    for name, code in tests.items():
        (project.path / name).write_text(code)
    result = project.runpytest("-v")
    result.assert_outcomes(passed=26)  # 14, and one per built-in runtime
    result.stdout.fnmatch_lines(["*test_driver_in_every_runtime?cml-conda? PASSED*"])
    result.stdout.fnmatch_lines(["*test_with_spark.py::test_driver_beside_spark PASSED*"])
    for name, code in scripts.items():
        (project.path / name).write_text(code)
        ran = project.runpython(project.path / name)
        assert ran.ret == 0, f"{name}: {ran.stderr.str()}"


def test_fixture_is_listed_with_its_docstring(project: pytest.Pytester) -> None:
    """pytest --fixtures shows addon_workload and what it does."""
    project.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = project.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["addon_workload*", "*Start a simulated Cloudera AI workload*"])


FAILING = """
import os
from pathlib import Path

import pytest
from pyfakefs import helpers

BUNDLES = Path(__file__).parent / "bundles"
LEAK = Path(__file__).parent / "leaked.txt"


def test_assertion_fails_inside(addon_workload):
    addon_workload(BUNDLES / "oracle-driver")
    os.makedirs(LEAK.parent, exist_ok=True)
    LEAK.write_text("only in the fake filesystem")
    Path("/home/cdsw/out.txt").write_text("x")
    assert LEAK.read_text() == "something else"


def test_exception_inside(addon_workload):
    addon_workload(BUNDLES / "oracle-driver")
    with helpers_as_root():
        pass


def helpers_as_root():
    raise RuntimeError("boom inside the workload")


def test_start_fails(addon_workload):
    addon_workload(BUNDLES / "no-such-bundle")


def test_called_twice(addon_workload):
    addon_workload(BUNDLES / "oracle-driver")
    addon_workload(BUNDLES / "broken-driver")


def test_program_started_inside(addon_workload):
    import subprocess

    addon_workload(BUNDLES / "oracle-driver")
    subprocess.run(["/opt/oracle/bin/sqlplus"])


def test_next_test_runs_in_the_real_world():
    assert os.getcwd() != "/home/cdsw"
    assert helpers.get_uid() == os.getuid()
    assert not Path("/opt/oracle").exists()
    assert not LEAK.exists()
"""


def test_failing_tests_leave_process_and_disk_as_they_were(project: pytest.Pytester) -> None:
    """Tests that fail inside the workload, or while starting it, restore everything."""
    project.makepyfile(test_failing=FAILING)
    state = process_state()
    files = real_files(project.path)
    result = project.runpytest()
    result.assert_outcomes(failed=5, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError*",
            "*RuntimeError: boom inside the workload*",
            "*BundleError: bundle * does not exist*",
            "*addon_mount.testing.HarnessError: addon_workload was already called in this test*",
            "*testing.CannotRunProgramError: subprocess.Popen(?'/opt/oracle/bin/sqlplus'?)*",
        ]
    )
    assert process_state() == state
    assert real_files(project.path) == files | {"test_failing.py"}
    assert not (project.path / "leaked.txt").exists()


WITH_FS = """
from pathlib import Path

BUNDLES = Path(__file__).parent / "bundles"


def test_fs_first(fs, addon_workload):
    fs.create_file("/home/cdsw/.env", contents="A=1")
    wl = addon_workload(BUNDLES / "oracle-driver")
    assert wl.fs is fs
    assert Path("/home/cdsw/.env").read_text() == "A=1"
    assert Path("/opt/oracle/ojdbc8.jar").read_bytes().startswith(b"PK")


def test_fixture_first(addon_workload, fs):
    wl = addon_workload(BUNDLES / "oracle-driver")
    fs.create_file("/home/cdsw/later.txt", contents="later")
    assert wl.fs is fs
    assert Path("/home/cdsw/later.txt").read_text() == "later"


def test_bundle_written_into_fs(fs, addon_workload):
    from addon_mount._builders import write_bundle

    made = write_bundle("/src/bundle", "made", ["/opt/made"], [("opt/made", "f", 0o644, "m")])
    wl = addon_workload(made)
    assert wl.ok, wl.findings
    assert Path("/opt/made").read_text() == "m"
"""


def test_cooperates_with_the_fs_fixture(project: pytest.Pytester) -> None:
    """With pyfakefs's fs fixture, in either order, the workload is built into fs."""
    project.makepyfile(test_with_fs=WITH_FS)
    state = process_state()
    project.runpytest().assert_outcomes(passed=3)
    assert process_state() == state


def test_unused_fixture_changes_nothing(project: pytest.Pytester) -> None:
    """A test that takes the fixture but never calls it runs in the real world."""
    project.makepyfile(
        test_unused="""
        import os

        def test_untouched(addon_workload):
            assert os.getuid() == os.geteuid()
            assert addon_workload.started is None
        """
    )
    project.runpytest().assert_outcomes(passed=1)


RUNTIME_CHOICE = """
from pathlib import Path

BUNDLES = Path(__file__).parent / "bundles"


def test_runs_in_the_chosen_runtime(addon_workload, addon_runtime):
    wl = addon_workload(BUNDLES / "oracle-driver")
    assert wl.runtime.name == (addon_runtime or "cml-workbench-python")
    print("RAN", wl.runtime.name)


def test_a_named_runtime_wins(addon_workload):
    assert addon_workload(runtime="cml-r").runtime.name == "cml-r"
"""


def test_addon_runtime_all_runs_each_test_per_runtime(project: pytest.Pytester) -> None:
    """--addon-runtime all runs every addon_workload test once per built-in runtime, named by it."""
    from addon_mount import builtin_names

    project.makepyfile(test_choice=RUNTIME_CHOICE)
    result = project.runpytest("--addon-runtime", "all", "-v", "-s")
    names = builtin_names()
    result.assert_outcomes(passed=2 * len(names))
    for name in names:
        result.stdout.fnmatch_lines([f"*test_runs_in_the_chosen_runtime?{name}? RAN {name}*"])
    result.stdout.fnmatch_lines([f"addon-mount runtimes: {', '.join(names)}"])


def test_one_addon_runtime_keeps_test_ids(project: pytest.Pytester) -> None:
    """One --addon-runtime sets the default runtime without parametrizing the tests."""
    project.makepyfile(test_choice=RUNTIME_CHOICE)
    result = project.runpytest("--addon-runtime", "cml-conda", "-v", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_runs_in_the_chosen_runtime RAN cml-conda*"])


def test_addon_runtime_from_the_ini_file(project: pytest.Pytester) -> None:
    """The addon_runtime ini option, one runtime per line, does what the flag does."""
    project.makeini(INI + "addon_runtime =\n    cml-r\n    cml-cuda\n")
    project.makepyfile(test_choice=RUNTIME_CHOICE)
    result = project.runpytest("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*test_runs_in_the_chosen_runtime?cml-r? PASSED*", "*?cml-cuda? PASSED*"]
    )


def test_a_misspelt_addon_runtime_names_the_nearest(project: pytest.Pytester) -> None:
    """A near-miss runtime name is a usage error that suggests the built-in one meant."""
    project.makepyfile(test_choice=RUNTIME_CHOICE)
    result = project.runpytest("--addon-runtime", "cml-workbench-pyhton")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*did you mean 'cml-workbench-python'?*"])


def test_own_parametrization_of_the_runtime_is_kept(project: pytest.Pytester) -> None:
    """A test that parametrizes addon_runtime itself is not parametrized again by the option."""
    project.makepyfile(
        test_own="""
        import pytest

        @pytest.mark.parametrize("addon_runtime", ["cml-r"])
        def test_own(addon_workload):
            assert addon_workload().runtime.name == "cml-r"
        """
    )
    project.runpytest("--addon-runtime", "all").assert_outcomes(passed=1)


def test_failed_assert_ok_shows_the_cli_report(project: pytest.Pytester) -> None:
    """A failing wl.assert_ok() prints the text report pytest users read, finding and fix."""
    project.makepyfile(
        test_broken="""
        from pathlib import Path

        def test_broken(addon_workload):
            addon_workload(Path(__file__).parent / "bundles" / "broken-driver").assert_ok()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    assert "testing.py" not in result.stdout.str()  # the traceback ends in the test
    result.stdout.fnmatch_lines(
        [
            "E * AssertionError: addon-mount: 1 add-on in 1 runtime (cml-workbench-python)",
            "E * broken-driver (custom-addon-broken-driver): FAILED (1 error*",
            "E * error   AM300 missing-entry  /opt/ora",
            "E * fix: Add the path to the archive*",
        ]
    )


def test_readme_addon_runtime_all_example(project: pytest.Pytester) -> None:
    """The README's `pytest --addon-runtime all` session shows what running it shows."""
    match = re.search(
        r"```console\n\$ pytest (--addon-runtime all)\n(.*?)```", DOCS.read_text(), re.S
    )
    assert match, "the README lost its --addon-runtime example"
    shown = [line for line in match.group(2).splitlines() if line != "..."]
    project.makepyfile(test_oracle_addon=docs_example())
    result = project.runpytest(*match.group(1).split(), "-v")
    from addon_mount import builtin_names

    result.assert_outcomes(passed=8 * len(builtin_names()))
    result.stdout.fnmatch_lines([line.replace("[", "?").replace("]", "?") + "*" for line in shown])


def test_a_relative_ini_runtime_is_beside_the_ini_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """addon_runtime = rt names project/rt, from whichever directory pytest runs."""
    root = project.path / "rt"
    for d in ("opt", "usr/bin", "tmp"):
        (root / d).mkdir(parents=True)
    project.makeini(INI + "addon_runtime = rt\n")
    project.makepyfile(
        test_rt=f"""
        def test_rt(addon_runtime):
            assert addon_runtime == {str(root)!r}
        """
    )
    (project.path / "sub").mkdir()
    monkeypatch.chdir(project.path / "sub")
    project.runpytest(str(project.path)).assert_outcomes(passed=1)


def test_a_bad_ini_runtime_names_the_ini_option(project: pytest.Pytester) -> None:
    """The usage error says the ini file's addon_runtime is wrong, not a flag never given."""
    project.makeini(INI + "addon_runtime = no-such-runtime\n")
    project.makepyfile(test_choice=RUNTIME_CHOICE)
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*addon_runtime in *.ini: *no-such-runtime*"])
