"""The addon-mount pytest plugin: the ``addon_workload`` fixture and ``--addon-runtime``.

Registered through the ``pytest11`` entry point, so installing addon-mount is
enough. The logic lives in :mod:`addon_mount.testing`; this module only wires
it to pytest.

``--addon-runtime RUNTIME`` (repeatable; or ``addon_runtime`` in the ini
file, one per line) chooses the runtime a workload starts in when the test
does not name one: a built-in name, ``all``, or a snapshot, tarball or root
directory. With more than one, every test using ``addon_workload`` runs once
per runtime (``test_x[cml-conda]``, ``test_x[cml-r]``...).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from addon_mount._runtime import RuntimeLoadError
from addon_mount.testing import WorkloadFactory, runtimes

_SELECTED = pytest.StashKey[list[str]]()
_OPTION = "--addon-runtime"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("addon-mount", "addon-mount workloads")
    group.addoption(
        _OPTION,
        action="append",
        dest="addon_runtime",
        metavar="RUNTIME",
        default=[],
        help="Runtime the addon_workload fixture starts workloads in, unless a test names "
        "one: a built-in name, 'all', or a snapshot, tarball or root directory. "
        "Repeat it, or give 'all', to run each test once per runtime.",
    )
    parser.addini(
        "addon_runtime",
        "Runtimes for addon_workload, one per line, as --addon-runtime takes them.",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    specs = config.getoption("addon_runtime")
    where = _OPTION
    if not specs:
        specs = [_from_ini(config, spec) for spec in config.getini("addon_runtime")]
        where = f"addon_runtime in {config.inipath}" if config.inipath else "addon_runtime"
    try:
        config.stash[_SELECTED] = runtimes(*specs) if specs else []
    except RuntimeLoadError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from exc


def _from_ini(config: pytest.Config, spec: str) -> str:
    """A relative path in the ini file is relative to the ini file, as pytest's own are."""
    if config.inipath is None or spec == "all" or Path(spec).is_absolute():
        return spec
    beside = config.inipath.parent / spec
    return str(beside) if beside.exists() else spec


def pytest_report_header(config: pytest.Config) -> str | None:
    selected = config.stash.get(_SELECTED, [])
    return f"addon-mount runtimes: {', '.join(selected)}" if selected else None


def _runtime_id(spec: str) -> str:
    return Path(spec).name if "/" in spec else spec


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    selected = metafunc.config.stash.get(_SELECTED, [])
    if (
        len(selected) > 1
        and "addon_runtime" in metafunc.fixturenames
        and not _parametrized_by_test(metafunc, "addon_runtime")
    ):
        metafunc.parametrize("addon_runtime", selected, ids=_runtime_id)


@pytest.fixture
def addon_runtime(request: pytest.FixtureRequest) -> str | None:
    """The runtime this test's workloads start in when a call names none.

    ``None`` (the embedded default runtime) unless ``--addon-runtime`` chose
    one, or the test is parametrized over it::

        @pytest.mark.parametrize("addon_runtime", testing.runtimes())
        def test_in_every_runtime(addon_workload): ...
    """
    selected = request.config.stash.get(_SELECTED, [])
    return selected[0] if len(selected) == 1 else None


@pytest.fixture
def addon_workload(addon_runtime: str | None) -> Iterator[WorkloadFactory]:
    """Start a simulated Cloudera AI workload; the test then runs inside it, as cdsw.

    Call it as ``addon_workload(*bundles, runtime=None, cloudera_addons=None)``: bundle
    directories (str or Path) enabled together, and the runtime as
    ``--runtime`` takes it (a built-in name, a snapshot file, a docker-export
    tarball, a root directory, or a RuntimeImage; default the
    ``addon_runtime`` fixture's, else the embedded default runtime), and
    Cloudera's own add-ons to attach first (``"default"``, or names). It
    returns a :class:`~addon_mount.testing.StartedWorkload` with ``ok``,
    ``findings``, ``links``, ``report`` and ``assert_ok()``.

    Until it stops (``wl.stop()``, the end of a ``with wl:`` block, or the
    end of the test), ``os``, ``open``, ``pathlib`` and ``shutil`` see the
    workload's filesystem through pyfakefs, as cdsw (uid and gid 8536,
    ``HOME=/home/cdsw``): the whole runtime, each add-on's archive read-only
    under ``/runtime-addons/custom-addon-<name>`` (writes raise EROFS) and
    the links; starting a program raises CannotRunProgramError. Call it
    again after stopping one for another workload (before/after, another
    runtime). After the test, patching, the environment and pyfakefs's user
    ids are as before, pass or fail. With pyfakefs's ``fs`` fixture in the
    same test, the workload is built into that fake filesystem.
    """
    factory = WorkloadFactory(runtime=addon_runtime)
    try:
        yield factory
    finally:
        factory.close()
