"""A workspace's API v2 around add-ons, served on 127.0.0.1 for tests; it records every request.

It implements the documented calls: ``GET /api/v2/runtimeaddons`` (with
``search_filter``, exact match on each key, and paging by ``page_size`` and
``page_token``), ``POST /api/v2/runtimeaddons:updatestatus`` and the multipart
``POST /api/v2/runtimeaddons/custom``. ``fail`` makes a path answer with a
given status, body and content type; ``delay`` makes it answer late.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

KEY = "k3y-Sekr1t-0123456789abcdef"


@attrs.define
class Part:
    """One part of a multipart body as received."""

    name: str | None
    filename: str | None
    content_type: str
    content: bytes


@attrs.define
class Received:
    """One request as the server got it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    body_size: int = 0
    body_sha256: str = ""

    def parts(self) -> list[Part]:
        """The multipart parts, parsed with the standard library's MIME parser."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        return [
            Part(
                part.get_param("name", header="content-disposition"),
                part.get_filename(),
                part.get_content_type(),
                part.get_payload(decode=True) or b"",
            )
            for part in message.iter_parts()  # type: ignore[attr-defined]
        ]


@attrs.define
class Failure:
    status: int
    body: bytes = b'{"error": "failed", "code": 13, "message": "it failed"}'
    content_type: str = "application/json"


def addon(
    identifier: str, status: str = "AVAILABLE", component: str = "Custom", **more: Any
) -> dict[str, Any]:
    """A RuntimeAddon as the API lists it."""
    return {
        "identifier": identifier,
        "component": component,
        "display_name": more.pop("display_name", identifier),
        "status": status,
        "manageable": True,
        "created_at": more.pop("created_at", "2025-01-15T10:00:00Z"),
        "id": more.pop("id", 1),
        "reason": "",
        **more,
    }


@attrs.define
class Workspace:
    """The server's state: its add-ons, the failures to give, and what it received."""

    addons: list[dict[str, Any]] = attrs.Factory(list)
    received: list[Received] = attrs.Factory(list)
    fail: dict[str, Failure] = attrs.Factory(dict)
    delay: dict[str, float] = attrs.Factory(dict)
    #: Upload bodies larger than this are hashed, not kept.
    keep_limit: int = 1 << 20
    url: str = ""

    def calls(self, method: str | None = None) -> list[Received]:
        return [r for r in self.received if method is None or r.method == method]


def _handler(state: Workspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads state.received

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # the client may have given up waiting

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode())

        def _record(self) -> Received:
            split = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            digest = hashlib.sha256()
            kept = bytearray()
            left = length
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
                digest.update(chunk)
                if length <= state.keep_limit:
                    kept += chunk
            received = Received(
                self.command,
                split.path,
                urllib.parse.parse_qs(split.query),
                {k.lower(): v for k, v in self.headers.items()},
                bytes(kept),
                length,
                digest.hexdigest(),
            )
            state.received.append(received)
            return received

        def _route(self) -> None:
            received = self._record()
            if received.path in state.delay:
                time.sleep(state.delay[received.path])
            failure = state.fail.get(received.path)
            if failure is not None:
                self._send(failure.status, failure.body, failure.content_type)
                return
            if received.headers.get("authorization") != f"Bearer {KEY}":
                self._json(401, {"error": "unauthorized", "code": 16, "message": "bad key"})
                return
            if self.command == "GET" and received.path == "/api/v2/runtimeaddons":
                self._list(received)
            elif self.command == "POST" and received.path == "/api/v2/runtimeaddons:updatestatus":
                self._update(received)
            elif self.command == "POST" and received.path == "/api/v2/runtimeaddons/custom":
                self._register(received)
            else:
                self._json(404, {"error": "not found", "code": 5, "message": "Not Found"})

        do_GET = do_POST = _route  # noqa: N815 - http.server's naming

        def _list(self, received: Received) -> None:
            query = {k: v[0] for k, v in received.query.items()}
            wanted = json.loads(query.get("search_filter", "{}"))
            rows = [a for a in state.addons if all(a.get(k) == v for k, v in wanted.items())]
            size = int(query.get("page_size", "10"))
            start = int(query.get("page_token") or 0)
            page = rows[start : start + size]
            token = str(start + size) if start + size < len(rows) else ""
            self._json(200, {"runtime_addons": page, "next_page_token": token})

        def _update(self, received: Received) -> None:
            body = json.loads(received.body)
            rows = 0
            for a in state.addons:
                if a["identifier"] in body["identifiers"]:
                    a["status"] = body["status"]
                    rows += 1
            self._json(200, {"rows_affected": rows})

        def _register(self, received: Received) -> None:
            if received.body_size > state.keep_limit:
                self._json(200, {})
                return
            parts = {p.name: p for p in received.parts()}
            name = json.loads(parts["metadata"].content)["name"]
            state.addons.append(addon(f"custom-addon-{name}", id=len(state.addons) + 1))
            self._json(200, {})

    return Handler


@contextmanager
def serve(state: Workspace | None = None) -> Iterator[Workspace]:
    """Serve *state* on 127.0.0.1 (a free port) until the block ends."""
    state = state or Workspace()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
