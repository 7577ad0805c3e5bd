"""``make bench``: each goal against its baseline, alternately, in one process tree.

Prints medians, ratios, whether each goal is met and the machine's load
beside each row. Wall time is the child's; peak memory is GNU time's
``%M`` for the command alone (``os.wait4`` after a fork would count this
process's own memory too). A benchmark, not a test: it never fails the
suite (it exits 0 whatever it finds). Runs per measurement: $BENCH_RUNS
(default 7); $BENCH_ONLY runs the goals whose function name holds it.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import inputs

RUNS = max(1, int(os.environ.get("BENCH_RUNS", "7")))
CLI = [sys.executable, "-m", "addon_mount"]
# The same CLI with isal hidden: the standard library's zlib inflates.
CLI_ZLIB = [
    sys.executable,
    "-c",
    "import sys, runpy; sys.modules['isal'] = None; "
    "runpy.run_module('addon_mount', run_name='__main__')",
]
GNU_TIME = "/usr/bin/time"


def _has_gnu_time() -> bool:
    if not os.access(GNU_TIME, os.X_OK):
        return False
    probe = subprocess.run(
        [GNU_TIME, "-f", "%M", "true"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and probe.stderr.strip().isdigit()


HAS_TIME = _has_gnu_time()


def run(cmd: Sequence[str]) -> tuple[float, int | None]:
    """Wall seconds and peak RSS (bytes, None without GNU time) of one command."""
    with tempfile.NamedTemporaryFile(prefix="bench-rss-") as rss_file:
        wrapped = [GNU_TIME, "-o", rss_file.name, "-f", "%M", *cmd] if HAS_TIME else list(cmd)
        start = time.perf_counter()
        done = subprocess.run(
            wrapped, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise SystemExit(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-500:]}"
            )
        rss = None
        if HAS_TIME:
            text = Path(rss_file.name).read_text().strip().splitlines()
            rss = int(text[-1]) * 1024 if text and text[-1].isdigit() else None
    return wall, rss


def alternate(*commands: Sequence[str], runs: int = RUNS) -> list[tuple[float, int | None]]:
    """Run the commands in turn, *runs* rounds; the median wall time and peak RSS of each."""
    samples: list[list[tuple[float, int | None]]] = [[] for _ in commands]
    for _ in range(runs):
        for i, cmd in enumerate(commands):
            samples[i].append(run(cmd))
    out: list[tuple[float, int | None]] = []
    for s in samples:
        rss = [r for _, r in s if r is not None]
        out.append(
            (statistics.median(w for w, _ in s), int(statistics.median(rss)) if rss else None)
        )
    return out


ROWS: list[tuple[str, ...]] = []


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return "?"
    return f"{one:.2f}/{five:.2f}"


def row(goal: str, measured: str, baseline: str, ratio: str, verdict: str) -> None:
    shown = (goal, measured, baseline, ratio, verdict, load())
    ROWS.append(shown)
    print(
        f"  {goal}: {measured} vs {baseline} -> {ratio} {verdict} (load {shown[5]})",
        file=sys.stderr,
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def compare(goal: str, measured: float, baseline: float, limit: float) -> None:
    """A row for a time-ratio goal: measured / baseline against *limit*."""
    ratio = measured / baseline
    row(
        goal,
        f"{measured:.3f} s",
        f"{baseline:.3f} s",
        f"{ratio:.2f}x (goal <= {limit:.2f}x)",
        verdict(ratio <= limit),
    )


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MiB"


def goal_inflate_speed() -> None:
    bundle = inputs.addon_bundle("b20k-100mb", 20_000, 6200)
    archive = bundle / "addon.tar.gz"
    size = archive.stat().st_size
    print(f"input: {archive} ({size / 1e6:.0f} MB, 20,000 members)", file=sys.stderr)
    (check, rss), (zlib_check, _), (tar, _) = alternate(
        [*CLI, "check", str(bundle)],
        [*CLI_ZLIB, "check", str(bundle)],
        ["tar", "-tzf", str(archive)],
    )
    compare("1. check 100 MB / 20k members vs tar -tzf", check, tar, 0.50)
    row(
        "1. the same with zlib (isal hidden)",
        f"{zlib_check:.3f} s",
        f"{tar:.3f} s",
        f"{zlib_check / tar:.2f}x",
        "info",
    )
    row("1. peak RSS of that check", mib(rss), "-", "-", "info")


def goal_start_up() -> None:
    bundle = inputs.typical_bundle()
    (check, rss), (bare, _) = alternate(
        [*CLI, "check", str(bundle), "--format", "json"], [sys.executable, "-c", "pass"]
    )
    compare("2. 50 members / 1 MB, JSON, vs python3 -c pass", check, bare, 3.0)
    row("2. peak RSS of that check", mib(rss), "-", "-", "info")


def goal_many_members() -> None:
    sizes = (200_000, 1_000_000)
    bundles = {n: inputs.addon_bundle(f"scale-{n}", n, 256) for n in sizes}
    base_bundle = inputs.typical_bundle()
    archive = bundles[200_000] / "addon.tar.gz"
    (check, rss), (tar, _), (_, base_rss) = alternate(
        [*CLI, "check", str(bundles[200_000])],
        ["tar", "-tzf", str(archive)],
        [*CLI, "check", str(base_bundle)],
        runs=max(3, RUNS // 2),
    )
    compare("3. 200k small members vs tar -tzf", check, tar, 2.0)
    if rss is not None and base_rss is not None:
        per = (rss - base_rss) / 200_000
        row(
            "3. peak RSS per member, above a 50-member check",
            f"{per:.0f} B",
            mib(base_rss),
            "(goal <= 200 B)",
            verdict(per <= 200),
        )
    ((big, big_rss),) = alternate([*CLI, "check", str(bundles[1_000_000])], runs=3)
    # Per-member cost as a slope between two large sizes: start-up cancels out.
    slope = (big - check) / 800_000 * 1e6
    per_200k = check / 200_000 * 1e6
    row(
        "3. 1M members",
        f"{big:.3f} s",
        f"{check:.3f} s (200k)",
        f"{slope:.2f} us/member from 200k to 1M; {per_200k:.2f} us/member at 200k",
        verdict(slope <= per_200k * 1.25),
    )
    row("3. peak RSS at 1M members", mib(big_rss), mib(rss) + " (200k)", "-", "info")


def goal_runtime_size() -> None:
    small = inputs.small_bundle()
    big = inputs.runtime_snapshot(250_000)
    little = inputs.runtime_snapshot(10_000)
    (t_big, _), (t_little, _) = alternate(
        [*CLI, "check", str(small), "--runtime", str(big)],
        [*CLI, "check", str(small), "--runtime", str(little)],
    )
    row(
        "info: small add-on, 250k-entry runtime vs 10k",
        f"{t_big:.3f} s",
        f"{t_little:.3f} s",
        f"{t_big / t_little:.2f}x",
        "info",
    )


def goal_fixture() -> None:
    try:
        from .fixture import per_test_costs
    except ImportError as exc:  # pragma: no cover - the harness is optional here
        row("4. addon_workload per test", "-", "-", "-", f"skipped ({exc})")
        return
    fixture, bare = per_test_costs(RUNS * 20)
    row(
        "4. addon_workload per test (default runtime, 3 bundles) vs a bare Patcher",
        f"{fixture * 1e3:.2f} ms",
        f"{bare * 1e3:.2f} ms",
        f"{fixture / bare:.2f}x (goal <= 1.20x)",
        verdict(fixture / bare <= 1.2),
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
    # Byte-code as an installed package has it (PYTHONDONTWRITEBYTECODE would
    # otherwise make every run compile the package again).
    import compileall

    import addon_mount

    compileall.compile_dir(str(Path(addon_mount.__file__).parent), quiet=1)
    if not HAS_TIME:
        print(f"peak memory not measured: {GNU_TIME} (GNU time) is not installed", file=sys.stderr)
    print(f"inputs cached in {inputs.cache_dir()}; {RUNS} runs per measurement\n", file=sys.stderr)
    goals: list[Callable[[], None]] = [
        goal_inflate_speed,
        goal_start_up,
        goal_many_members,
        goal_fixture,
        goal_runtime_size,
    ]
    only = os.environ.get("BENCH_ONLY")
    for goal in goals:
        if only and only not in goal.__name__:
            continue
        goal()
    header = ("goal", "measured (median)", "baseline (median)", "ratio", "verdict", "load 1/5 min")
    widths = [max(len(r[i]) for r in [header, *ROWS]) for i in range(len(header))]
    print()
    print(f"machine: {machine()}")
    for r in [header, *ROWS]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
