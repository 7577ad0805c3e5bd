"""Goal 6: the addon_workload fixture's per-test cost beside a bare pyfakefs ``fs``."""

from __future__ import annotations

import statistics

from addon_mount._builders import write_bundle
from addon_mount.testing import time_bare_fs, time_workload

from .inputs import cache_dir


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
