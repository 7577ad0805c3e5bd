"""Goal 6: the addon_workload fixture's per-test cost beside a bare pyfakefs ``fs``.

:func:`time_workload` and :func:`time_bare_fs` time the harness and its
baseline per test; :func:`per_test_costs` takes their medians, in turns.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

from pyfakefs import helpers
from pyfakefs.fake_filesystem_unittest import Patcher

from addon_mount import RuntimeImage
from addon_mount._builders import write_bundle
from addon_mount._harness import active_patcher
from addon_mount.testing import HarnessError, StartedWorkload, workload

from .inputs import cache_dir

BundlePath = str | os.PathLike[str]


def time_workload(
    bundles: Sequence[BundlePath] | BundlePath,
    runtime: str | os.PathLike[str] | RuntimeImage | None = None,
    *,
    rounds: int = 25,
    body: Callable[[StartedWorkload], object] | None = None,
) -> list[float]:
    """Seconds per test the harness costs: entering and leaving ``testing.workload``.

    One untimed round first reads the runtime and bundles into the process
    caches, as the first test of a session does; each timed round is then
    what every later test pays for its workload (set-up, the start-up,
    tear-down), plus *body* if given (called inside the workload, to time what
    a test does with it: the directories it touches are built then).

    Call it outside any fake filesystem: with pyfakefs already patching, the
    rounds would build into that filesystem and time something else.
    """
    _not_faked("time_workload")
    samples: list[float] = []
    for i in range(rounds + 1):
        started = time.perf_counter()
        with workload(bundles, runtime) as wl:
            if body is not None:
                body(wl)
        if i:
            samples.append(time.perf_counter() - started)
    return samples


def time_bare_fs(*, rounds: int = 25) -> list[float]:
    """Seconds per test pyfakefs's own ``fs`` fixture costs: a Patcher set up and torn down.

    The baseline for :func:`time_workload`: the ratio of their medians is the
    harness's cost relative to a bare fake filesystem. Call it outside any fake
    filesystem too.
    """
    _not_faked("time_bare_fs")
    ids = helpers.get_uid(), helpers.get_gid()
    samples: list[float] = []
    try:
        for i in range(rounds + 1):
            started = time.perf_counter()
            patcher = Patcher()
            patcher.setUp()
            patcher.tearDown()
            if i:
                samples.append(time.perf_counter() - started)
    finally:
        helpers.set_uid(ids[0])
        helpers.set_gid(ids[1])
    return samples


def _not_faked(what: str) -> None:
    if active_patcher() is not None:
        raise HarnessError(f"{what}() must run outside any fake filesystem (pyfakefs is patching)")


def three_bundles() -> list[str]:
    """Three small bundles, as a team's test suite would enable."""
    paths = []
    for name in ("driver", "config", "tools"):
        directory = cache_dir() / f"fixture-{name}"
        if not (directory / "addon.tar.gz").is_file():
            write_bundle(
                directory,
                name,
                [f"/opt/{name}", f"/etc/{name}.conf"],
                [
                    (f"opt/{name}/lib/{name}.jar", "f", 0o644, "jar" * 200),
                    (f"opt/{name}/README", "f", 0o644, "readme\n"),
                    (f"etc/{name}.conf", "f", 0o644, "key=value\n"),
                ],
            )
        paths.append(str(directory))
    return paths


def per_test_costs(rounds: int) -> tuple[float, float]:
    """Median seconds per test: the harness, and a bare Patcher, measured in turns."""
    bundles = three_bundles()
    harness: list[float] = []
    bare: list[float] = []
    for _ in range(max(1, rounds // 10)):
        harness += time_workload(bundles, rounds=10)
        bare += time_bare_fs(rounds=10)
    return statistics.median(harness), statistics.median(bare)
