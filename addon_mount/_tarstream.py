"""A streaming reader of gzip-compressed tar headers, built for speed and bounded memory.

The archive is decompressed in large chunks (isal when installed, else zlib)
and headers are parsed straight from those chunks; skipping a member's data
is offset arithmetic, not a read. Memory is bounded by the chunk size, not by
the archive: a 2 GiB member of zeros costs one chunk at a time, and extended
headers (pax, GNU long names, sparse maps) are refused past a budget before
they are read. ustar, GNU, pax (local and global), star and v7 headers are
understood, with base-256 numbers and signed checksums.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, Final
from zlib import adler32

_zlib: Any
try:  # isal inflates about twice as fast as zlib; it is optional.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - exercised where isal is not installed
    _zlib = zlib

BLOCK: Final = 512
# Compressed bytes read at a time, and the most one inflate call may produce: this
# bounds memory whatever the compression ratio (a zip bomb yields many chunks).
READ_SIZE: Final = 1 << 20
CHUNK_LIMIT: Final = 4 << 20
DEFAULT_MAX_HEADER_BYTES: Final = 1 << 20
_GZIP_WBITS: Final = 31
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"
_ZERO_BLOCK: Final = bytes(BLOCK)
_POSIX_MAGIC: Final = b"ustar\x0000"
_LONG_TYPES: Final = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX_TYPES: Final = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
# Types that are a directory when the member's name ends in '/' ('\0' reads as '0').
_REGULAR_TYPES: Final = (tarfile.REGTYPE, tarfile.CONTTYPE)
#: Member types whose header is not followed by data blocks.
NO_DATA_TYPES: Final = frozenset(
    {
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    }
)


class TarStreamError(Exception):
    """The stream is not a readable tar: corrupt gzip, a bad header, or cut short."""

    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason)


class HeaderLimitError(TarStreamError):
    """Extended headers (pax, GNU long names, sparse maps) larger than allowed."""

    def __init__(self, scope: str, limit: int, offset: int) -> None:
        #: "member" (one member's headers) or "global" (all global pax headers).
        self.scope = scope
        self.limit = limit
        super().__init__(f"{scope} extended headers over {limit:,} bytes", offset)


class Header:
    """One member's header, with its extended headers applied.

    ``size`` is what the file holds once extracted (a sparse file's real size);
    ``data_size`` is what follows the header in the archive.
    """

    __slots__ = ("data_size", "gid", "linkname", "mode", "name", "offset", "size", "type", "uid")

    def __init__(
        self,
        name: str,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        type_: bytes,
        linkname: str,
        offset: int,
    ) -> None:
        self.name = name
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.data_size = size
        self.type = type_
        self.linkname = linkname
        self.offset = offset

    def __repr__(self) -> str:
        return f"<Header {self.name!r} type={self.type!r} size={self.size}>"


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80 or 0xff)."""
    try:  # the usual form, '0000644\0' or '644 \0', in one step
        return int(field.rstrip(b"\x00 "), 8)
    except ValueError:
        pass
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
        raise TarStreamError("invalid header: a numeric field is not a number", offset) from exc
    # The checksum counts its own field as eight spaces. adler32's low half is 1 + the
    # byte sum modulo 65521: exact over 256 bytes (at most 65,280), and faster than sum().
    unsigned = (
        (adler32(block[:256]) & 0xFFFF)
        + (adler32(block[256:]) & 0xFFFF)
        - 2
        - sum(block[148:156])
        + 256
    )
    if stored != unsigned:
        # Some old tars summed signed bytes.
        signed = unsigned - 256 * sum(1 for b in block if b > 127)
        signed += 256 * sum(1 for b in block[148:156] if b > 127)
        if stored != signed:
            raise TarStreamError("invalid header: bad checksum", offset)
    type_ = block[156:157]
    if type_ == tarfile.AREGTYPE:
        type_ = tarfile.REGTYPE
    name = block[:100]
    if block[257:265] == _POSIX_MAGIC and block[345:346] != b"\x00":
        name = block[345:500].split(b"\x00", 1)[0] + b"/" + name
    # Whether a regular header is a directory depends on the member's full name,
    # which a GNU long name or a pax path may still replace: TarStream decides.
    return Header(_text(name), mode, uid, gid, size, type_, _text(block[157:257]), offset)


class _Inflater:
    """Compressed file in, bounded chunks of decompressed bytes out."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.decompressor = _zlib.decompressobj(_GZIP_WBITS)
        self.pending = b""
        self.finished = False
        self.total_in = 0

    def chunk(self) -> bytes:
        """The next decompressed chunk; b'' at the end of the stream."""
        while not self.finished:
            if self.pending:
                data, self.pending = self.pending, b""
            elif self.decompressor.unconsumed_tail:
                data = self.decompressor.unconsumed_tail
            else:
                data = self.raw.read(READ_SIZE)
                self.total_in += len(data)
                if not data:
                    self.finished = True
                    if not self.decompressor.eof:
                        raise TarStreamError(
                            "the compressed data ends early: the file is cut short", -1
                        )
                    return b""
            try:
                out = self.decompressor.decompress(data, CHUNK_LIMIT)
            except (zlib.error, _zlib.error, OSError, ValueError) as exc:
                raise TarStreamError(f"bad gzip data ({exc})", -1) from exc
            if self.decompressor.eof:
                rest = self.decompressor.unused_data
                # Concatenated gzip members form one stream, as gzip -d reads them;
                # anything else after the end is ignored, as gzip -d does.
                if rest[:2] == b"\x1f\x8b":
                    self.decompressor = _zlib.decompressobj(_GZIP_WBITS)
                    self.pending = rest
                elif not out:
                    self.finished = True
            if out:
                return bytes(out)
        return b""


class TarStream:
    """The members of a gzip-compressed tar, front to back, once.

    Iterating yields a :class:`Header` per member with its extended headers
    applied. :meth:`read_data` returns the current member's content; otherwise
    it is skipped without being copied. Errors raise :class:`TarStreamError`.
    """

    def __init__(self, raw: IO[bytes], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> None:
        self._inflater = _Inflater(raw)
        self.max_header_bytes = max_header_bytes
        #: Decompressed bytes produced so far.
        self.total_out = 0
        self._buf = b""
        self._pos = 0
        self._base = 0  # uncompressed offset of _buf[0]
        self._data_left = 0
        self._global: dict[str, str] = {}
        self._header_bytes = 0  # extended-header bytes of the member being read
        self._global_bytes = 0  # global pax headers, which last for the whole archive

    @property
    def offset(self) -> int:
        """The uncompressed offset reached so far."""
        return self._base + self._pos

    @property
    def compressed_offset(self) -> int:
        """Compressed bytes read so far."""
        return self._inflater.total_in

    def _fill(self) -> bool:
        try:
            chunk = self._inflater.chunk()
        except TarStreamError as exc:
            raise TarStreamError(exc.reason, self.offset) from exc
        if not chunk:
            return False
        self.total_out += len(chunk)
        rest = self._buf[self._pos :]
        self._base += self._pos
        self._buf = rest + chunk if rest else chunk
        self._pos = 0
        return True

    def _read(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise TarStreamError("unexpected end of data", self.offset)
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def _skip(self, n: int) -> None:
        while len(self._buf) - self._pos < n:
            n -= len(self._buf) - self._pos
            self._base += len(self._buf)
            self._buf, self._pos = b"", 0
            if not self._fill():
                raise TarStreamError("unexpected end of data", self.offset)
        self._pos += n

    def peek_data(self, n: int) -> bytes:
        """Up to *n* first bytes of the member just yielded, leaving it unread."""
        n = min(n, self._data_left)
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise TarStreamError("unexpected end of data", self.offset)
        return self._buf[self._pos : self._pos + n]

    def read_data(self) -> bytes:
        """The content of the member just yielded (call before asking for the next)."""
        data = self._read(self._data_left)
        self._skip(-self._data_left % BLOCK)
        self._data_left = 0
        return data

    def _extended(self, info: Header) -> bytes:
        """An extended header's data, refused past the budget before it is read."""
        if info.size < 0:
            raise TarStreamError(f"extended header {info.name!r} has a negative size", info.offset)
        if info.type == tarfile.XGLTYPE:
            self._global_bytes += info.size
            if self._global_bytes > self.max_header_bytes:
                raise HeaderLimitError("global", self.max_header_bytes, info.offset)
        else:
            self._header_bytes += info.size
            if self._header_bytes > self.max_header_bytes:
                raise HeaderLimitError("member", self.max_header_bytes, info.offset)
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
            if not self._have_block():
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
            data_size = info.size
            real_size = None
            if info.type == tarfile.GNUTYPE_SPARSE:
                real_size = _number(block[483:495])
                if block[482]:
                    self._skip_sparse_extensions()
            fields = {**self._global, **pax} if self._global else pax
            if fields:
                data_size = _apply_pax(info, fields, header_offset)
                real = fields.get("GNU.sparse.realsize") or fields.get("GNU.sparse.size")
                if real is not None:
                    real_size = _pax_int("GNU.sparse.realsize", real, header_offset)
            info.data_size = data_size
            info.size = data_size if real_size is None else real_size
            if long_name is not None:
                info.name = long_name
            if long_link is not None:
                info.linkname = long_link
            if info.type in _REGULAR_TYPES and info.name[-1:] == "/":
                # Old tars mark directories by a trailing slash only; GNU tar and
                # bsdtar extract any regular header named so as a directory, and
                # read no data after it, whatever its size field says.
                info.type = tarfile.DIRTYPE
            long_name = long_link = None
            pax = {}
            self._header_bytes = 0
            # Only regular files (and sparse ones) carry data blocks after the header;
            # the consumer reports a negative size and stops before asking for more.
            self._data_left = max(info.data_size, 0) if info.type not in NO_DATA_TYPES else 0
            yield info

    def _have_block(self) -> bool:
        while len(self._buf) - self._pos < BLOCK:
            if not self._fill():
                if len(self._buf) == self._pos:
                    return False  # ended without the two zero blocks: tar accepts that
                raise TarStreamError("unexpected end of data inside a header", self.offset)
        return True

    def _skip_sparse_extensions(self) -> None:
        while True:
            self._header_bytes += BLOCK
            if self._header_bytes > self.max_header_bytes:
                raise HeaderLimitError("member", self.max_header_bytes, self.offset)
            block = self._read(BLOCK)
            if not block[504]:
                return


def _pax_records(data: bytes, offset: int) -> dict[str, str]:
    """Parse 'LEN KEY=VALUE\\n' records, as POSIX.1-2001 defines them."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] != b"\x00":
        space = data.find(b" ", pos)
        if space < 0:
            raise TarStreamError("invalid header: a pax record has no length", offset)
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise TarStreamError(
                "invalid header: a pax record length is not a number", offset
            ) from exc
        end = pos + length
        if length <= space - pos or end > len(data):
            raise TarStreamError("invalid header: a pax record overruns its header", offset)
        # Like tar, accept a last record whose newline is missing.
        stop = end - 1 if data[end - 1 : end] == b"\n" else end
        key, sep, value = data[space + 1 : stop].partition(b"=")
        if not sep:
            raise TarStreamError("invalid header: a pax record has no '='", offset)
        records[key.decode(_ENCODING, _ERRORS)] = value.decode(_ENCODING, _ERRORS)
        pos = end
    return records


def _pax_int(key: str, value: str, offset: int) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise TarStreamError(
            f"invalid header: pax {key}={value!r} is not a number", offset
        ) from exc


def _apply_pax(info: Header, fields: dict[str, str], offset: int) -> int:
    """Apply pax fields to *info*; return the size of the data that follows the header."""
    data_size = info.size
    for key, value in fields.items():
        if key in ("path", "GNU.sparse.name"):
            info.name = value
        elif key == "linkpath":
            info.linkname = value
        elif key == "size":
            data_size = _pax_int(key, value, offset)
        elif key in ("uid", "gid"):
            setattr(info, key, _pax_int(key, value, offset))
    return data_size
