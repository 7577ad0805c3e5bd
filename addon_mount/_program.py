"""What a program needs to start, read from its first bytes: a ``#!`` line or an ELF loader.

The kernel's ``execve`` reads the first line of a script for its interpreter
(``binfmt_script``: up to 256 bytes, the interpreter ends at a space, tab or
newline, so a ``\\r`` before the newline is part of its name), and an ELF
program's ``PT_INTERP`` segment for its dynamic loader (``binfmt_elf``).
"""

from __future__ import annotations

import struct
from typing import Final

import attrs

#: How much of a member is read to tell: a #! line, or an ELF header and program headers.
HEAD_BYTES: Final = 4096
_SHEBANG_MAX: Final = 256  # BINPRM_BUF_SIZE
_PT_INTERP: Final = 3


@attrs.frozen(slots=True)
class Program:
    """How a file starts: a script with its interpreter, or an ELF program with its loader."""

    kind: str  # "script", "elf", or "bom" (a script whose '#!' follows a byte order mark)
    interpreter: str
    #: For ``#!/usr/bin/env NAME``: NAME, looked up on PATH.
    env_name: str = ""
    crlf: bool = False


_BOM: Final = b"\xef\xbb\xbf"


def parse_head(head: bytes) -> Program | None:
    """The :class:`Program` the first bytes of a file describe, if any."""
    if head.startswith(b"#!"):
        return _script(head)
    if head.startswith(_BOM + b"#!"):
        # A byte order mark first: the kernel sees no '#!' (ENOEXEC).
        script = _script(head[len(_BOM) :])
        return None if script is None else attrs.evolve(script, kind="bom")
    if head.startswith(b"\x7fELF"):
        return _elf(head)
    return None


def _script(head: bytes) -> Program | None:
    # binfmt_script: the interpreter runs to the first space or tab; the rest, trimmed
    # of spaces and tabs (not of '\r'), is one argument.
    line = head[2:_SHEBANG_MAX].split(b"\n", 1)[0].lstrip(b" \t")
    if not line.strip(b" \t"):
        return None
    end = min((i for i in (line.find(b" "), line.find(b"\t")) if i >= 0), default=len(line))
    interpreter, rest = line[:end], line[end:].strip(b" \t")
    name = interpreter.decode("utf-8", "surrogateescape")
    crlf = name.endswith("\r")
    env_name = ""
    if name in ("/usr/bin/env", "/bin/env"):
        words = [w for w in rest.split() if not w.startswith(b"-")]
        if words:
            env_name = words[0].decode("utf-8", "surrogateescape")
            crlf = env_name.endswith("\r")
            env_name = env_name.rstrip("\r")
    return Program("script", name, env_name, crlf)


def _elf(head: bytes) -> Program | None:
    if len(head) < 52:
        return None
    is_64 = head[4] == 2
    endian = "<" if head[5] == 1 else ">"
    try:
        if is_64:
            (phoff,) = struct.unpack_from(endian + "Q", head, 0x20)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x36)
        else:
            (phoff,) = struct.unpack_from(endian + "I", head, 0x1C)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x2A)
        for i in range(phnum):
            at = phoff + i * phentsize
            (p_type,) = struct.unpack_from(endian + "I", head, at)
            if p_type != _PT_INTERP:
                continue
            if is_64:
                (offset,) = struct.unpack_from(endian + "Q", head, at + 8)
                (size,) = struct.unpack_from(endian + "Q", head, at + 32)
            else:
                (offset,) = struct.unpack_from(endian + "I", head, at + 4)
                (size,) = struct.unpack_from(endian + "I", head, at + 16)
            raw = head[offset : offset + size]
            if len(raw) < size or not raw:
                return None  # beyond what was read: nothing is claimed
            loader = raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            return Program("elf", loader) if loader else None
    except struct.error:
        return None
    return None  # a static program: no loader needed
