"""The report as a person sees it: `addon-mount` run in a real pseudo-terminal.

Each test starts the command with its standard output on a pty whose window
size is set with TIOCSWINSZ, as a terminal emulator sets it, and reads what
the terminal would show.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import termios
from pathlib import Path

import pytest
from rich.cells import cell_len

from .conftest import FIXTURES, REPO

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BUNDLES = [
    str(FIXTURES / "broken" / "collision"),
    str(FIXTURES / "docs-example"),
    str(FIXTURES / "broken" / "missing-parent"),
]
# Five runtimes: a column each fits 200 columns (all twelve built-ins do not).
FIVE = ["cml-conda", "cml-cuda", "cml-jupyterlab-python", "cml-r", "cml-workbench-python"]
CHECK_ALL = ["check", *BUNDLES, *(arg for name in FIVE for arg in ("--runtime", name))]
TABLE_BORDERS = "┏┃┡│├└"


def run_in_terminal(
    args: list[str], columns: int, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run addon-mount with stdout on a pty *columns* wide: (exit status, what it shows)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM")
    }
    environ.update({"TERM": "xterm-256color", **(env or {})})
    with subprocess.Popen(
        [sys.executable, "-m", "addon_mount", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
    ) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        status = proc.wait(timeout=60)
    # The terminal's line discipline turns each "\n" into "\r\n".
    return status, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def visible(text: str) -> list[str]:
    """The lines as the terminal shows them, escapes removed."""
    return ANSI.sub("", text).splitlines()


@pytest.mark.parametrize("columns", [80, 200])
def test_report_is_coloured_and_fits_the_terminal(columns: int) -> None:
    """On a terminal the report is coloured, no line passes the width, the table stays whole."""
    status, shown = run_in_terminal(CHECK_ALL, columns)
    assert status == 1
    assert "\x1b[1;31mFAILED\x1b[0m" in shown
    assert "\x1b[1;32mPASSED\x1b[0m" in shown
    lines = visible(shown)
    assert max(cell_len(line) for line in lines) <= columns
    table = [line for line in lines if line and line[0] in TABLE_BORDERS]
    assert len(table) >= 5
    assert len({cell_len(line) for line in table}) == 1
    header = table[1].split()
    if columns == 80:  # one row per add-on and runtime
        assert header == ["┃", "add-on", "┃", "runtime", "┃", "result", "┃"]
    else:  # a column per runtime
        assert "cml-jupyterlab-python" in header
    fix = next(i for i, line in enumerate(lines) if line.startswith("    fix: Choose a path the"))
    if columns == 80:  # the fix wraps, its continuation under the fix's text
        assert re.match(r" {9}\S", lines[fix + 1])
    else:
        assert lines[fix].endswith("or ship the content under a new name.")


def test_no_color_is_honoured_on_a_terminal() -> None:
    """NO_COLOR turns colour off on a terminal; the width is still the terminal's."""
    status, shown = run_in_terminal(CHECK_ALL, 80, {"NO_COLOR": "1"})
    assert status == 1
    assert "\x1b" not in shown
    assert max(cell_len(line) for line in shown.splitlines()) <= 80


def test_flags_override_the_terminal_and_no_color() -> None:
    """--no-color wins on a terminal, --color wins over NO_COLOR."""
    _, plain = run_in_terminal(["check", "--no-color", BUNDLES[0]], 80)
    assert "\x1b" not in plain
    _, coloured = run_in_terminal(["check", "--color", BUNDLES[0]], 80, {"NO_COLOR": "1"})
    assert "\x1b[1;31mFAILED\x1b[0m" in coloured


def test_runtimes_table_fits_80_columns() -> None:
    """The runtimes table fits an 80-column terminal."""
    status, shown = run_in_terminal(["runtimes"], 80)
    assert status == 0
    lines = visible(shown)
    assert "cml-workbench-python" in shown
    assert max(cell_len(line) for line in lines) <= 80


def test_explain_fits_the_terminal_and_keeps_pipes_plain() -> None:
    """explain wraps at 80 columns under each label; piped, its lines are whole."""
    status, shown = run_in_terminal(["explain", "AM320", "AM301"], 80)
    assert status == 0
    lines = visible(shown)
    assert max(cell_len(line) for line in lines) <= 80
    fix = next(i for i, line in enumerate(lines) if line.startswith("  fix:      Choose a path"))
    assert re.match(r" {12}\S", lines[fix + 1])  # continued under the fix's text
    piped = subprocess.run(
        [sys.executable, "-m", "addon_mount", "explain", "AM320"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert any(len(line) > 80 for line in piped.splitlines())
    assert "\x1b" not in piped


def test_doctor_is_coloured_and_wraps_under_its_columns(tmp_path: Path) -> None:
    """doctor's severities take the check's colours; long lines continue under their text."""
    root = tmp_path / "root"
    mount = root / "runtime-addons/custom-addon-tool"
    (mount / "opt/tool/bin").mkdir(parents=True)
    (mount / "opt/tool/bin/run").write_text("#!/bin/sh\n")
    (mount / "opt/tool/bin/run").chmod(0o700)
    (root / "opt").mkdir()
    (root / "opt/tool").symlink_to("/runtime-addons/custom-addon-tool/opt/tool")
    status, shown = run_in_terminal(["doctor", str(root)], 80)
    assert status == 1
    assert "\x1b[31m\x1b[1merror\x1b[0m" in shown
    lines = visible(shown)
    fix = next(i for i, line in enumerate(lines) if line.startswith("    fix: Give the program"))
    assert re.match(r" {9}\S", lines[fix + 1])
    assert max(cell_len(line) for line in lines) <= 80
    _, plain = run_in_terminal(["doctor", str(root)], 80, {"NO_COLOR": "1"})
    assert "\x1b" not in plain


def test_the_runtimes_tables_cut_nothing_at_80_columns() -> None:
    """Descriptions and the Cloudera add-ons' paths fold; none ends in an ellipsis."""
    _, shown = run_in_terminal(["runtimes"], 80)
    assert "…" not in shown
    joined = "".join(line.strip("│ ") for line in visible(shown))
    assert "/usr/local/cuda" in joined


def test_long_names_are_never_broken_in_the_table(tmp_path: Path) -> None:
    """An add-on and a runtime too long to share a row get a table per add-on, names whole."""
    name = "a-very-long-addon-name-of-35-chars0"
    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "metadata.json").write_text(
        json.dumps({"name": name, "spec": {"paths": ["/opt/tool"]}})
    )
    write_bundle_archive(bundle / "addon.tar.gz")
    runtimes = ["--runtime", "cml-2026.04-jupyterlab-python3.12", "--runtime", "cml-r"]
    args = ["check", str(bundle), *BUNDLES[:1], *runtimes, "--cloudera-addons", "none"]
    _, shown = run_in_terminal(args, 80)
    lines = visible(shown)
    assert name in lines
    assert any("│ cml-2026.04-jupyterlab-python3.12 │" in line for line in lines)
    assert max(cell_len(line) for line in lines) <= 80


def write_bundle_archive(path: Path) -> None:
    """A tiny addon.tar.gz holding opt/tool/run."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("opt/tool/run")
        info.size, info.mode = 3, 0o755
        tar.addfile(info, io.BytesIO(b"x\n\n"))
