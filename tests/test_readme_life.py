"""The README's examples of pack, register, addons, disable, doctor and owns, run as written.

Each ``<!-- life: NAME -->`` block is a console session: every ``$ addon-mount
...`` line is run in a directory prepared for NAME, and what it prints must
be the lines below it. ``ADDON_MOUNT_UPDATE_README=1`` writes the output
back instead (then review the diff).
"""

from __future__ import annotations

import os
import re
import shlex
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from addon_mount import Entry, RuntimeImage
from addon_mount._capture import write_snapshot
from addon_mount._runtime_sources import load_builtin

from .conftest import REPO, needs_root, run_cli
from .workspace_server import KEY, addon, serve
from .workspace_server import Workspace as Server

README = REPO / "README.md"
BLOCK = re.compile(r"<!-- life: (?P<name>[\w-]+) -->\n```console\n(?P<body>.*?)```\n", re.S)
WORKSPACE = "https://ml-1a2b3c4d.example.cloudera.site"
CDSW = 8536


def blocks() -> list[tuple[str, str]]:
    return [(m["name"], m["body"]) for m in BLOCK.finditer(README.read_text())]


def stage(root: Path) -> None:
    """The staging tree of the README: a tool with a private config and macOS litter."""
    (root / "stage/opt/tool/bin").mkdir(parents=True)
    (root / "stage/usr/bin").mkdir(parents=True)
    run = root / "stage/opt/tool/bin/run"
    run.write_text("#!/bin/sh\necho tool\n")
    conf = root / "stage/opt/tool/tool.conf"
    conf.write_text("level = 3\n")
    (root / "stage/opt/tool/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "stage/opt/tool/bin/._run").write_bytes(b"\0\5\26\7")
    (root / "stage/usr/bin/tool").symlink_to("../../opt/tool/bin/run")
    for path in (root / "stage").rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    run.chmod(0o700)
    conf.chmod(0o600)
    for path in [root / "stage", *(root / "stage").rglob("*")]:
        os.lchown(path, 1000, 1000)


def session_snapshot(root: Path) -> None:
    """runtime.snap: the default runtime in a session where add-on tool is mounted and linked."""
    mount = "/runtime-addons/custom-addon-tool-x7k2p"
    base = load_builtin("cml-workbench-python")
    extra = [
        Entry("/runtime-addons", "d", 0o755),
        Entry(mount, "d", 0o755),
        Entry(f"{mount}/opt", "d", 0o755),
        Entry(f"{mount}/opt/tool", "d", 0o755),
        Entry(f"{mount}/opt/tool/bin", "d", 0o755),
        Entry(f"{mount}/opt/tool/bin/run", "f", 0o755, size=20),
        Entry(f"{mount}/opt/tool/tool.conf", "f", 0o644, size=10),  # as pack made it
        Entry("/opt/tool", "l", 0o777, CDSW, CDSW, 0, f"{mount}/opt/tool"),
        Entry("/usr/bin/tool", "l", 0o777, CDSW, CDSW, 0, f"{mount}/usr/bin/tool"),
        Entry("/usr/local/bin/tool-run", "l", 0o777, 0, 0, 0, "/opt/tool/bin/run"),
    ]
    image = RuntimeImage.from_entries([*base, *extra], name="session")
    (root / "metadata.json").write_text(
        '{"name": "tool", "spec": {"paths": ["/opt/tool", "/usr/bin/tool"]}}\n'
    )
    rows = ((e.path, e.type, e.mode, e.uid, e.gid, e.size, e.target) for e in image)
    write_snapshot(str(root / "runtime.snap"), rows, {"name": "session"})
    image.close()


SETUPS: dict[str, Callable[[Path], None]] = {
    "pack": stage,
    "register": stage,
    "doctor": session_snapshot,
    "owns": session_snapshot,
}


@pytest.fixture
def workspace_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The add-ons the README's workspace has."""
    monkeypatch.setenv("CDSW_APIV2_KEY", KEY)
    state = Server(
        addons=[
            addon(
                "spark332-7190-1202-b75-ht9wmb", component="Spark", display_name="Spark 3.3.2", id=1
            ),
            addon(
                "custom-addon-tool-x7k2p",
                display_name="tool",
                created_at="2025-03-02T09:41:07Z",
                id=7,
            ),
        ]
    )
    with serve(state) as running:
        yield running


def run_block(body: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run each command of a console block; the commands and what they printed."""
    shown: list[str] = []
    for line in body.splitlines():
        if not line.startswith("$ "):
            continue
        command = line[2:]
        args = shlex.split(os.path.expandvars(command))
        assert args[0] == "addon-mount", line
        _, out, err = run_cli(args[1:], capsys)
        shown.append(f"$ {command}\n{out}{err}")
    return "".join(shown)


@pytest.mark.parametrize(("name", "body"), blocks(), ids=[n for n, _ in blocks()])
def test_readme_example(
    name: str,
    body: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """The README's example prints exactly what the README shows."""
    needs_root("setting the staging tree's owner 1000")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1735689600")
    monkeypatch.setenv("WORKSPACE", WORKSPACE)
    monkeypatch.delenv("CDSW_APIV2_KEY", raising=False)
    if name in ("addons",):
        server = request.getfixturevalue("workspace_server")
        monkeypatch.setenv("WORKSPACE", server.url)
    setup = SETUPS.get(name)
    if setup is not None:
        setup(tmp_path)
    if name == "register":
        run_cli(["pack", "stage", "--name", "tool", "-o", "build/tool"], capsys)
    got = run_block(body, capsys)
    if os.environ.get("ADDON_MOUNT_UPDATE_README"):
        text = README.read_text()
        README.write_text(
            text.replace(
                f"<!-- life: {name} -->\n```console\n{body}```",
                f"<!-- life: {name} -->\n```console\n{got}```",
                1,
            )
        )
        return
    assert got == body


def test_every_life_command_has_an_example() -> None:
    """pack, register, addons, doctor and owns each have a README example that runs."""
    assert {n for n, _ in blocks()} >= {"pack", "register", "addons", "doctor", "owns"}


def test_tarball_example_is_reproducible(tmp_path: Path) -> None:
    """Packing the README's staging tree twice gives the same bytes (a guard for the example)."""
    needs_root("setting the staging tree's owner 1000")
    stage(tmp_path)
    from addon_mount._pack import pack

    first = pack(tmp_path / "stage", tmp_path / "a", name="tool", environ={})
    second = pack(tmp_path / "stage", tmp_path / "b", name="tool", environ={})
    assert first.archive.read_bytes() == second.archive.read_bytes()
    with tarfile.open(first.archive) as tar:
        assert tar.getnames()[0] == "opt"
