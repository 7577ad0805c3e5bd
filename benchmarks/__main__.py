"""``make bench``: each goal against its baseline, alternately, in one process tree.

Prints medians, ratios and whether each goal is met, and records the machine.
A benchmark, not a test: it never fails the suite (it exits 0 whatever it finds).
Runs per measurement: $BENCH_RUNS (default 5).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import inputs

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CLI = [sys.executable, "-m", "addon_mount"]


def run(cmd: Sequence[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return wall, usage.ru_maxrss * 1024


def alternate(*commands: Sequence[str], runs: int = RUNS) -> list[tuple[float, int]]:
    """Run the commands in turn, *runs* rounds; medians of wall time and peak RSS each."""
    samples: list[list[tuple[float, int]]] = [[] for _ in commands]
    for _ in range(runs):
        for i, cmd in enumerate(commands):
            samples[i].append(run(cmd))
    return [
        (statistics.median(w for w, _ in s), statistics.median(r for _, r in s)) for s in samples
    ]


ROWS: list[tuple[str, str, str, str, str]] = []


def row(goal: str, measured: str, baseline: str, ratio: str, verdict: str) -> None:
    ROWS.append((goal, measured, baseline, ratio, verdict))
    print(f"  {goal}: {measured} vs {baseline} -> {ratio} {verdict}", file=sys.stderr)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def compare(goal: str, measured: float, baseline: float, limit: float, show: str = "s") -> None:
    """A row for a ratio goal: measured / baseline against *limit*."""
    ratio = measured / baseline
    shown = mib if show == "MiB" else (lambda v: f"{v:.3f} s")
    row(
        goal,
        shown(measured),
        shown(baseline),
        f"{ratio:.2f}x (goal <= {limit:.2f}x)",
        verdict(ratio <= limit),
    )


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def goal_speed_and_memory() -> None:
    bundle = inputs.addon_bundle("b20k-100mb", 20_000, 6200)
    archive = bundle / "addon.tar.gz"
    size = archive.stat().st_size
    print(f"input: {archive} ({size / 1e6:.0f} MB, 20,000 members)", file=sys.stderr)
    (check, check_rss), (tar, _) = alternate(
        [*CLI, "check", str(bundle)], ["tar", "-tzf", str(archive)]
    )
    compare("1. check 100 MB / 20k members vs tar -tzf", check, tar, 0.6)
    row(
        "2a. peak RSS of that check",
        mib(check_rss),
        "150 MiB",
        f"{check_rss / 150 / 2**20:.2f}x",
        verdict(check_rss <= 150 * 2**20),
    )
    big = inputs.addon_bundle("b20k-400mb", 20_000, 24800)
    small = inputs.small_bundle()
    (_, rss4), (_, rss1), (_, base_rss) = alternate(
        [*CLI, "check", str(big)],
        [*CLI, "check", str(bundle)],
        [*CLI, "check", str(small)],
        runs=max(3, RUNS // 2),
    )
    compare("2b. peak RSS, 4x the bytes, same members", rss4, rss1, 1.2, show="MiB")
    per_member = (rss1 - base_rss) / 20_000
    row(
        "2c. memory per member (RSS over a 3-path check)",
        f"{per_member:.0f} B/member",
        mib(base_rss),
        "-",
        "info",
    )


def goal_runtime_size() -> None:
    small = inputs.small_bundle()
    big = inputs.runtime_snapshot(250_000)
    little = inputs.runtime_snapshot(10_000)
    (t_big, _), (t_little, _) = alternate(
        [*CLI, "check", str(small), "--runtime", str(big)],
        [*CLI, "check", str(small), "--runtime", str(little)],
    )
    compare("3. small add-on, 250k-entry runtime vs 10k", t_big, t_little, 1.3)


def goal_many_runtimes() -> None:
    from addon_mount._runtime import builtin_names

    names = builtin_names()[:5]
    bundle = inputs.addon_bundle("b20k-100mb", 20_000, 6200)
    many = [*CLI, "check", str(bundle)]
    for name in names:
        many += ["--runtime", name]
    (t_many, _), (t_one, _) = alternate(many, [*CLI, "check", str(bundle), "--runtime", names[0]])
    compare(f"4. 20k-member add-on in {len(names)} runtimes vs 1", t_many, t_one, 1.3)


def goal_scaling() -> None:
    sizes = (2_000, 20_000, 200_000)
    bundles = [inputs.addon_bundle(f"scale-{n}", n, 256) for n in sizes]
    empty = inputs.small_bundle()
    results = alternate(
        *([*CLI, "check", str(b)] for b in [empty, *bundles]), runs=max(3, RUNS // 2)
    )
    base = results[0][0]
    costs = []
    for n, (wall, _) in zip(sizes, results[1:], strict=True):
        cost = (wall - base) / n * 1e6
        costs.append(cost)
        row(
            f"5. {n:,} members (over a 3-path check)",
            f"{wall:.3f} s",
            f"{base:.3f} s",
            f"{cost:.1f} us/member",
            "info",
        )
    spread = max(costs[1:]) / min(costs[1:])
    row(
        "5. per-member cost, 20k vs 200k",
        f"{costs[2]:.1f} us",
        f"{costs[1]:.1f} us",
        f"{spread:.2f}x (linear: ~1x)",
        verdict(spread <= 1.5),
    )


def goal_fixture() -> None:
    try:
        from .fixture import per_test_costs
    except ImportError as exc:  # pragma: no cover - the harness is optional here
        row("6. addon_workload fixture per test", "-", "-", "-", f"skipped ({exc})")
        return
    fixture, bare = per_test_costs(RUNS * 20)
    row(
        "6. addon_workload per test (default runtime, 3 bundles) vs bare fs",
        f"{fixture * 1e3:.2f} ms",
        f"{bare * 1e3:.2f} ms",
        f"{fixture / bare:.1f}x",
        "info",
    )


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        from isal import __version__ as isal_version
    except ImportError:
        isal_version = "absent (zlib fallback)"
    tar_version = subprocess.run(
        ["tar", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    return (
        f"{platform.platform()}; {os.cpu_count()} cores; {model or platform.machine()}; "
        f"Python {platform.python_version()}; isal {isal_version}; "
        f"{tar_version[0] if tar_version else 'tar ?'}"
    )


def main() -> int:
    if shutil.which("tar") is None:
        print("make bench needs tar on PATH for its baseline", file=sys.stderr)
        return 0
    print(f"machine: {machine()}", file=sys.stderr)
    print(f"inputs cached in {inputs.cache_dir()}; {RUNS} runs per measurement\n", file=sys.stderr)
    goals: list[Callable[[], None]] = [
        goal_speed_and_memory,
        goal_runtime_size,
        goal_many_runtimes,
        goal_scaling,
        goal_fixture,
    ]
    only = os.environ.get("BENCH_ONLY")
    for goal in goals:
        if only and only not in goal.__name__:
            continue
        goal()
    widths = [
        max(len(r[i]) for r in [("goal", "measured", "baseline", "ratio", "verdict"), *ROWS])
        for i in range(5)
    ]
    print()
    print(f"machine: {machine()}")
    for r in [("goal", "measured (median)", "baseline (median)", "ratio", "verdict"), *ROWS]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
