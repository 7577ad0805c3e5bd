"""The workspace's API v2 around add-ons: list, register, enable and disable.

The calls (docs/DOMAIN facts): ``GET /api/v2/runtimeaddons`` (paged with
``page_size`` and ``page_token``, narrowed with ``search_filter``),
``POST /api/v2/runtimeaddons:updatestatus`` and the documented multipart
``POST /api/v2/runtimeaddons/custom`` with the fields ``metadata`` and
``tarball``. Every call carries ``Authorization: Bearer <key>``; the key is
never part of a message, a log event or a repr. TLS is verified. Each way a
call can fail is an :class:`ApiError` with one line that says what to do.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._log import get_logger

if TYPE_CHECKING:
    import httpx

KEY_ENV: Final = "CDSW_APIV2_KEY"
LIST_PATH: Final = "/api/v2/runtimeaddons"
STATUS_PATH: Final = "/api/v2/runtimeaddons:updatestatus"
REGISTER_PATH: Final = "/api/v2/runtimeaddons/custom"
DEFAULT_TIMEOUT: Final = 60.0
#: No API answer is this large; a server sending more is cut off.
MAX_ANSWER_BYTES: Final = 64 << 20
PAGE_SIZE: Final = 100
# A workspace with more pages than this is answering in a loop.
MAX_PAGES: Final = 1000
# What curl -F sends as each part's type for these file names; the upload matches it.
PART_TYPE: Final = "application/octet-stream"
STATUSES: Final = ("UNKNOWN", "AVAILABLE", "DISABLED", "DEPRECATED", "DELETED", "FAILED")
_MESSAGE_MAX: Final = 200
_KEY_RE: Final = re.compile(r"[\x21-\x7e]+")


class ApiError(Exception):
    """A call to the workspace failed; the message is one line, and never holds the key."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class RuntimeAddon:
    """An add-on as the workspace lists it. It carries no paths and no spec."""

    identifier: str
    component: str = ""
    display_name: str = ""
    status: str = ""
    manageable: bool | None = None
    created_at: str = ""
    id: int | None = None
    reason: str = ""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RuntimeAddon:
        """Leniently: unknown fields are ignored, missing ones empty."""

        def text(key: str) -> str:
            value = raw.get(key)
            return "" if value is None else str(value)

        number = raw.get("id")
        manageable = raw.get("manageable")
        return cls(
            identifier=text("identifier"),
            component=text("component"),
            display_name=text("display_name"),
            status=text("status"),
            manageable=manageable if isinstance(manageable, bool) else None,
            created_at=text("created_at"),
            id=number if isinstance(number, int) and not isinstance(number, bool) else None,
            reason=text("reason"),
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def addon_matches(identifier: str, name: str) -> bool:
    """True when *identifier* is add-on *name*'s, or may be: see :func:`name_match`."""
    return name_match(identifier, name) is not None


def name_match(identifier: str, name: str) -> str | None:
    """How *identifier* holds add-on *name*: ``"exact"``, ``"suffix"``, or None.

    A custom add-on is ``custom-addon-<name>``, possibly with a suffix the
    workspace adds (``custom-addon-<name>-<suffix>``), as Cloudera's own
    add-ons carry one. So ``custom-addon-tool-x7k2p`` is ``tool``'s with a
    suffix, or another add-on's named ``tool-x7k2p``: a listing cannot tell.
    """
    registered = f"custom-addon-{name}"
    if identifier == registered:
        return "exact"
    if identifier.startswith(registered + "-"):
        return "suffix"
    return None


def workspace_url(text: str) -> str:
    """The workspace's base URL from what the user typed; plain http only to this machine."""
    url = text.strip().rstrip("/")
    url = url.removesuffix("/api/v2").rstrip("/")
    like = "https://ml-1234abcd.example.cloudera.site"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError for a port that is no number, or out of range
    except ValueError as exc:
        raise ApiError(f"--workspace {text!r} is not a URL like {like}: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApiError(f"--workspace {text!r} is not a URL like {like}")
    if port == 0:
        raise ApiError(f"--workspace {text!r} is not a URL like {like}: port 0")
    if any(c.isspace() for c in url) or not _host_ok(parts.hostname):
        raise ApiError(f"--workspace {text!r} is not a URL like {like}: not a host name")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ApiError(f"--workspace {text!r} must be the workspace's address alone")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ApiError(
            f"refusing to send the API key over plain http to {parts.hostname!r}; use https"
        )
    return url


def _host_ok(host: str) -> bool:
    """A DNS name (letters, digits, '-', '.'), or an IP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return (
            re.fullmatch(
                r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?",
                host,
            )
            is not None
        )
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_key(key_file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """The API v2 key: from *key_file*, else from ``$CDSW_APIV2_KEY``."""
    environ = os.environ if environ is None else environ
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise ApiError(f"cannot read --api-key-file {str(key_file)!r}: {reason}") from exc
        where = f"--api-key-file {str(key_file)!r}"
    else:
        key = environ.get(KEY_ENV, "").strip()
        where = f"${KEY_ENV}"
        if not key:
            raise ApiError(
                f"no API key: set {KEY_ENV} (a session has it) or pass --api-key-file FILE"
            )
    if not key:
        raise ApiError(f"{where} is empty")
    if not _KEY_RE.fullmatch(key):
        # Said without the key: it could be the right key with a stray character.
        raise ApiError(f"{where} holds spaces or control characters; an API key has none")
    return key


def curl_command(
    url: str,
    metadata: Path,
    archive: Path,
    *,
    key_file: Path | None = None,
    ca_bundle: Path | None = None,
) -> str:
    """The documented registration call as curl, with the key left in its variable or file."""
    key = f"$(cat {shlex.quote(str(key_file))})" if key_file is not None else f"${KEY_ENV}"
    lines = [
        f"curl --fail-with-body -X POST {shlex.quote(url + REGISTER_PATH)}",
        f'-H "Authorization: Bearer {key}"',
    ]
    if ca_bundle is not None:
        lines.append(f"--cacert {shlex.quote(str(ca_bundle))}")
    lines.append(f"-F {shlex.quote('metadata=@' + str(metadata))}")
    lines.append(f"-F {shlex.quote('tarball=@' + str(archive))}")
    return " \\\n  ".join(lines)


class _Counted:
    """A file read through this counts the bytes (for a progress bar); its length stays known."""

    def __init__(self, file: Any, progress: Callable[[int], None]) -> None:
        self._file = file
        self._progress = progress
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._file.read(size)
        self.done += len(chunk)
        self._progress(self.done)
        return chunk

    def fileno(self) -> int:
        fd: int = self._file.fileno()
        return fd

    def seek(self, offset: int, whence: int = 0) -> int:
        self.done = 0 if offset == 0 and whence == 0 else self.done
        position: int = self._file.seek(offset, whence)
        return position

    def tell(self) -> int:
        position: int = self._file.tell()
        return position


@attrs.frozen
class Workspace:
    """A workspace's API v2, called with one key."""

    url: str = attrs.field(converter=workspace_url)
    key: str = attrs.field(repr=False)
    ca_bundle: Path | None = None
    timeout: float = DEFAULT_TIMEOUT

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        import httpx  # noqa: PLC0415 - only the API commands pay for importing it

        verify: ssl.SSLContext | bool = True
        if self.ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=str(self.ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise ApiError(f"cannot use --ca-bundle {str(self.ca_bundle)!r}: {reason}") from exc
        with httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Accept": "application/json",
                "User-Agent": f"addon-mount/{_version()}",
            },
            verify=verify,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
        ) as client:
            yield client

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> Any:
        import httpx  # noqa: PLC0415

        log = get_logger()
        log.debug("api_request", method=method, path=path)
        try:
            with self._client() as client, client.stream(method, path, **kwargs) as streamed:
                response = self._read_answer(what, streamed)
        except httpx.InvalidURL as exc:
            raise ApiError(f"{what}: {self.url} is not a URL httpx can call: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"{what}: {self.url} sent nothing for {self.timeout:g} s (--timeout)"
            ) from exc
        except httpx.ConnectError as exc:
            raise ApiError(f"{what}: cannot connect to {self.url}: {_reason(exc)}") from exc
        except httpx.TransportError as exc:
            raise ApiError(f"{what}: {self.url} broke off the call: {_reason(exc)}") from exc
        log.debug("api_response", method=method, path=path, status=response.status_code)
        return _answer(what, response, self.url, self.key)

    def _read_answer(self, what: str, streamed: httpx.Response) -> httpx.Response:
        """The whole answer, read within --timeout of its first byte (a trickle is cut off)."""
        import httpx  # noqa: PLC0415

        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        answer = streamed.iter_bytes()
        while True:
            try:
                chunk = next(answer, None)
            except httpx.DecodingError as exc:
                encoding = streamed.headers.get("content-encoding", "none")
                raise ApiError(
                    f"{what}: {self.url} sent an answer that does not decode as its "
                    f"Content-Encoding ({encoding}) says: {_reason(exc)}"
                ) from exc
            if chunk is None:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ApiError(
                    f"{what}: {self.url} sent more than {MAX_ANSWER_BYTES:,} bytes; "
                    "that is no API answer"
                )
            if time.monotonic() > deadline:
                raise ApiError(
                    f"{what}: {self.url} did not finish its answer within {self.timeout:g} s "
                    "(--timeout)"
                )
        headers = [
            (k, v) for k, v in streamed.headers.multi_items() if k.lower() != "content-encoding"
        ]
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=streamed.request,
        )

    # -- the calls ------------------------------------------------------------------------

    def list_addons(
        self,
        search_filter: Mapping[str, str] | None = None,
        *,
        page_size: int = PAGE_SIZE,
    ) -> list[RuntimeAddon]:
        """Every add-on the workspace lists (every page), narrowed by *search_filter*."""
        addons: list[RuntimeAddon] = []
        token = ""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {"page_size": page_size}
            if search_filter:
                params["search_filter"] = json.dumps(dict(search_filter), separators=(",", ":"))
            if token:
                params["page_token"] = token
            answer = self._call("listing add-ons", "GET", LIST_PATH, params=params)
            if not isinstance(answer, dict):
                raise ApiError(
                    f"listing add-ons: the workspace answered a JSON {type(answer).__name__}, "
                    "not an object with runtime_addons"
                )
            rows = answer.get("runtime_addons")
            if rows is None:
                rows = []
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ApiError(
                    "listing add-ons: the answer's runtime_addons is not a list of objects"
                )
            addons.extend(RuntimeAddon.from_json(r) for r in rows)
            token = str(answer.get("next_page_token") or "")
            if not token:
                return addons
            if token in seen:
                raise ApiError(f"listing add-ons: the workspace sent page token {token!r} twice")
            seen.add(token)
        raise ApiError(f"listing add-ons: more than {MAX_PAGES} pages; stopped")

    def update_status(self, identifiers: Sequence[str], status: str) -> int:
        """Set *status* on the add-ons *identifiers*; returns the rows the workspace changed."""
        answer = self._call(
            f"setting {', '.join(identifiers)} {status}",
            "POST",
            STATUS_PATH,
            json={"status": status, "identifiers": list(identifiers)},
        )
        rows = answer.get("rows_affected") if isinstance(answer, dict) else None
        try:
            return int(rows) if rows is not None else 0
        except (TypeError, ValueError):
            return 0

    def register(
        self,
        metadata: Path,
        archive: Path,
        progress: Callable[[int], None] | None = None,
    ) -> Any:
        """Upload the bundle as ``curl -F metadata=@... -F tarball=@...`` does, streamed."""
        try:
            with metadata.open("rb") as meta, archive.open("rb") as tar:
                tarball: Any = tar if progress is None else _Counted(tar, progress)
                return self._call(
                    f"registering {metadata.name} and {archive.name}",
                    "POST",
                    REGISTER_PATH,
                    files={
                        "metadata": (metadata.name, meta, PART_TYPE),
                        "tarball": (archive.name, tarball, PART_TYPE),
                    },
                )
        except OSError as exc:
            where = exc.filename or str(archive)
            raise ApiError(f"cannot read {str(where)!r}: {exc.strerror or exc}") from exc


def _version() -> str:
    try:
        return version("addon-mount")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    reason = text[-1] if text else type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
        return f"TLS certificate not trusted ({reason}); for a private CA pass --ca-bundle FILE"
    return reason


def _server_message(response: httpx.Response, key: str = "") -> str:
    """The message of an API v2 error answer ``{"error", "code", "message"}``, or ''.

    A server that echoes the key back (some proxies do) never gets it shown.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    message = body.get("message") or body.get("error") or ""
    text = " ".join(str(message).split())
    if key:
        text = text.replace(key, "<API key>")
    return text[:_MESSAGE_MAX] + ("..." if len(text) > _MESSAGE_MAX else "")


def _answer(what: str, response: httpx.Response, url: str, key: str = "") -> Any:
    status = response.status_code
    said = _server_message(response, key)
    detail = f": {said}" if said else ""
    if status in (301, 302, 303, 307, 308):
        where = response.headers.get("location", "")
        raise ApiError(
            f"{what}: the workspace redirected to {where!r} (HTTP {status}); is --workspace "
            "the workspace's own URL?",
            status=status,
        )
    if status == 401:
        raise ApiError(
            f"{what}: the workspace refused the API key (HTTP 401){detail}; check "
            f"{KEY_ENV} or --api-key-file",
            status=status,
        )
    if status == 403:
        raise ApiError(
            f"{what}: the API key may not do this (HTTP 403){detail}; add-ons need an "
            "administrator's key",
            status=status,
        )
    if status == 404:
        raise ApiError(
            f"{what}: {url} has no such API (HTTP 404){detail}; is --workspace the "
            "workspace's URL?",
            status=status,
        )
    if status == 409:
        raise ApiError(f"{what}: the workspace refused: conflict (HTTP 409){detail}", status=status)
    if status >= 500:
        raise ApiError(
            f"{what}: the workspace failed (HTTP {status}){detail}; try again later",
            status=status,
        )
    if status >= 400:
        raise ApiError(f"{what}: the workspace refused (HTTP {status}){detail}", status=status)
    if status >= 300 or status < 200:
        raise ApiError(f"{what}: unexpected answer HTTP {status}", status=status)
    if not response.content.strip():
        return {}
    try:
        return response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise ApiError(
            f"{what}: the workspace answered HTTP {status} with {kind}, not JSON (a login "
            "page or a proxy answers this way; is --workspace the workspace's URL?)",
            status=status,
        ) from exc
