"""Tests for addon_mount._program, held against the kernel's execve and binutils' readelf."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from addon_mount._program import HEAD_BYTES, parse_head

from .conftest import needs_tool


@pytest.mark.parametrize(
    "line",
    [
        b"#!{interp}\n",
        b"#! {interp}\n",
        b"#!\t{interp} -x\n",
        b"#!{interp} -x -y\n",
        b"#!{interp}\r\n",
        b"#!{interp}\t\r\n",
        b"#!{interp}x\n",
    ],
)
def test_shebang_is_read_as_execve_reads_it(tmp_path: Path, line: bytes) -> None:
    """The interpreter parsed from a #! line is the one the kernel runs, or fails to find."""
    interp = tmp_path / "interp"
    interp.write_text("#!/bin/sh\necho ran\n")
    interp.chmod(0o755)
    script = tmp_path / "script"
    script.write_bytes(line.replace(b"{interp}", str(interp).encode()) + b"body\n")
    script.chmod(0o755)
    program = parse_head(script.read_bytes())
    assert program is not None
    assert program.kind == "script"
    ours = Path(program.interpreter) == interp and not program.crlf
    try:
        result = subprocess.run([str(script)], capture_output=True, check=False)
        kernel = result.returncode == 0 and result.stdout == b"ran\n"
    except OSError:
        kernel = False  # ENOENT: the interpreter named is not there
    assert ours == kernel


def test_env_names_the_program_looked_up_on_path() -> None:
    """#!/usr/bin/env -S python3 -u names python3; options are not names."""
    program = parse_head(b"#!/usr/bin/env -S python3 -u\n")
    assert program is not None
    assert (program.interpreter, program.env_name) == ("/usr/bin/env", "python3")


def _elf_programs() -> list[Path]:
    found = []
    for directory in ("/usr/bin", "/usr/sbin"):
        for path in sorted(Path(directory).iterdir())[:400]:
            try:
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
                    continue
                with path.open("rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(path)
            except OSError:
                continue
            if len(found) >= 25:
                return found
    return found


def test_elf_loader_is_what_readelf_says() -> None:
    """For real programs on this machine, the loader read from 4 KiB is readelf's."""
    needs_tool("readelf", "binutils")
    readelf = shutil.which("readelf") or "readelf"
    programs = _elf_programs()
    assert programs, "no ELF programs found in /usr/bin"
    for path in programs:
        out = subprocess.run(
            [readelf, "-lW", str(path)], capture_output=True, text=True, check=True
        ).stdout
        marker = "[Requesting program interpreter: "
        expected = out.split(marker, 1)[1].split("]", 1)[0] if marker in out else None
        program = parse_head(path.read_bytes()[:HEAD_BYTES])
        assert (program.interpreter if program else None) == expected, path


def test_neither_script_nor_program() -> None:
    """Data, an empty file and a truncated ELF header claim nothing."""
    assert parse_head(b"PK\x03\x04") is None
    assert parse_head(b"") is None
    assert parse_head(b"#!\n") is None
    assert parse_head(b"\x7fELF\x02\x01") is None
