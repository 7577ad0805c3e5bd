"""doctor, owns and explain: reading a workload's add-on state, and what each code means."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from addon_mount import Entry, RuntimeImage
from addon_mount._doctor import diagnose
from addon_mount._doctor_script import addon_of

from .conftest import FIXTURES, cml_entries, run_cli

MOUNT = "/runtime-addons/custom-addon-tool-x7k2p"
CDSW = 8536


def live_root(root: Path) -> Path:
    """A session's root: add-on tool mounted with a suffix, a good link, a dangling one, a loop."""
    for d in ("usr/bin", "etc", "opt", "home/cdsw", "proc", f"{MOUNT[1:]}/opt/tool/bin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / MOUNT[1:] / "opt/tool/bin/run").write_text("#!/bin/sh\n")
    (root / MOUNT[1:] / "opt/tool/bin/run").chmod(0o755)
    (root / "opt/tool").symlink_to(f"{MOUNT}/opt/tool")
    (root / "usr/bin/tool").symlink_to(f"{MOUNT}/usr/bin/tool")
    (root / "usr/bin/loop").symlink_to(f"{MOUNT}/../custom-addon-tool-x7k2p/loop")
    (root / MOUNT[1:] / "loop").symlink_to("/usr/bin/loop")
    return root


def metadata(tmp_path: Path, name: str = "tool", paths: tuple[str, ...] = ("/opt/tool",)) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "spec": {"paths": list(paths)}}))
    return path


def test_doctor_finds_the_dangling_link_and_names_its_addon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a live-style root the dangling link is an AM300 error naming add-on tool."""
    root = live_root(tmp_path / "root")
    meta = metadata(tmp_path, paths=("/opt/tool", "/usr/bin/tool"))
    status, out, _ = run_cli(["doctor", str(root), "--metadata", str(meta)], capsys)
    assert status == 1
    assert "  custom-addon-tool-x7k2p  (add-on tool)" in out
    assert f"  dangling    /usr/bin/tool -> {MOUNT}/usr/bin/tool  (tool)" in out
    assert f"  ok          /opt/tool -> {MOUNT}/opt/tool  (tool)" in out
    assert "  error   AM300  /usr/bin/tool  (tool)" in out
    assert "custom-addon-tool-x7k2p has no 'usr/bin/tool'" in out
    assert "  loop        /usr/bin/loop" in out


def test_the_script_and_the_package_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor.py from --print-script, run with python3 -I -S, reports what `doctor DIR` does."""
    root = live_root(tmp_path / "root")
    meta = metadata(tmp_path, paths=("/opt/tool", "/usr/bin/tool", "/etc/tool"))
    status, script, _ = run_cli(["doctor", "--print-script"], capsys)
    assert status == 0
    doctor_py = tmp_path / "doctor.py"
    doctor_py.write_text(script)
    live = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(doctor_py),
            "--root",
            str(root),
            "--metadata",
            str(meta),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert live.returncode == 1, live.stderr
    status, out, _ = run_cli(["doctor", str(root), "--metadata", str(meta), "-f", "json"], capsys)
    assert status == 1
    ours, theirs = json.loads(out), json.loads(live.stdout)

    def comparable(result: dict[str, object]) -> object:
        links = sorted((x["path"], x["state"], x["addon"]) for x in result["links"])  # type: ignore[attr-defined]
        codes = sorted(
            (p["code"], p["path"])
            for p in result["problems"]
            if p["path"] != "/etc/tool"  # type: ignore[attr-defined]
        )
        return links, codes, result["mounts"], result["not_mounted"]

    assert comparable(ours) == comparable(theirs)
    # /etc is root's 755 here: cdsw (the package's model) may not link there; root may.
    assert [p["code"] for p in ours["problems"] if p["path"] == "/etc/tool"] == ["AM320"]


def test_the_script_runs_on_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """doctor --print-script -o writes a file Python runs isolated; it refuses to overwrite."""
    target = tmp_path / "doctor.py"
    assert run_cli(["doctor", "--print-script", "-o", str(target)], capsys)[0] == 0
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(target), "--root", str(live_root(tmp_path / "r"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Links into /runtime-addons (3):" in done.stdout
    status, _, err = run_cli(["doctor", "--print-script", "-o", str(target)], capsys)
    assert status == 2
    assert "exists; pass --force" in err
    status, _, err = run_cli(["doctor", "--print-script", "/"], capsys)
    assert (status, err) == (
        2,
        "addon-mount: error: --print-script takes no SOURCE, --bundle or --metadata\n",
    )


def image(*extra: Entry) -> RuntimeImage:
    mount = [
        Entry(MOUNT, "d", 0o755),
        Entry(f"{MOUNT}/opt", "d", 0o755),
        Entry(f"{MOUNT}/opt/tool", "d", 0o755),
        Entry(f"{MOUNT}/opt/tool/key.pem", "f", 0o600),
        Entry(f"{MOUNT}/opt/tool/bin", "d", 0o700),
    ]
    return RuntimeImage.from_entries([*cml_entries(), *mount, *extra], name="session")


def test_unreadable_targets_are_cdsw_s_verdict() -> None:
    """A link to a root-only file or directory is AM321: cdsw may not read, list or search it."""
    result = diagnose(
        image(
            Entry("/opt/key.pem", "l", 0o777, CDSW, CDSW, 0, f"{MOUNT}/opt/tool/key.pem"),
            Entry("/opt/bin", "l", 0o777, CDSW, CDSW, 0, f"{MOUNT}/opt/tool/bin"),
        ),
        {"tool": ["/opt/key.pem", "/opt/bin"]},
    )
    assert [(p["code"], p["path"]) for p in result["problems"]] == [
        ("AM321", "/opt/bin"),
        ("AM321", "/opt/key.pem"),
    ]
    assert (
        "may not read the file (owner uid 0, group 0, mode 600)" in result["problems"][1]["message"]
    )
    assert "may not list or search the directory" in result["problems"][0]["message"]


def test_requested_paths_never_linked_and_shadowed() -> None:
    """A requested path the runtime holds is AM301, another add-on AM310; a missing add-on named."""
    other = "/runtime-addons/custom-addon-other"
    result = diagnose(
        image(
            Entry(other, "d", 0o755),
            Entry(f"{other}/opt/tool", "d", 0o755),
            Entry("/opt/tool", "l", 0o777, CDSW, CDSW, 0, f"{other}/opt/tool"),
        ),
        {"tool": ["/opt/tool", "/etc/hosts", "/opt/vendor/x"], "gone": ["/opt/gone"]},
    )
    got = [(p["code"], p["severity"], p["addon"], p["path"]) for p in result["problems"]]
    assert got == [
        ("AM301", "error", "tool", "/etc/hosts"),
        ("AM310", "error", "tool", "/opt/tool"),
        ("AM330", "error", "tool", "/opt/vendor/x"),
        ("AM310", "warning", "tool", "/opt/tool"),
    ] or sorted(got) == sorted(
        [
            ("AM301", "error", "tool", "/etc/hosts"),
            ("AM310", "error", "tool", "/opt/tool"),
            ("AM330", "error", "tool", "/opt/vendor/x"),
            ("AM310", "warning", "tool", "/opt/tool"),
        ]
    )
    assert result["not_mounted"] == ["gone"]


@pytest.mark.parametrize(
    ("mount", "names", "expected"),
    [
        ("custom-addon-tool", ["tool"], "tool"),
        ("custom-addon-tool-x7k2p", ["tool"], "tool"),
        ("custom-addon-tool-extra-x7k2p", ["tool", "tool-extra"], "tool-extra"),
        ("custom-addon-toolbox", ["tool"], None),
        ("spark332-7190-1202-b75-ht9wmb", ["tool"], None),
    ],
)
def test_mount_directories_map_to_addon_names(
    mount: str, names: list[str], expected: str | None
) -> None:
    """A mount directory is custom-addon-<name>, with or without a suffix; the longest name wins."""
    assert addon_of(mount, names) == expected


def test_owns_answers_like_dpkg_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """owns names the add-on and its link, the runtime, or nothing (exit 1)."""
    root = live_root(tmp_path / "root")
    status, out, _ = run_cli(
        ["owns", "/opt/tool/bin/run", "/usr/bin", "/nothing", "--runtime", str(root)], capsys
    )
    assert status == 1
    assert out.splitlines() == [
        "/opt/tool/bin/run: add-on custom-addon-tool-x7k2p, through the link "
        f"/opt/tool -> {MOUNT}/opt/tool",
        f"/usr/bin: the runtime (a directory, owner uid {os.getuid()}, mode 755)",
        "/nothing: nothing (/nothing does not exist)",
    ]


def test_owns_simulates_bundles_and_disabling_one(capsys: pytest.CaptureFixture[str]) -> None:
    """With --bundle the links are simulated; --disable shows the links that would go."""
    docs = str(FIXTURES / "docs-example")
    status, out, _ = run_cli(
        ["owns", "/usr/custom_file", "--bundle", docs, "--disable", "docs-example"], capsys
    )
    assert status == 0
    assert out.splitlines()[0] == (
        "/usr/custom_file: add-on docs-example, through the link /usr/custom_file -> "
        "/runtime-addons/custom-addon-docs-example/usr/custom_file"
    )
    assert (
        "  - /usr/custom_file -> /runtime-addons/custom-addon-docs-example/usr/custom_file"
        "  (link gone)" in out
    )
    assert "  /usr/custom_file: add-on docs-example -> nothing" in out
    status, _, err = run_cli(["owns", "/x", "--disable", "nobody"], capsys)
    assert status == 2
    assert "no add-on 'nobody' is mounted in cml-workbench-python or given with --bundle" in err


def test_doctor_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing snapshot or metadata file is one line, exit 2."""
    status, _, err = run_cli(["doctor", str(tmp_path / "none.snap")], capsys)
    assert status == 2
    assert err.startswith("addon-mount: error: cannot load runtime")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    status, _, err = run_cli(["doctor", str(tmp_path), "--metadata", str(bad)], capsys)
    assert status == 2
    assert "cannot read the metadata of" in err


# -- explain and check --metadata/--archive ---------------------------------------------------


def test_explain_takes_codes_and_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    """Several codes and kinds: each code once, with what a workload shows and what to do now."""
    status, out, _ = run_cli(["explain", "AM300", "collision", "am301"], capsys)
    assert status == 0
    assert [line for line in out.splitlines() if line.startswith("AM")] == [
        "AM300: requested path is not in the archive",
        "AM301: path already exists in the runtime",
        "AM302: a parent of the path is not a directory in the runtime",
    ]
    assert "  workload shows:  The start-up's symlink fails with 'File exists' (EEXIST)" in out
    assert "  once registered: Disable it ('addon-mount disable NAME --workspace URL')" in out


def test_every_code_says_what_a_workload_shows() -> None:
    """Every code, bundle and archive ones too, says what a workload shows and what to do then."""
    from addon_mount._findings import RULES

    missing = [
        code
        for code, rule in RULES.items()
        if not rule.workload_shows or not rule.after_registration
    ]
    assert missing == []


def test_explain_says_a_refused_registration_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bundle problem the API may refuse: nothing registered if it did, the way out if not."""
    status, out, _ = run_cli(["explain", "invalid-name"], capsys)
    assert status == 0
    assert "  workload shows:  Nothing if the API refuses the name" in out
    assert "nothing is registered and no name is taken" in out
    assert "If the workspace registered it anyway ('addon-mount addons --workspace URL'" in out


def test_check_takes_the_two_files_by_any_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check --metadata F --archive F checks files of any name; one without the other is exit 2."""
    meta, tar = tmp_path / "docs.json", tmp_path / "docs-1.0.tgz"
    meta.write_bytes((FIXTURES / "docs-example/metadata.json").read_bytes())
    tar.write_bytes((FIXTURES / "docs-example/addon.tar.gz").read_bytes())
    status, out, _ = run_cli(["check", "--metadata", str(meta), "--archive", str(tar)], capsys)
    assert status == 0
    assert "docs-example (custom-addon-docs-example): PASSED" in out
    status, _, err = run_cli(["check", "--metadata", str(meta)], capsys)
    assert status == 2
    assert "--metadata and --archive go together" in err
    status, _, err = run_cli(
        ["check", "--metadata", str(meta), "--archive", str(tmp_path / "no")], capsys
    )
    assert status == 2
    assert "does not exist" in err


def test_a_suffixed_mount_is_an_addons_only_if_it_holds_its_paths() -> None:
    """custom-addon-tool-extra is tool-extra's, not tool's, when it does not hold /opt/tool."""
    extra = "/runtime-addons/custom-addon-tool-extra"
    suffixed = "/runtime-addons/custom-addon-tool-x7k2p"
    entries = [
        Entry(extra, "d", 0o755),
        Entry(f"{extra}/opt", "d", 0o755),
        Entry(f"{extra}/opt/extra", "d", 0o755),
        Entry("/opt/extra", "l", 0o777, CDSW, CDSW, 0, f"{extra}/opt/extra"),
    ]
    alone = RuntimeImage.from_entries([*cml_entries(), *entries], name="session")
    result = diagnose(alone, {"tool": ["/opt/tool"]})
    assert result["not_mounted"] == ["tool"]
    assert [m["addon"] for m in result["mounts"]] == ["custom-addon-tool-extra"]
    assert [link["addon"] for link in result["links"]] == ["custom-addon-tool-extra"]
    with_suffix = RuntimeImage.from_entries(
        [
            *cml_entries(),
            *entries,
            Entry(suffixed, "d", 0o755),
            Entry(f"{suffixed}/opt", "d", 0o755),
            Entry(f"{suffixed}/opt/tool", "d", 0o755),
            Entry("/opt/tool", "l", 0o777, CDSW, CDSW, 0, f"{suffixed}/opt/tool"),
        ],
        name="session",
    )
    result = diagnose(with_suffix, {"tool": ["/opt/tool"]})
    assert result["not_mounted"] == []
    assert {m["dir"]: m["addon"] for m in result["mounts"]} == {
        "custom-addon-tool-extra": "custom-addon-tool-extra",
        "custom-addon-tool-x7k2p": "tool",
    }
    assert result["problems"] == []


# -- content below linked directories -------------------------------------------------------


def test_content_below_a_linked_directory_is_audited_as_cdsw() -> None:
    """Below a good link: unreadable files and directories, programs cdsw may not run, bin files."""
    result = diagnose(
        image(
            Entry(f"{MOUNT}/opt/tool/run.sh", "f", 0o700, 501, 20),
            Entry(f"{MOUNT}/opt/tool/sbin", "d", 0o755),
            Entry(f"{MOUNT}/opt/tool/sbin/notes", "f", 0o644),
            Entry(f"{MOUNT}/opt/tool/lib", "d", 0o711),
            Entry(f"{MOUNT}/opt/tool/lib/ok.so", "f", 0o644),
            Entry("/opt/tool", "l", 0o777, CDSW, CDSW, 0, f"{MOUNT}/opt/tool"),
        ),
        {"tool": ["/opt/tool"]},
    )
    found = {(p["code"], p["path"], p["severity"]) for p in result["problems"]}
    assert found == {
        ("AM322", "/opt/tool/bin", "error"),  # 700 root's: reported, not entered
        ("AM322", "/opt/tool/key.pem", "error"),
        ("AM322", "/opt/tool/lib", "error"),  # 711: searchable, not listable
        ("AM323", "/opt/tool/run.sh", "error"),
        ("AM324", "/opt/tool/sbin/notes", "warning"),
    }
    messages = {p["path"]: p["message"] for p in result["problems"]}
    assert messages["/opt/tool/lib"] == (
        "/opt/tool/lib (through /opt/tool) is a directory uid 8536 (cdsw) may not list: "
        "owner uid 0, group 0, mode 711"
    )
    assert messages["/opt/tool/run.sh"].endswith("may not run: owner uid 501, group 20, mode 700")
    assert [link["state"] for link in result["links"]] == ["ok"]


def _python_for_cdsw() -> str | None:
    """A Python 3 interpreter uid 8536 may run (the venv's may sit below root's 700 home)."""
    for candidate in (
        os.path.realpath(sys.executable),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ):
        try:
            ran = subprocess.run(
                [candidate, "-I", "-S", "-c", "pass"],
                capture_output=True,
                check=False,
                user=CDSW,
                group=CDSW,
                extra_groups=[],
                cwd="/",
            )
        except OSError:
            continue
        if ran.returncode == 0:
            return candidate
    return None


def _shared_root() -> Path:
    """A live-style root cdsw can reach (tmp_path's parents are root's 700)."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="addon-mount-doctor-"))
    top.chmod(0o755)
    return top


def test_the_script_as_cdsw_agrees_with_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor.py run as uid 8536 on a real tree finds the content problems `doctor DIR` models."""
    import shutil

    from .conftest import needs, needs_root

    needs_root("running doctor.py as uid 8536 over a tree with root's files")
    python = _python_for_cdsw()
    needs(python is not None, "no Python 3 that uid 8536 may run (/usr/bin/python3)")
    assert python is not None
    top = _shared_root()
    try:
        root = live_root(top / "root")
        content = root / MOUNT[1:] / "opt/tool"
        (content / "key.pem").write_text("k")
        (content / "key.pem").chmod(0o600)
        (content / "private").mkdir(mode=0o700)
        (content / "private/x").write_text("x")
        (content / "bin/notes").write_text("n")
        (content / "bin/notes").chmod(0o644)
        (content / "own.sh").write_text("#!/bin/sh\n")
        (content / "own.sh").chmod(0o700)
        os.chown(content / "own.sh", 501, 20)
        for path in (top, *top.rglob("*")):
            if not path.is_symlink() and path.is_dir():
                path.chmod(path.stat().st_mode | 0o755 if path.name != "private" else 0o700)
        meta = metadata(tmp_path)
        meta.chmod(0o644)
        shared_meta = top / "tool.json"
        shared_meta.write_bytes(meta.read_bytes())
        script = top / "doctor.py"
        assert run_cli(["doctor", "--print-script", "-o", str(script)], capsys)[0] == 0
        script.chmod(0o644)
        command = [python, "-I", "-S", str(script), "--root", str(root), "--json"]
        live = subprocess.run(
            [*command, "--metadata", str(shared_meta)],
            capture_output=True,
            text=True,
            check=False,
            user=CDSW,
            group=CDSW,
            extra_groups=[],
            cwd=top,
        )
        assert live.stdout, live.stderr
        status, out, _ = run_cli(
            ["doctor", str(root), "--metadata", str(shared_meta), "-f", "json"], capsys
        )
        assert status == 1
    finally:
        shutil.rmtree(top)

    def content(result: dict[str, object]) -> set[tuple[str, str]]:
        return {
            (p["code"], p["path"])  # type: ignore[index]
            for p in result["problems"]  # type: ignore[attr-defined]
            if p["code"] in ("AM322", "AM323", "AM324")  # type: ignore[index]
        }

    expected = {
        ("AM322", "/opt/tool/key.pem"),
        ("AM322", "/opt/tool/private"),
        ("AM323", "/opt/tool/own.sh"),
        ("AM324", "/opt/tool/bin/notes"),
    }
    assert content(json.loads(live.stdout)) == expected
    assert content(json.loads(out)) == expected


def package_and_script(
    tmp_path: Path, root: Path, meta: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """The JSON results of `doctor ROOT` and of doctor.py run on ROOT with python3 -I -S."""
    _, out, _ = run_cli(["doctor", str(root), "--metadata", str(meta), "-f", "json"], capsys)
    _, script, _ = run_cli(["doctor", "--print-script"], capsys)
    (tmp_path / "doctor.py").write_text(script)
    args = ["--root", str(root), "--metadata", str(meta), "--json"]
    live = subprocess.run(
        [sys.executable, "-I", "-S", str(tmp_path / "doctor.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return [json.loads(out), json.loads(live.stdout)]


def test_a_path_requested_through_a_symlinked_parent_is_the_addons_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/bin/tool with /bin -> usr/bin is linked at /usr/bin/tool: ok, in the script too."""
    root = live_root(tmp_path / "root")
    (root / MOUNT[1:] / "bin").mkdir()
    (root / MOUNT[1:] / "bin/bt").write_text("#!/bin/sh\n")
    (root / MOUNT[1:] / "bin/bt").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin/bt").symlink_to(f"{MOUNT}/bin/bt")
    meta = metadata(tmp_path, paths=("/opt/tool", "/bin/bt"))
    for result in package_and_script(tmp_path, root, meta, capsys):
        assert ("/usr/bin/bt", "ok", "tool") in {
            (x["path"], x["state"], x["addon"]) for x in result["links"]
        }
        # The live root's other links dangle or loop; nothing is said of /bin/bt.
        assert [p for p in result["problems"] if p["path"] == "/bin/bt"] == []
        assert {p["path"] for p in result["problems"]} == {"/usr/bin/tool", "/usr/bin/loop"}


def test_print_script_to_standard_output_with_a_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """'doctor --print-script -o -' prints the script, as without -o; no file named '-'."""
    monkeypatch.chdir(tmp_path)
    status, plain, _ = run_cli(["doctor", "--print-script"], capsys)
    assert status == 0
    status, dashed, _ = run_cli(["doctor", "--print-script", "-o", "-"], capsys)
    assert (status, dashed) == (0, plain)
    assert list(tmp_path.iterdir()) == []


def test_a_stray_file_in_runtime_addons_is_no_mount(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only directories under /runtime-addons are mounts, in the package and the script."""
    root = live_root(tmp_path / "root")
    (root / "runtime-addons/custom-addon-file").write_text("")
    meta = metadata(tmp_path)
    for result in package_and_script(tmp_path, root, meta, capsys):
        shown = json.dumps(result["mounts"]) + json.dumps(result["not_mounted"])
        assert "custom-addon-file" not in shown


def test_owns_names_clouderas_add_ons_in_the_workloads_that_attach_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/opt/spark is nobody's in the runtime alone, Spark 3's where a session attaches it."""
    status, out, _ = run_cli(["owns", "/opt/spark", "/usr/bin/env"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "/opt/spark: nothing (/opt/spark does not exist)"
    assert lines[1].startswith(
        "  in workloads that attach the Spark 3 add-on: the Spark 3 add-on, through the link "
        "/opt/spark -> /runtime-addons/spark"
    )
    assert lines[2].startswith("/usr/bin/env: the runtime")
    status, out, _ = run_cli(["owns", "/opt/spark", "--cloudera-addons", "none"], capsys)
    assert (status, out) == (1, "/opt/spark: nothing (/opt/spark does not exist)\n")
