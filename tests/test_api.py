"""The workspace commands (register, addons, enable, disable) against a real local HTTP server."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from addon_mount._api import ApiError, RuntimeAddon, Workspace, addon_matches, workspace_url

from .conftest import FIXTURES, TOOL, BundleFactory, needs_tool, run_cli
from .workspace_server import KEY, Failure, addon, serve
from .workspace_server import Workspace as Server

DOCS = FIXTURES / "docs-example"
COLLISION = FIXTURES / "broken" / "collision"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A workspace on 127.0.0.1 with three add-ons, and the key in $CDSW_APIV2_KEY."""
    monkeypatch.setenv("CDSW_APIV2_KEY", KEY)
    state = Server(
        addons=[
            addon("spark332-7190-1202-b75-ht9wmb", component="Spark", id=1),
            addon("hadoop-cli-7.3.1.101-c2jhs", component="HadoopCLI", id=2),
            addon("custom-addon-old-x1y2z", status="DISABLED", id=3),
        ]
    )
    with serve(state) as running:
        yield running


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI; the API key must appear nowhere in what it prints."""
    status, out, err = run_cli(args, capsys)
    assert KEY not in out + err
    assert "Traceback" not in out + err
    return status, out, err


# -- listing ------------------------------------------------------------------------------


def test_listing_follows_every_page(server: Server) -> None:
    """list_addons asks page after page with page_size and page_token until no token is left."""
    server.addons += [addon(f"custom-addon-t{i}", id=10 + i) for i in range(4)]
    rows = Workspace(server.url, KEY).list_addons(page_size=3)
    assert len(rows) == 7
    assert [r.identifier for r in rows][-1] == "custom-addon-t3"
    queries = [r.query for r in server.calls("GET")]
    assert [q.get("page_token") for q in queries] == [None, ["3"], ["6"]]
    assert all(q["page_size"] == ["3"] for q in queries)


def test_search_filter_is_sent_as_json(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """`addons --status` sends search_filter as a JSON object and shows what the server chose."""
    status, out, _ = cli(["addons", "-w", server.url, "--status", "DISABLED"], capsys)
    assert status == 0
    [call] = server.calls("GET")
    assert json.loads(call.query["search_filter"][0]) == {"status": "DISABLED"}
    assert "custom-addon-old-x1y2z" in out
    assert "spark332" not in out
    assert out.rstrip().endswith("(1 add-on)")


def test_addons_json_lists_every_field(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """`addons -f json` gives each RuntimeAddon's fields."""
    status, out, _ = cli(["addons", "-w", server.url, "-f", "json"], capsys)
    assert status == 0
    rows = json.loads(out)
    assert rows[0] == {
        "identifier": "spark332-7190-1202-b75-ht9wmb",
        "component": "Spark",
        "display_name": "spark332-7190-1202-b75-ht9wmb",
        "status": "AVAILABLE",
        "manageable": True,
        "created_at": "2025-01-15T10:00:00Z",
        "id": 1,
        "reason": "",
    }


def test_a_repeated_page_token_stops_the_listing(server: Server) -> None:
    """A workspace that hands out the same page token twice is an error, not an endless loop."""
    body = json.dumps({"runtime_addons": [], "next_page_token": "same"}).encode()
    server.fail["/api/v2/runtimeaddons"] = Failure(200, body)
    with pytest.raises(ApiError, match="sent page token 'same' twice"):
        Workspace(server.url, KEY).list_addons()
    assert len(server.received) == 2


def test_runtime_addon_reads_leniently() -> None:
    """Unknown fields are ignored, missing ones empty, wrong types dropped."""
    row = RuntimeAddon.from_json({"identifier": "x", "id": "7", "manageable": "yes", "new": 1})
    assert row == RuntimeAddon("x")


@pytest.mark.parametrize(
    ("identifier", "name", "matches"),
    [
        ("custom-addon-tool", "tool", True),
        ("custom-addon-tool-x7k2p", "tool", True),
        ("custom-addon-toolbox", "tool", False),
        ("custom-addon-tool", "too", False),
        ("spark332-7190", "spark332", False),
    ],
)
def test_identifiers_match_with_or_without_a_suffix(
    identifier: str, name: str, matches: bool
) -> None:
    """custom-addon-<name> is the add-on's identifier, with or without a '-<suffix>'."""
    assert addon_matches(identifier, name) is matches


# -- register -------------------------------------------------------------------------------


def test_register_uploads_exactly_what_curl_sends(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A passing bundle is uploaded as `curl -F metadata=@... -F tarball=@...` with the key."""
    status, out, err = cli(["register", str(DOCS), "-w", server.url], capsys)
    assert status == 0, err
    assert "Registered custom-addon-docs-example" in out
    listing, upload = server.calls()
    assert (listing.method, listing.path) == ("GET", "/api/v2/runtimeaddons")
    assert (upload.method, upload.path) == ("POST", "/api/v2/runtimeaddons/custom")
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(upload.headers["content-length"]) == len(upload.body)
    parts = upload.parts()
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("metadata", "metadata.json", "application/octet-stream"),
        ("tarball", "addon.tar.gz", "application/octet-stream"),
    ]
    assert parts[0].content == (DOCS / "metadata.json").read_bytes()
    assert parts[1].content == (DOCS / "addon.tar.gz").read_bytes()


def test_the_upload_equals_the_documented_curl_call(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The documented curl command, run against the same server, sends the same parts."""
    needs_tool("curl", "curl")
    assert cli(["register", str(DOCS), "-w", server.url], capsys)[0] == 0
    ours = server.calls("POST")[-1]
    server.addons.clear()
    subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{server.url}/api/v2/runtimeaddons/custom",
            "-H",
            f"Authorization: Bearer {KEY}",
            "-F",
            "metadata=@metadata.json",
            "-F",
            "tarball=@addon.tar.gz",
        ],
        cwd=DOCS,
        check=True,
        capture_output=True,
    )
    theirs = server.calls("POST")[-1]
    assert theirs.headers["authorization"] == ours.headers["authorization"]
    assert [(p.name, p.filename, p.content) for p in theirs.parts()] == [
        (p.name, p.filename, p.content) for p in ours.parts()
    ]


def test_a_failing_bundle_is_never_sent(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle whose check fails is not uploaded: the server hears nothing at all."""
    status, out, err = cli(["register", str(COLLISION), "-w", server.url], capsys)
    assert status == 1
    assert "AM301 collision" in out
    assert err.strip() == "addon-mount: not registering: the check failed; nothing was sent"
    assert server.received == []


def test_strict_refuses_warnings(
    server: Server, bundle: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --strict a bundle with warnings is not uploaded either."""
    b = bundle("vendor", ["/opt/vendor/tool"], [("opt/vendor/tool", "f", 0o644, "")])
    status, _, err = cli(["register", str(b), "-w", server.url, "--strict", "-r", "cml-r"], capsys)
    assert status == 1
    assert "the check has warnings (--strict)" in err
    assert server.received == []


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("custom-addon-tool", "the workspace already has custom-addon-tool (DISABLED)"),
        (
            "custom-addon-tool-x7k2p",
            "the workspace has custom-addon-tool-x7k2p (DISABLED), which is custom-addon-tool "
            "with a suffix the workspace added, or another add-on whose name starts with "
            "'tool-'; if it is the other, pass --not-taken-by custom-addon-tool-x7k2p",
        ),
    ],
)
def test_a_taken_name_is_never_uploaded(
    server: Server,
    bundle: BundleFactory,
    identifier: str,
    words: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An identifier custom-addon-<name>, with or without a suffix, even disabled, stops it."""
    server.addons.append(addon(identifier, status="DISABLED", id=9))
    b = bundle("tool", ["/opt/tool"], TOOL)
    status, _, err = cli(["register", str(b), "-w", server.url, "-r", "cml-r"], capsys)
    assert status == 1
    assert words in err
    assert server.calls("POST") == []


def test_another_addons_name_is_not_taken_when_said_so(
    server: Server, bundle: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """--not-taken-by lets tool register beside tool-extra; the exact name still stops it."""
    server.addons.append(addon("custom-addon-tool-extra", id=9))
    b = bundle("tool", ["/opt/tool"], TOOL)
    args = ["register", str(b), "-w", server.url, "-r", "cml-r"]
    status, out, err = cli([*args, "--not-taken-by", "custom-addon-tool-extra"], capsys)
    assert status == 0, err
    assert "custom-addon-tool is free in the workspace" in out
    assert len(server.calls("POST")) == 1
    status, _, err = cli([*args, "--not-taken-by", "custom-addon-tool-extra"], capsys)
    assert status == 1
    assert "the workspace already has custom-addon-tool (AVAILABLE)" in err
    assert len(server.calls("POST")) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{}", "the workspace listed no add-ons at all"),
        (b'{"runtime_addons": []}', "the workspace listed no add-ons at all"),
        (b"[]", "listing add-ons: the workspace answered a JSON list, not an object"),
        (b'"ok"', "listing add-ons: the workspace answered a JSON str, not an object"),
    ],
)
def test_a_listing_that_cannot_show_the_name_is_free_stops_the_upload(
    server: Server, body: bytes, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty or malformed listing is exit 2 with nothing sent, never a traceback."""
    server.fail["/api/v2/runtimeaddons"] = Failure(200, body)
    status, _, err = cli(["register", str(DOCS), "-w", server.url, "-r", "cml-r"], capsys)
    assert status == 2
    assert words in err
    assert server.calls("POST") == []


def test_an_empty_listing_can_be_trusted_when_said_so(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trust-empty-listing registers in a workspace that really lists nothing."""
    server.addons.clear()
    args = ["register", str(DOCS), "-w", server.url, "-r", "cml-r", "--trust-empty-listing"]
    status, _, err = cli(args, capsys)
    assert status == 0, err
    assert len(server.calls("POST")) == 1


@pytest.mark.parametrize(
    ("failure", "maybe"),
    [
        (Failure(500), True),
        (Failure(200, b"<html>Sign in</html>", "text/html"), True),
        (Failure(409), False),
        (Failure(403), False),
    ],
)
def test_a_failed_upload_says_whether_it_may_have_been_registered(
    server: Server, failure: Failure, maybe: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the upload was sent, a 5xx or odd answer warns that the add-on may exist now."""
    server.fail["/api/v2/runtimeaddons/custom"] = failure
    status, _, err = cli(["register", str(DOCS), "-w", server.url, "-r", "cml-r"], capsys)
    assert status == 2
    assert ("may have registered it anyway: run 'addon-mount addons'" in err) is maybe


def test_dry_run_prints_curl_without_the_key(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run checks, prints the curl call with the key left in its variable, sends nothing."""
    status, out, _ = cli(["register", str(DOCS), "-w", server.url + "/", "--dry-run"], capsys)
    assert status == 0
    assert out.endswith(
        f"curl --fail-with-body -X POST {server.url}/api/v2/runtimeaddons/custom \\\n"
        '  -H "Authorization: Bearer $CDSW_APIV2_KEY" \\\n'
        f"  -F metadata=@{DOCS}/metadata.json \\\n"
        f"  -F tarball=@{DOCS}/addon.tar.gz\n"
    )
    assert server.received == []


def test_dry_run_with_a_key_file_and_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The curl call reads the key from the same file and trusts the same CA bundle."""
    key_file = tmp_path / "api key"
    key_file.write_text(KEY + "\n")
    args = ["register", str(DOCS), "-w", "https://ml.example.site", "-n"]
    args += ["--api-key-file", str(key_file), "--ca-bundle", "/etc/ca.pem"]
    status, out, _ = cli(args, capsys)
    assert status == 0
    assert f"\"Authorization: Bearer $(cat '{key_file}')\"" in out
    assert "--cacert /etc/ca.pem" in out


def test_register_takes_the_two_files_by_any_name(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--metadata and --archive upload files of any name, under their own file names."""
    meta = tmp_path / "docs.json"
    tar = tmp_path / "docs-1.0.tgz"
    shutil.copy(DOCS / "metadata.json", meta)
    shutil.copy(DOCS / "addon.tar.gz", tar)
    args = ["register", "--metadata", str(meta), "--archive", str(tar), "-w", server.url]
    status, _, err = cli([*args, "-r", "cml-r"], capsys)
    assert status == 0, err
    parts = server.calls("POST")[0].parts()
    assert [(p.name, p.filename) for p in parts] == [
        ("metadata", "docs.json"),
        ("tarball", "docs-1.0.tgz"),
    ]


def test_the_upload_streams_the_tarball(server: Server, tmp_path: Path) -> None:
    """A 64 MiB tarball is sent in chunks: the client never holds more than a few MiB of it."""
    size = 64 << 20
    big = tmp_path / "addon.tar.gz"
    with big.open("wb") as f:
        f.truncate(size)  # sparse: no disk used, and reads give zeros
    meta = tmp_path / "metadata.json"
    meta.write_text('{"name": "big", "spec": {"paths": ["/opt/big"]}}')
    seen: list[int] = []
    gc.collect()
    tracemalloc.start()
    try:
        Workspace(server.url, KEY).register(meta, big, seen.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak:,} bytes"
    [upload] = server.calls("POST")
    assert upload.body_size > size
    assert int(upload.headers["content-length"]) == upload.body_size
    assert seen[-1] == size


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Failure(401), "the workspace refused the API key (HTTP 401): it failed; check"),
        (Failure(403), "the API key may not do this (HTTP 403): it failed"),
        (Failure(404, b"<html>no</html>", "text/html"), "has no such API (HTTP 404); is"),
        (Failure(409), "conflict (HTTP 409): it failed"),
        (Failure(500), "the workspace failed (HTTP 500): it failed; try again later"),
        (Failure(503, b"Service Unavailable", "text/plain"), "failed (HTTP 503); try again"),
        (Failure(400), "the workspace refused (HTTP 400): it failed"),
        (
            Failure(200, b"<html>Sign in</html>", "text/html"),
            "answered HTTP 200 with text/html, not JSON (a login page",
        ),
        (Failure(302, b""), "redirected to '' (HTTP 302)"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v2/runtimeaddons", "/api/v2/runtimeaddons/custom"])
def test_each_failure_is_one_line_and_exit_two(
    server: Server,
    failure: Failure,
    words: str,
    path: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each error status and a non-JSON answer, on listing or on upload, is one clear line."""
    server.fail[path] = failure
    status, _, err = cli(["register", str(DOCS), "-w", server.url, "-r", "cml-r"], capsys)
    assert status == 2
    [line] = err.splitlines()
    assert line.startswith("addon-mount: error: ")
    assert words in line


def test_a_server_that_echoes_the_key_never_gets_it_shown(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error message quoting the Authorization header is shown with the key replaced."""
    body = json.dumps({"error": "denied", "message": f"token Bearer {KEY} is not valid"})
    server.fail["/api/v2/runtimeaddons"] = Failure(401, body.encode())
    status, _, err = cli(["addons", "-w", server.url], capsys)
    assert status == 2
    assert "token Bearer <API key> is not valid" in err


def test_a_wrong_key_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's 401 for another key is one line that names where the key came from."""
    monkeypatch.setenv("CDSW_APIV2_KEY", "wrong-key")
    status, _, err = cli(["addons", "-w", server.url], capsys)
    assert status == 2
    assert err.strip() == (
        "addon-mount: error: listing add-ons: the workspace refused the API key (HTTP 401): "
        "bad key; check CDSW_APIV2_KEY or --api-key-file"
    )
    assert "wrong-key" not in err


def test_a_slow_workspace_times_out(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """No answer within --timeout is one line naming the timeout."""
    server.delay["/api/v2/runtimeaddons"] = 1.5
    status, _, err = cli(["addons", "-w", server.url, "--timeout", "0.3"], capsys)
    assert status == 2
    assert err.strip() == (
        f"addon-mount: error: listing add-ons: {server.url} sent nothing for 0.3 s (--timeout)"
    )


def test_nothing_listening_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace that is not there: cannot connect, exit 2."""
    monkeypatch.setenv("CDSW_APIV2_KEY", KEY)
    with serve() as gone:
        url = gone.url
    status, _, err = cli(["addons", "-w", url], capsys)
    assert status == 2
    assert err.startswith(f"addon-mount: error: listing add-ons: cannot connect to {url}: ")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "no API key: set CDSW_APIV2_KEY (a session has it) or pass --api-key-file FILE"),
        ([], {"CDSW_APIV2_KEY": "two words"}, "$CDSW_APIV2_KEY holds spaces or control"),
        (["--api-key-file", "/nonexistent/key"], {}, "cannot read --api-key-file"),
        (["--api-key", KEY], {}, "No such option"),
    ],
)
def test_the_key_comes_from_the_environment_or_a_file(
    args: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a usable key the command stops before any call; there is no --api-key."""
    monkeypatch.delenv("CDSW_APIV2_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    status, _, err = run_cli(["addons", "-w", "https://ml.example.site", *args], capsys)
    assert status == 2
    assert message in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://ml.example.site", "refusing to send the API key over plain http"),
        ("ml.example.site", "is not a URL like https://"),
        ("https://user:pw@ml.example.site", "must be the workspace's address alone"),
        ("https://ml.example.site:abc", "Port could not be cast"),
        ("https://ml.example.site:70000", "Port out of range"),
        ("https://ml.example.site:0", "port 0"),
        ("https://[::1", "Invalid IPv6 URL"),
        ("https://ml example.site", "not a host name"),
        ("https://ml_1.example.site", "not a host name"),
    ],
)
def test_workspace_urls(url: str, message: str) -> None:
    """Plain http only to this machine, and the URL must be an address alone."""
    with pytest.raises(ApiError, match=message):
        workspace_url(url)


def test_workspace_url_forgives_a_trailing_api_path() -> None:
    """A URL copied with /api/v2/ at its end names the same workspace."""
    assert workspace_url("https://ml.example.site/api/v2/") == "https://ml.example.site"
    assert workspace_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_the_key_is_not_in_the_repr() -> None:
    """A Workspace's repr leaves the key out."""
    assert KEY not in repr(Workspace("https://ml.example.site", KEY))


# -- enable and disable ---------------------------------------------------------------------


def test_disable_by_name_finds_the_suffixed_identifier(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """`disable tool` sets DISABLED on custom-addon-tool-<suffix> with updatestatus."""
    server.addons.append(addon("custom-addon-tool-x7k2p", id=9))
    status, out, _ = cli(["disable", "tool", "-w", server.url], capsys)
    assert status == 0
    [call] = server.calls("POST")
    assert call.path == "/api/v2/runtimeaddons:updatestatus"
    assert json.loads(call.body) == {
        "status": "DISABLED",
        "identifiers": ["custom-addon-tool-x7k2p"],
    }
    assert "custom-addon-tool-x7k2p: AVAILABLE -> DISABLED" in out


def test_enable_an_enabled_addon_sends_nothing(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """An add-on already in the asked status is left alone."""
    status, out, _ = cli(["enable", "spark332-7190-1202-b75-ht9wmb", "-w", server.url], capsys)
    assert status == 0
    assert out == "spark332-7190-1202-b75-ht9wmb: already AVAILABLE\n"
    assert server.calls("POST") == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nothing", "the workspace has no add-on 'nothing'"),
        ("old", None),
    ],
)
def test_enable_names_what_it_cannot_find(
    server: Server, name: str, message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown name is exit 2; a known one is enabled."""
    status, _, err = cli(["enable", name, "-w", server.url], capsys)
    if message is None:
        assert status == 0
        assert server.addons[2]["status"] == "AVAILABLE"
    else:
        assert status == 2
        assert message in err


def test_an_ambiguous_name_asks_for_the_identifier(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two identifiers that may both be the add-on's: ask, change nothing."""
    server.addons += [addon("custom-addon-old-a1b2c", id=8)]
    status, _, err = cli(["disable", "old", "-w", server.url], capsys)
    assert status == 2
    assert "could be any of custom-addon-old-x1y2z, custom-addon-old-a1b2c" in err
    assert server.calls("POST") == []


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An https workspace with a self-signed certificate for 127.0.0.1, and that certificate."""
    needs_tool("openssl", "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
            *("-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("CDSW_APIV2_KEY", KEY)
    from .workspace_server import _handler

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Server()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_and_a_ca_bundle_is_trusted(
    tls_server: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An untrusted certificate is refused with a hint; --ca-bundle makes it trusted."""
    url, cert = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    status, _, err = cli(["addons", "-w", url], capsys)
    assert status == 2
    assert "TLS certificate not trusted" in err
    assert "pass --ca-bundle FILE" in err
    status, out, err = cli(["addons", "-w", url, "--ca-bundle", str(cert)], capsys)
    assert status == 0, err
    assert out.strip() == "IDENTIFIER  COMPONENT  STATUS  DISPLAY NAME  CREATED\n(0 add-ons)"


def test_an_unreadable_ca_bundle_is_one_line(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --ca-bundle that is not a PEM file says so."""
    status, _, err = cli(["addons", "-w", server.url, "--ca-bundle", os.devnull], capsys)
    assert status == 2
    assert "cannot use --ca-bundle '/dev/null'" in err


def test_register_checks_the_workloads_with_clouderas_add_ons(
    bundle: BundleFactory, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle that collides with the Hadoop CLI is not sent, unless that check is narrowed."""
    conf = str(bundle("conf", ["/etc/hadoop/conf"], [("etc/hadoop/conf", "d", 0o755, "")]))
    args = ["register", conf, "-w", server.url, "-r", "cml-r", "--dry-run"]
    status, out, err = cli(args, capsys)
    assert status == 1
    assert "the Hadoop CLI add-on's /etc/hadoop/conf" in out
    assert "nothing was sent" in err
    status, out, _ = cli([*args, "--cloudera-addons", "none"], capsys)
    assert status == 0
    status, _, err = cli([*args, "--cloudera-addons", "hive"], capsys)
    assert status == 2
    assert "no Cloudera add-on is named 'hive'" in err
    assert server.received == []


@pytest.mark.parametrize("command", [["addons"], ["register", str(DOCS), "--dry-run"]])
def test_a_malformed_workspace_url_is_one_line(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A port that is no number is a usage error before anything runs, --dry-run too."""
    status, out, err = cli([*command, "-w", "https://ml.example.site:abc"], capsys)
    assert status == 2
    assert err.startswith("addon-mount: error: --workspace 'https://ml.example.site:abc' is not")
    assert "curl" not in out


def _raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on 127.0.0.1 that reads each request's head and lets *answer* misbehave."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    got = conn.recv(65536)
                    if not got:
                        break
                    head += got
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _trickle(conn: socket.socket) -> None:
    body = b'{"runtime_addons": [], "next_page_token": ""}' + b" " * 100
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body))
    for byte in body:
        try:
            conn.send(bytes([byte]))
        except OSError:
            return
        time.sleep(0.1)


def _bad_gzip(conn: socket.socket) -> None:
    body = b"not gzip at all"
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_trickle, "did not finish its answer within 1 s (--timeout)"),
        (_bad_gzip, "does not decode as its Content-Encoding (gzip) says"),
    ],
)
def test_an_answer_that_trickles_or_does_not_decode_is_one_line(
    answer: Callable[[socket.socket], None],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--timeout bounds the whole answer, not each read; a broken encoding is no traceback."""
    monkeypatch.setenv("CDSW_APIV2_KEY", KEY)
    for url in _raw_server(answer):
        started = time.monotonic()
        status, _, err = run_cli(["addons", "-w", url, "--timeout", "1"], capsys)
        assert status == 2
        assert message in err
        assert err.count("\n") == 1
        assert time.monotonic() - started < 5
