"""Shared test helpers: a small runtime with Cloudera's permission model, bundle builders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from addon_mount import Entry, RuntimeImage
from addon_mount._builders import MemberSpec, write_bundle

CDSW = 8536
REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def cml_entries() -> list[Entry]:
    """A few hundred bytes of a Cloudera runtime: the permission steps of its Dockerfiles."""
    d, f, l = "d", "f", "l"  # noqa: E741 - the letters ls -l shows
    return [
        Entry("/", d, 0o755, CDSW, CDSW),
        Entry("/usr", d, 0o755, CDSW, CDSW),
        Entry("/usr/bin", d, 0o755, CDSW, CDSW),
        Entry("/usr/bin/env", f, 0o755),
        Entry("/usr/bin/sh", f, 0o755),
        Entry("/usr/lib", d, 0o755, CDSW, CDSW),
        Entry("/usr/local", d, 0o755, CDSW, CDSW),
        Entry("/usr/local/bin", d, 0o755, CDSW, CDSW),
        Entry("/bin", l, 0o777, 0, 0, 0, "usr/bin"),
        Entry("/lib", l, 0o777, 0, 0, 0, "usr/lib"),
        Entry("/etc", d, 0o777, CDSW, CDSW),
        Entry("/etc/profile.d", d, 0o755, CDSW, CDSW),
        Entry("/etc/hosts", f, 0o644),
        Entry("/opt", d, 0o755, CDSW, CDSW),
        Entry("/opt/conda", d, 0o755, 0, 0),
        Entry("/var", d, 0o755),
        Entry("/var/lib", d, 0o755),
        Entry("/home", d, 0o755),
        Entry("/home/cdsw", d, 0o755, CDSW, CDSW),
        Entry("/root", d, 0o700),
        Entry("/root/private", d, 0o777),
        Entry("/tmp", d, 0o1777),
        Entry("/runtime-addons", d, 0o755),
    ]


@pytest.fixture
def runtime() -> RuntimeImage:
    """A small runtime with the permission model of Cloudera's runtime Dockerfiles."""
    return RuntimeImage.from_entries(cml_entries(), name="tiny", description="test runtime")


BundleFactory = Callable[..., Path]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the console entry point with *args*: (exit status, stdout, stderr)."""
    from addon_mount._cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert isinstance(exc.value.code, int)
    return exc.value.code, out, err


@pytest.fixture
def bundle(tmp_path: Path) -> BundleFactory:
    """Write a bundle under tmp_path: bundle(name, paths, members, dirname=None)."""

    def make(
        name: str,
        paths: list[str],
        members: Iterable[MemberSpec],
        dirname: str | None = None,
        **owner: int,
    ) -> Path:
        return write_bundle(tmp_path / (dirname or name), name, paths, members, **owner)

    return make


TOOL: list[MemberSpec] = [
    ("opt/tool", "d", 0o755, ""),
    ("opt/tool/bin", "d", 0o755, ""),
    ("opt/tool/bin/run", "f", 0o755, "#!/bin/sh\n"),
]


def needs(available: bool, reason: str) -> None:
    """Skip the test, saying why, when what it needs is missing; under CI=true, fail."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


def needs_root(reason: str) -> None:
    """The test builds trees with other owners: it needs root."""
    needs(os.geteuid() == 0, f"{reason} needs root")


def needs_tool(name: str, package: str) -> None:
    """The test holds the model against *name*, from the distribution's *package*."""
    needs(shutil.which(name) is not None, f"{name} ({package}) is not installed")
