"""A streaming reader of gzip-compressed tar headers, built for speed and bounded memory.

The archive is decompressed in large chunks (isal when installed, else zlib)
and headers are parsed straight from those chunks; skipping a member's data
is offset arithmetic, not a read. Memory is bounded by the chunk size, not by
the archive (a 2 GiB member of zeros costs one chunk at a time). Header
blocks are parsed by the standard library's ``tarfile.TarInfo.frombuf``;
GNU long names, pax extended headers (local and global) and GNU sparse
extension blocks are handled here.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, Final

_zlib: Any
try:  # isal inflates about twice as fast as zlib; it is optional.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - exercised where isal is not installed
    _zlib = zlib

BLOCK: Final = 512
# Compressed bytes read at a time, and the most a single inflate call may produce:
# bounds memory whatever the compression ratio (a zip bomb yields many chunks).
READ_SIZE: Final = 1 << 20
CHUNK_LIMIT: Final = 4 << 20
_GZIP_WBITS: Final = 31
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"
_LONG_TYPES: Final = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX_TYPES: Final = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
# An extended header bigger than this is not a real one (tar tools use a few KB).
MAX_EXTENDED_HEADER: Final = 1 << 20


class Header:
    """One member's header, with its extended headers applied."""

    __slots__ = ("gid", "linkname", "mode", "name", "offset", "size", "type", "uid")

    def __init__(self, name: str, mode: int, uid: int, gid: int, size: int, type_: bytes,
                 linkname: str, offset: int) -> None:
        self.name = name
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.type = type_
        self.linkname = linkname
        self.offset = offset

    def __repr__(self) -> str:
        return f"<Header {self.name!r} type={self.type!r} size={self.size}>"


_ZERO_BLOCK: Final = bytes(BLOCK)
_POSIX_MAGIC: Final = b"ustar\x0000"


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80 or 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        if field[:1] == b"\xff":
            value -= 256 ** (len(field) - 1)
        return value
    text = field.split(b"\x00", 1)[0].strip()
    return int(text, 8) if text else 0


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode(_ENCODING, _ERRORS)


def parse_header(block: bytes, offset: int) -> Header:
    """Parse one 512-byte header block; raise TarStreamError if it is not one."""
    try:
        stored = _number(block[148:156])
        size = _number(block[124:136])
        mode = _number(block[100:108])
        uid = _number(block[108:116])
        gid = _number(block[116:124])
    except ValueError as exc:
        raise TarStreamError("bad tar header: a numeric field is not a number", offset) from exc
    # The checksum counts the checksum field as eight spaces; old tars summed signed bytes.
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored != unsigned:
        signed = unsigned - 256 * sum(1 for b in block if b > 127)
        signed += 256 * sum(1 for b in block[148:156] if b > 127)
        if stored != signed:
            raise TarStreamError("bad tar header: checksum mismatch", offset)
    type_ = block[156:157] or b"0"
    name = block[:100]
    if block[257:265] == _POSIX_MAGIC and block[345:346] != b"\x00":
        name = block[345:500].split(b"\x00", 1)[0] + b"/" + name
    if type_ == tarfile.AREGTYPE:
        type_ = tarfile.DIRTYPE if name.split(b"\x00", 1)[0].endswith(b"/") else tarfile.REGTYPE
    return Header(_text(name), mode, uid, gid, size, type_, _text(block[157:257]), offset)


class TarStreamError(Exception):
    """The stream is not a readable tar: corrupt gzip, bad header, or cut short."""

    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} (at uncompressed offset {offset:,})")


class _Inflater:
    """Compressed file in, bounded chunks of decompressed bytes out."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.decompressor = _zlib.decompressobj(_GZIP_WBITS)
        self.pending = b""
        self.finished = False

    def chunk(self) -> bytes:
        """The next decompressed chunk; b'' at the end of the stream."""
        while not self.finished:
            if self.pending:
                data, self.pending = self.pending, b""
            elif self.decompressor.unconsumed_tail:
                data = self.decompressor.unconsumed_tail
            else:
                data = self.raw.read(READ_SIZE)
                if not data:
                    self.finished = True
                    if not self.decompressor.eof:
                        raise TarStreamError("the gzip stream ends early", -1)
                    return b""
            try:
                out = self.decompressor.decompress(data, CHUNK_LIMIT)
            except (zlib.error, _zlib.error, OSError, ValueError) as exc:
                raise TarStreamError(f"bad gzip data: {exc}", -1) from exc
            if self.decompressor.eof:
                rest = self.decompressor.unused_data
                # Concatenated gzip members form one stream, as gzip -d reads them.
                if rest[:2] == b"\x1f\x8b":
                    self.decompressor = _zlib.decompressobj(_GZIP_WBITS)
                    self.pending = rest
                elif not out:
                    self.finished = True
            if out:
                return bytes(out)
        return b""


class TarStream:
    """Iterate over the members of a gzip-compressed tar, front to back, once.

    Each member comes as a :class:`tarfile.TarInfo` whose name, link name and
    size have their extended headers applied. :meth:`read_data` returns the
    current member's content; otherwise it is skipped without being copied.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._inflater = _Inflater(raw)
        self._buf = b""
        self._pos = 0
        self._base = 0  # uncompressed offset of _buf[0]
        self._data_left = 0
        self._global: dict[str, str] = {}

    @property
    def offset(self) -> int:
        """The uncompressed offset reached so far."""
        return self._base + self._pos

    def _fill(self) -> bool:
        chunk = self._inflater.chunk()
        if not chunk:
            return False
        rest = self._buf[self._pos :]
        self._base += self._pos
        self._buf = rest + chunk if rest else chunk
        self._pos = 0
        return True

    def _read(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise TarStreamError(
                    f"unexpected end of data: {n:,} bytes wanted, "
                    f"{len(self._buf) - self._pos:,} left", self.offset)
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def _skip(self, n: int) -> None:
        while len(self._buf) - self._pos < n:
            n -= len(self._buf) - self._pos
            self._base += len(self._buf)
            self._buf, self._pos = b"", 0
            if not self._fill():
                raise TarStreamError(f"unexpected end of data: {n:,} more bytes wanted",
                                     self.offset)
        self._pos += n

    def read_data(self) -> bytes:
        """The content of the member just yielded (call before asking for the next)."""
        data = self._read(self._data_left)
        self._skip(-self._data_left % BLOCK)
        self._data_left = 0
        return data

    def _extended(self, info: Header) -> bytes:
        if info.size < 0 or info.size > MAX_EXTENDED_HEADER:
            raise TarStreamError(
                f"extended header of {info.size:,} bytes (more than "
                f"{MAX_EXTENDED_HEADER:,})", self.offset)
        data = self._read(info.size)
        self._skip(-info.size % BLOCK)
        return data

    def __iter__(self) -> Iterator[Header]:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        while True:
            if self._data_left:
                self._skip(self._data_left + (-self._data_left % BLOCK))
                self._data_left = 0
            if len(self._buf) - self._pos < BLOCK and not self._fill_block():
                return
            header_offset = self.offset
            block = self._read(BLOCK)
            if block == _ZERO_BLOCK:
                return  # the end-of-archive marker
            info = parse_header(block, header_offset)
            if info.type in _LONG_TYPES:
                value = _text(self._extended(info))
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue
            if info.type in _PAX_TYPES:
                records = _pax_records(self._extended(info), header_offset)
                if info.type == tarfile.XGLTYPE:
                    self._global.update(records)
                else:
                    pax.update(records)
                continue
            real_size = None
            if info.type == tarfile.GNUTYPE_SPARSE:
                real_size = _number(block[483:495])
                if block[482]:
                    self._skip_sparse_extensions()
            fields = {**self._global, **pax} if self._global else pax
            if fields:
                real_size = _apply_pax(info, fields, header_offset) or real_size
            if long_name is not None:
                info.name = long_name
            if long_link is not None:
                info.linkname = long_link
            long_name = long_link = None
            pax = {}
            if info.size < 0:
                raise TarStreamError(f"member {info.name!r} has a negative size", header_offset)
            # Only regular files (and sparse ones) carry data blocks after the header.
            self._data_left = info.size if info.type not in _NO_DATA else 0
            if real_size is not None:
                info.size = real_size  # what the file holds once extracted
            yield info

    def _fill_block(self) -> bool:
        while len(self._buf) - self._pos < BLOCK:
            if not self._fill():
                if len(self._buf) == self._pos:
                    return False  # ended without the two zero blocks: tar accepts that
                raise TarStreamError("unexpected end of data inside a header", self.offset)
        return True

    def _skip_sparse_extensions(self) -> None:
        while True:
            block = self._read(BLOCK)
            if not block[504]:
                return


_NO_DATA: Final = frozenset({
    tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
})


def _pax_records(data: bytes, offset: int) -> dict[str, str]:
    """Parse 'LEN KEY=VALUE\\n' records, as POSIX.1-2001 defines them."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] != b"\x00":
        space = data.find(b" ", pos)
        if space < 0:
            raise TarStreamError("bad pax header: a record without a length", offset)
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise TarStreamError("bad pax header: a record length is not a number",
                                 offset) from exc
        end = pos + length
        if length <= space - pos or end > len(data):
            raise TarStreamError("bad pax header: a record overruns the header", offset)
        # Like tar, accept a last record whose newline is missing.
        record = data[space + 1 : end - 1] if data[end - 1 : end] == b"\n" else data[space + 1 : end]
        key, sep, value = record.partition(b"=")
        if not sep:
            raise TarStreamError("bad pax header: a record without '='", offset)
        records[key.decode(_ENCODING, _ERRORS)] = value.decode(_ENCODING, _ERRORS)
        pos = end
    return records


_PAX_INTS: Final = ("size", "uid", "gid")
_PAX_REAL_SIZE: Final = ("GNU.sparse.realsize", "GNU.sparse.size")


def _pax_int(key: str, value: str, offset: int) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise TarStreamError(f"bad pax header: {key}={value!r} is not a number", offset) from exc


def _apply_pax(info: Header, fields: dict[str, str], offset: int) -> int | None:
    """Apply pax fields to *info*; return a sparse file's real size if given."""
    real_size = None
    for key, value in fields.items():
        if key in ("path", "GNU.sparse.name"):
            info.name = value
        elif key == "linkpath":
            info.linkname = value
        elif key in _PAX_INTS:
            setattr(info, key, _pax_int(key, value, offset))
        elif key in _PAX_REAL_SIZE:
            real_size = _pax_int(key, value, offset)
    return real_size
