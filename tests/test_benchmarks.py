"""Tests for the benchmarks' timers of the test harness (benchmarks/fixture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyfakefs.fake_filesystem import FakeFilesystem

from addon_mount import RuntimeImage, testing
from benchmarks.fixture import time_bare_fs, time_workload

from .conftest import TOOL, BundleFactory
from .test_testing import process_state


@pytest.fixture
def tool(bundle: BundleFactory) -> Path:
    """A small bundle linking /opt/tool."""
    return bundle("tool", ["/opt/tool"], TOOL)


def test_timing_functions_return_one_sample_per_round(tool: Path, runtime: RuntimeImage) -> None:
    """time_workload and time_bare_fs give per-round seconds and leave the process as it was."""
    state = process_state()
    seen: list[testing.StartedWorkload] = []
    samples = time_workload([tool], runtime, rounds=3, body=seen.append)
    assert len(samples) == 3
    assert all(s > 0 for s in samples)
    assert len(seen) == 4  # one untimed warm-up round
    assert len(time_bare_fs(rounds=2)) == 2
    assert process_state() == state


def test_timing_refuses_to_run_inside_a_fake_filesystem(tool: Path, fs: FakeFilesystem) -> None:
    """Timing inside pyfakefs would measure something else: it is refused."""
    with pytest.raises(testing.HarnessError, match="outside any fake filesystem"):
        time_workload(tool)
    with pytest.raises(testing.HarnessError, match="outside any fake filesystem"):
        time_bare_fs()
