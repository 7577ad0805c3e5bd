"""The real kernel is the oracle: start-up verdicts of the model against Linux's.

Each scenario is written as a real root tree and a bundle. The model checks it
(``addon_mount.check(bundle, runtime=root)``); then the kernel replays the
start-up in that tree, chrooted, as cdsw, with the add-on bind-mounted
read-only (see ``tests/oracle/kernel.py``). Per requested path, the model's
codes and link must be what the kernel's outcome maps to
(``tests/oracle/verdicts.py``), and so must its audit of what the link
reaches (AM322, AM323, AM324 per entry, the model's aggregated findings
expanded to their paths). Handwritten scenarios pin the cases that
matter; seeded random ones look for the rest (``make oracle`` runs 3000).
Needs root, mount namespaces and a settable fs.protected_symlinks: skipped
without them, failed under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import addon_mount
from tests.oracle import kernel
from tests.oracle.scenario import (
    CDSW,
    Layout,
    Node,
    Scenario,
    common,
    d,
    f,
    generate,
    hl,
    ln,
    reductions,
    scenario,
    write,
)
from tests.oracle.verdicts import (
    Disagreement,
    ModelVerdict,
    Outcome,
    model_verdicts,
    report_disagreements,
    smallest,
    summarize,
)

REPO = Path(__file__).resolve().parent.parent
BATCH = 100
SEED_BASE = 0
# Every one of these kernel outcomes shows up in a few hundred random scenarios.
MAIN_CLASSES = (
    "clean",
    "AM300",
    "AM301",
    "AM302",
    "AM303",
    "AM304",
    "AM320",
    "AM321",
    "AM330",
    "AM310",
    "AM322",
    "AM323",
    "AM324",
)


def crash_summary(exc: BaseException) -> str:
    """'Type: message at file:line in function' (the model's innermost frame), then the trace."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "addon_mount" in f.filename]
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno} in {last.name}"
    return f"{type(exc).__name__}: {exc}{where}\n" + "".join(traceback.format_exception(exc))


def unavailable(reason: str) -> None:
    """Skip the oracle, saying why; under CI=true fail instead (CI must run it)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"kernel oracle unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class _Prepared:
    scenario: Scenario
    layout: Layout
    model: dict[str, ModelVerdict] | None
    crash: str


_Pending = tuple[tempfile.TemporaryDirectory[str], list[_Prepared], subprocess.Popen[bytes]]


class Oracle:
    """Runs scenarios on both sides: the model first, then the kernel, batch by batch."""

    def run(self, scenarios: Sequence[Scenario]) -> list[Outcome]:
        """Outcomes of *scenarios*; the model checks batch k while the kernel replays k-1."""
        outcomes: list[Outcome] = []
        temps: list[tempfile.TemporaryDirectory[str]] = []
        processes: list[subprocess.Popen[bytes]] = []
        pending: _Pending | None = None
        try:
            for start in range(0, len(scenarios), BATCH):
                temp = tempfile.TemporaryDirectory(prefix="addon-mount-oracle-")
                temps.append(temp)
                prepared = [
                    self._prepare(scn, Path(temp.name) / f"s{i}")
                    for i, scn in enumerate(scenarios[start : start + BATCH])
                ]
                if pending is not None:
                    outcomes += self._collect(*pending)
                processes.append(self._start(Path(temp.name), prepared))
                pending = (temp, prepared, processes[-1])
            if pending is not None:
                outcomes += self._collect(*pending)
        finally:
            # After a failure: stop any replay still running, remove every tree.
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            for temp in temps:
                temp.cleanup()
        return outcomes

    def shrink(self, found: Disagreement, deadline: float) -> Disagreement:
        """A smallest scenario (greedily) that still disagrees on the same path in the same way."""
        current = found
        while time.monotonic() < deadline:
            candidates = reductions(current.scenario, found.path)
            kept = [
                d
                for outcome in self.run(candidates)
                if (d := outcome.disagreement(found.path)) is not None and d.key == found.key
            ]
            if not kept:
                break
            if len(kept) > 1:
                (outcome,) = self.run([common(current.scenario, [d.scenario for d in kept])])
                both = outcome.disagreement(found.path)
                if both is not None and both.key == found.key:
                    current = both
                    continue
            current = kept[0]
        return current

    def one(self, scn: Scenario) -> Outcome:
        """The outcome of one scenario."""
        (outcome,) = self.run([scn])
        return outcome

    @staticmethod
    def _prepare(scn: Scenario, base: Path) -> _Prepared:
        base.mkdir()
        layout = write(scn, base)
        try:
            report = addon_mount.check([layout.bundle], runtime=layout.root, cloudera_addons="none")
        except Exception as exc:  # noqa: BLE001 - a crash is a disagreement to report
            return _Prepared(scn, layout, None, crash_summary(exc))
        return _Prepared(scn, layout, model_verdicts(report, scn.paths), "")

    @staticmethod
    def _start(temp: Path, prepared: list[_Prepared]) -> subprocess.Popen[bytes]:
        batch = temp / "batch.json"
        items = [
            {
                "id": i,
                "root": str(p.layout.root),
                "scratch": str(p.layout.scratch),
                "archive": str(p.layout.archive),
                "paths": list(p.scenario.paths),
            }
            for i, p in enumerate(prepared)
        ]
        batch.write_text(json.dumps({"scenarios": items}))
        return subprocess.Popen(
            kernel.command(batch), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    @staticmethod
    def _collect(
        temp: tempfile.TemporaryDirectory[str],
        prepared: list[_Prepared],
        process: subprocess.Popen[bytes],
    ) -> list[Outcome]:
        out, err = process.communicate(timeout=600)
        temp.cleanup()
        assert not Path(temp.name).exists(), f"{temp.name} was not removed"
        if process.returncode != 0:
            pytest.fail(f"kernel replay failed ({process.returncode}): {err.decode()}")
        results = json.loads(out)
        outcomes = []
        for p, result in zip(prepared, results, strict=True):
            if "error" in result:
                pytest.fail(f"kernel replay error: {result['error']}\n{p.scenario.describe()}")
            records = {r["path"]: r for r in result["records"]}
            outcome = Outcome(p.scenario, records, p.model, p.crash)
            outcome.compare()
            outcomes.append(outcome)
        return outcomes


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    """The oracle, with fs.protected_symlinks=1 while the module runs (restored after)."""
    reason = kernel.unavailable()
    if reason is not None:
        unavailable(reason)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(kernel.protected_symlinks())
        except OSError as exc:
            unavailable(f"cannot set /proc/sys/fs/protected_symlinks to 1: {exc}")
        yield Oracle()


def agrees(outcome: Outcome) -> None:
    """Fail with the whole story when the model and the kernel disagree on any path."""
    if outcome.disagreements:
        pytest.fail("the model disagrees with the kernel:\n\n" + outcome.explain())


# -- handwritten scenarios ------------------------------------------------------------

ROOT = d("/", 0o755, CDSW)
OPT = d("/opt", 0o755, CDSW)
TOOL_FILE = f("opt/tool", 0o644)


def test_symlink_in_private_directory_is_not_followed(oracle: Oracle) -> None:
    """A link below root's 700 directory cannot be traversed even to a cdsw directory: EACCES."""
    scn = scenario(
        [
            ROOT,
            OPT,
            d("/opt/priv", 0o700),
            ln("/opt/priv/ln", "/opt/pub"),
            d("/opt/pub", 0o755, CDSW),
        ],
        [f("opt/priv/ln/tool")],
        ["/opt/priv/ln/tool"],
        "private-dir-link",
    )
    outcome = oracle.one(scn)
    assert outcome.records["/opt/priv/ln/tool"]["symlink"] == "EACCES"
    agrees(outcome)


@pytest.mark.parametrize("private", ["opt", ""], ids=["opt", "archive-root"])
def test_archive_directory_private_to_root(oracle: Oracle, private: str) -> None:
    """The link is created, but a root 700 directory above the member makes stat fail: EACCES."""
    members = [d(private, 0o700), TOOL_FILE]
    scn = scenario([ROOT, OPT], members, ["/opt/tool"], "archive-dir-700")
    outcome = oracle.one(scn)
    record = outcome.records["/opt/tool"]
    assert (record["symlink"], record["stat"]) == ("ok", "EACCES")
    agrees(outcome)


def test_mode_711_directory_is_traversed(oracle: Oracle) -> None:
    """Search permission alone (root's 711) lets cdsw link in its own directory below it."""
    scn = scenario(
        [ROOT, OPT, d("/opt/x711", 0o711), d("/opt/x711/sub", 0o755, CDSW)],
        [f("opt/x711/sub/tool")],
        ["/opt/x711/sub/tool"],
        "711-traversal",
    )
    outcome = oracle.one(scn)
    record = outcome.records["/opt/x711/sub/tool"]
    assert (record["symlink"], record["stat"], record["open"]) == ("ok", "ok", "ok")
    agrees(outcome)


@pytest.mark.parametrize(
    "links",
    [
        pytest.param([ln("/opt/a", "b"), ln("/opt/b", "a")], id="a-b-a"),
        pytest.param([ln("/opt/a", "a")], id="self"),
        pytest.param([ln("/opt/a", "/opt/b"), ln("/opt/b", "../opt/a")], id="absolute-relative"),
    ],
)
def test_parent_is_a_symlink_loop(oracle: Oracle, links: list[Node]) -> None:
    """A parent that is a symlink loop makes symlink fail with ELOOP."""
    scn = scenario([ROOT, OPT, *links], [f("opt/a/tool")], ["/opt/a/tool"], "parent-loop")
    outcome = oracle.one(scn)
    assert outcome.records["/opt/a/tool"]["symlink"] == "ELOOP"
    agrees(outcome)


@pytest.mark.parametrize(
    ("target", "path", "makedirs"),
    [
        ("/opt/nowhere", "/opt/gone/tool", "EEXIST"),
        ("missing/deeper", "/opt/gone/tool", "EEXIST"),
        # makedirs swallows the EEXIST of /opt/gone, then mkdir below it says ENOENT.
        ("/opt/nowhere", "/opt/gone/sub/tool", "ENOENT"),
    ],
)
def test_parent_is_a_dangling_symlink(
    oracle: Oracle, target: str, path: str, makedirs: str
) -> None:
    """A dangling parent symlink gives ENOENT, then makedirs fails (EEXIST or ENOENT)."""
    scn = scenario([ROOT, OPT, ln("/opt/gone", target)], [f(path[1:])], [path], "parent-dangling")
    outcome = oracle.one(scn)
    record = outcome.records[path]
    assert (record["symlink"], record["makedirs"]) == ("ENOENT", makedirs)
    agrees(outcome)


def test_path_is_a_dangling_symlink(oracle: Oracle) -> None:
    """A dangling symlink at the path itself is still an entry: symlink fails with EEXIST."""
    scn = scenario(
        [ROOT, OPT, ln("/opt/tool", "/nowhere")], [TOOL_FILE], ["/opt/tool"], "dangling-path"
    )
    outcome = oracle.one(scn)
    assert outcome.records["/opt/tool"]["symlink"] == "EEXIST"
    agrees(outcome)


@pytest.mark.parametrize(
    ("mode", "result"),
    [
        pytest.param(0o755, "EEXIST", id="searchable-not-writable"),
        pytest.param(0o750, "EACCES", id="not-searchable"),
    ],
)
def test_existing_path_in_root_directory(oracle: Oracle, mode: int, result: str) -> None:
    """An existing path collides (EEXIST) only where cdsw may search its directory, else EACCES."""
    scn = scenario(
        [ROOT, d("/var", mode), f("/var/tool")], [f("var/tool")], ["/var/tool"], "existing"
    )
    outcome = oracle.one(scn)
    assert outcome.records["/var/tool"]["symlink"] == result
    agrees(outcome)


@pytest.mark.parametrize(
    ("tmp_owner", "link_owner"),
    [
        pytest.param(0, 1000, id="other-users-link"),
        pytest.param(1000, 0, id="root-link-in-users-dir"),
        pytest.param(0, CDSW, id="cdsws-own-link"),
    ],
)
def test_sticky_directory_link_walked_through(
    oracle: Oracle, tmp_owner: int, link_owner: int
) -> None:
    """protected_symlinks guards only a path's last component: a link walked through is followed."""
    scn = scenario(
        [
            ROOT,
            d("/data", 0o1777, tmp_owner),
            ln("/data/ln", "/opt/pub", link_owner),
            OPT,
            d("/opt/pub", 0o755, CDSW),
        ],
        [f("data/ln/tool"), f("data/ln/new/tool")],
        ["/data/ln/tool", "/data/ln/new/tool"],
        "protected-symlinks",
    )
    outcome = oracle.one(scn)
    assert outcome.records["/data/ln/tool"]["symlink"] == "ok"
    # makedirs's stat of /data/ln itself is refused (EACCES) for another user's link, so it
    # tries mkdir /data/ln (EEXIST, swallowed by makedirs) and then /data/ln/new, which works.
    new = outcome.records["/data/ln/new/tool"]
    assert (new["symlink"], new["makedirs"], new["symlink2"]) == ("ENOENT", "ok", "ok")
    assert list(new["created"]) == ["/data/ln/new"]
    agrees(outcome)


def test_sticky_archive_directory_protects_member_symlink(oracle: Oracle) -> None:
    """Another user's member symlink in a sticky 1777 archive dir is not followed: stat EACCES."""
    scn = scenario(
        [ROOT, OPT],
        [d("opt", 0o1777), ln("opt/tool", "tool.real", 1000), f("opt/tool.real")],
        ["/opt/tool"],
        "sticky-archive",
    )
    outcome = oracle.one(scn)
    record = outcome.records["/opt/tool"]
    assert (record["symlink"], record["stat"]) == ("ok", "EACCES")
    agrees(outcome)


def test_setgid_directory_group_writable(oracle: Oracle) -> None:
    """cdsw links through group write on a setgid dir; dirs it creates there inherit setgid."""
    scn = scenario(
        [ROOT, d("/srv", 0o755), d("/srv/shared", 0o2775, 0, CDSW)],
        [f("srv/shared/tool"), f("srv/shared/new/tool")],
        ["/srv/shared/tool", "/srv/shared/new/tool"],
        "setgid-dir",
    )
    outcome = oracle.one(scn)
    assert outcome.records["/srv/shared/tool"]["symlink"] == "ok"
    created = outcome.records["/srv/shared/new/tool"]["created"]
    assert created == {"/srv/shared/new": f"d 2755 {CDSW}:{CDSW}"}
    agrees(outcome)


@pytest.mark.parametrize(
    ("group", "result"),
    [
        pytest.param(CDSW, "EACCES", id="group-class-denies"),
        pytest.param(0, "ok", id="other-class-allows"),
    ],
)
def test_group_class_wins_over_other(oracle: Oracle, group: int, result: str) -> None:
    """Mode 703: cdsw in the directory's group gets the group bits (none), not the others' bits."""
    scn = scenario(
        [ROOT, d("/srv", 0o703, 0, group)], [f("srv/tool")], ["/srv/tool"], "group-class"
    )
    outcome = oracle.one(scn)
    assert outcome.records["/srv/tool"]["symlink"] == result
    agrees(outcome)


@pytest.mark.parametrize("owner", [0, CDSW])
def test_mode_000_file_in_archive(oracle: Oracle, owner: int) -> None:
    """A mode 000 archive file links and stats, but open fails with EACCES, whoever owns it."""
    scn = scenario([ROOT, OPT], [f("opt/tool", 0o000, owner)], ["/opt/tool"], "file-000")
    outcome = oracle.one(scn)
    record = outcome.records["/opt/tool"]
    assert (record["stat"], record["open"]) == ("ok", "EACCES")
    agrees(outcome)


def test_dir_700_owned_by_501_in_archive(oracle: Oracle) -> None:
    """A 700 directory a macOS builder (uid 501) owns can be neither listed nor searched by cdsw."""
    scn = scenario(
        [ROOT, OPT], [d("opt/tool", 0o700, 501, 20), f("opt/tool/run")], ["/opt/tool"], "dir-501"
    )
    outcome = oracle.one(scn)
    record = outcome.records["/opt/tool"]
    assert (record["stat"], record["listdir"], record["search"]) == ("ok", "EACCES", "EACCES")
    agrees(outcome)


def test_relative_symlink_with_dotdot_in_runtime(oracle: Oracle) -> None:
    """/usr/lib64 -> ../usr/lib/x resolves in the runtime; links and new parents land there."""
    scn = scenario(
        [
            ROOT,
            d("/usr", 0o755, CDSW),
            d("/usr/lib", 0o755, CDSW),
            d("/usr/lib/x", 0o755, CDSW),
            ln("/usr/lib64", "../usr/lib/x"),
        ],
        [f("usr/lib64/tool"), f("usr/lib64/new/tool")],
        ["/usr/lib64/tool", "/usr/lib64/new/tool"],
        "dotdot-link",
    )
    outcome = oracle.one(scn)
    assert outcome.records["/usr/lib64/tool"]["symlink"] == "ok"
    assert outcome.records["/usr/lib64/new/tool"]["symlink2"] == "ok"
    agrees(outcome)


def test_missing_parents_under_cdsw_opt(oracle: Oracle) -> None:
    """Two missing levels under cdsw's /opt: ENOENT, makedirs makes both (755), then links."""
    scn = scenario([ROOT, OPT], [f("opt/vendor/pkg/tool")], ["/opt/vendor/pkg/tool"], "mkdir-p")
    outcome = oracle.one(scn)
    record = outcome.records["/opt/vendor/pkg/tool"]
    assert (record["symlink"], record["makedirs"], record["symlink2"]) == ("ENOENT", "ok", "ok")
    assert record["created"] == {
        "/opt/vendor": f"d 0755 {CDSW}:{CDSW}",
        "/opt/vendor/pkg": f"d 0755 {CDSW}:{CDSW}",
    }
    agrees(outcome)


def test_missing_parent_under_root_directory(oracle: Oracle) -> None:
    """A missing parent under root's 755 /var: ENOENT, then makedirs fails with EACCES."""
    scn = scenario([ROOT, d("/var", 0o755)], [f("var/lib/tool")], ["/var/lib/tool"], "mkdir-denied")
    outcome = oracle.one(scn)
    record = outcome.records["/var/lib/tool"]
    assert (record["symlink"], record["makedirs"]) == ("ENOENT", "EACCES")
    agrees(outcome)


def test_parent_is_a_file(oracle: Oracle) -> None:
    """A regular file as a parent makes symlink fail with ENOTDIR."""
    scn = scenario(
        [ROOT, OPT, f("/opt/conf")], [f("opt/conf/tool")], ["/opt/conf/tool"], "file-parent"
    )
    outcome = oracle.one(scn)
    assert outcome.records["/opt/conf/tool"]["symlink"] == "ENOTDIR"
    agrees(outcome)


def test_runtime_link_into_the_read_only_mount(oracle: Oracle) -> None:
    """A parent linked into the add-on's own read-only mount: symlink fails with EROFS."""
    scn = scenario(
        [ROOT, OPT, ln("/opt/into", "/runtime-addons/custom-addon-tool")],
        [f("opt/into/tool")],
        ["/opt/into/tool"],
        "into-mount",
    )
    outcome = oracle.one(scn)
    assert outcome.records["/opt/into/tool"]["symlink"] == "EROFS"
    agrees(outcome)


# -- the audit of what a link reaches -------------------------------------------------


def audited(outcome: Outcome, path: str) -> dict[str, frozenset[str]]:
    """Each entry the kernel audited through the link at *path*, with its expected codes."""
    expected = outcome.kernel(path)
    return {e["path"]: expected.at(e["path"]) for e in outcome.records[path].get("audit", ())}


def test_unsearchable_directory_hides_its_subtree(oracle: Oracle) -> None:
    """Root's 700 directory below the link: AM322 there, nothing below it."""
    scn = scenario(
        [ROOT, OPT],
        [
            d("opt/tool"),
            d("opt/tool/priv", 0o700),
            f("opt/tool/priv/secret", 0o600),
            d("opt/tool/priv/sub", 0o000),
            f("opt/tool/run", 0o644),
        ],
        ["/opt/tool"],
        "audit-hidden-subtree",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {
        "/opt/tool/priv": frozenset({"AM322"}),
        "/opt/tool/run": frozenset(),
    }
    agrees(outcome)


def test_symlinks_below_the_link_are_followed_as_cdsw(oracle: Oracle) -> None:
    """A symlink leading out of the linked directory through, or to, root's 700 directory, or to a
    600 file, is AM322; one to a readable file, or inside the directory, is nothing."""
    scn = scenario(
        [ROOT, OPT],
        [
            d("opt/tool"),
            d("opt/priv", 0o700),
            f("opt/priv/secret", 0o644),
            d("opt/pub"),
            f("opt/pub/key", 0o600),
            f("opt/pub/ok", 0o644),
            f("opt/tool/here", 0o600),
            ln("opt/tool/hidden", "../priv/secret"),
            ln("opt/tool/unreadable", "../pub/key"),
            ln("opt/tool/readable", "../pub/ok"),
            ln("opt/tool/inside", "here"),
            d("opt/pub/closed", 0o700),
            ln("opt/tool/lib", "../pub/closed"),
            ln("opt/tool/share", "../pub"),
        ],
        ["/opt/tool"],
        "audit-symlinks",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {
        "/opt/tool/here": frozenset({"AM322"}),
        "/opt/tool/hidden": frozenset({"AM322"}),
        "/opt/tool/unreadable": frozenset({"AM322"}),
        "/opt/tool/readable": frozenset(),
        "/opt/tool/inside": frozenset(),
        "/opt/tool/lib": frozenset({"AM322"}),
        "/opt/tool/share": frozenset(),
    }
    agrees(outcome)


def test_unsearchable_sibling_sorting_inside_a_hidden_subtree(oracle: Oracle) -> None:
    """'priv.d' sorts between 'priv' and 'priv/secret' ('.' < '/'): both 700 directories
    are AM322, and what is below 'priv' stays hidden all the same."""
    scn = scenario(
        [ROOT, OPT],
        [
            d("opt/tool"),
            d("opt/tool/priv", 0o700),
            f("opt/tool/priv/secret", 0o600),
            d("opt/tool/priv.d", 0o700),
        ],
        ["/opt/tool"],
        "audit-hidden-subtree-sibling",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {
        "/opt/tool/priv": frozenset({"AM322"}),
        "/opt/tool/priv.d": frozenset({"AM322"}),
    }
    agrees(outcome)


def test_mode_711_directory_with_readable_file(oracle: Oracle) -> None:
    """Root's 711 directory: cdsw may not list it (AM322) but reaches and reads the file in it."""
    scn = scenario(
        [ROOT, OPT],
        [d("opt/tool"), d("opt/tool/x711", 0o711), f("opt/tool/x711/conf", 0o644)],
        ["/opt/tool"],
        "audit-711",
    )
    outcome = oracle.one(scn)
    entries = {e["path"]: e for e in outcome.records["/opt/tool"]["audit"]}
    assert (entries["/opt/tool/x711"]["read"], entries["/opt/tool/x711"]["search"]) == (
        "EACCES",
        "ok",
    )
    assert entries["/opt/tool/x711/conf"]["open"] == "ok"
    assert audited(outcome, "/opt/tool") == {
        "/opt/tool/x711": frozenset({"AM322"}),
        "/opt/tool/x711/conf": frozenset(),
    }
    agrees(outcome)


def test_hard_link_to_private_program(oracle: Oracle) -> None:
    """A hard link is the file it names: root's 700 program is AM323 under both names."""
    program = f("opt/tool/bin/run", 0o700)
    scn = scenario(
        [ROOT, OPT],
        [d("opt/tool"), program, hl("opt/tool/lib/run", program)],
        ["/opt/tool"],
        "audit-hard-link",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {
        "/opt/tool/bin": frozenset(),
        "/opt/tool/bin/run": frozenset({"AM323"}),
        "/opt/tool/lib": frozenset(),
        "/opt/tool/lib/run": frozenset({"AM323"}),
    }
    agrees(outcome)


@pytest.mark.parametrize(
    ("uid", "codes"),
    [
        pytest.param(0, set(), id="group-class-runs"),
        pytest.param(CDSW, {"AM323"}, id="owner-class-denies"),
    ],
)
def test_group_only_program(oracle: Oracle, uid: int, codes: set[str]) -> None:
    """Mode 070, group 8536: cdsw runs it by the group bits, unless it owns it (owner bits 0)."""
    scn = scenario(
        [ROOT, OPT],
        [d("opt/tool"), f("opt/tool/run", 0o070, uid, CDSW)],
        ["/opt/tool"],
        "audit-070",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {"/opt/tool/run": frozenset(codes)}
    agrees(outcome)


@pytest.mark.parametrize("directory", ["bin", "sbin"])
def test_file_in_bin_without_x_bit(oracle: Oracle, directory: str) -> None:
    """A 644 file in bin/ or sbin/ is AM324 (below the link and as the link's own target);
    macOS metadata beside it is not audited."""
    scn = scenario(
        [ROOT, OPT, d(f"/opt/{directory}", 0o755, CDSW)],
        [
            d("opt/tool"),
            f(f"opt/tool/{directory}/run", 0o644),
            f(f"opt/tool/{directory}/._run", 0o000, 501, 20),
            f(f"opt/tool/{directory}/.DS_Store", 0o000, 501, 20),
            f(f"opt/{directory}/cli", 0o644),
        ],
        ["/opt/tool", f"/opt/{directory}/cli"],
        "audit-bin",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/opt/tool") == {
        f"/opt/tool/{directory}": frozenset(),
        f"/opt/tool/{directory}/run": frozenset({"AM324"}),
    }
    assert audited(outcome, f"/opt/{directory}/cli") == {
        f"/opt/{directory}/cli": frozenset({"AM324"})
    }
    agrees(outcome)


@pytest.mark.parametrize("owner", [0, 1000, CDSW])
def test_audit_through_a_link_in_a_sticky_directory(oracle: Oracle, owner: int) -> None:
    """cdsw's own link in a sticky world-writable directory is followed by cdsw (its owner)
    whoever owns the directory: what it reaches is audited (a root-owned 600 file: AM322)."""
    scn = scenario(
        [ROOT, d("/data", 0o1777, owner)],
        [d("data/tool"), f("data/tool/secret", 0o600)],
        ["/data/tool"],
        "audit-sticky",
    )
    outcome = oracle.one(scn)
    assert audited(outcome, "/data/tool") == {"/data/tool/secret": frozenset({"AM322"})}
    agrees(outcome)


# -- seeded random scenarios ---------------------------------------------------------


def test_random_scenarios_agree_with_the_kernel(
    oracle: Oracle, capsys: pytest.CaptureFixture[str]
) -> None:
    """For seeded random scenarios, the model's verdict on every path is the kernel's."""
    single = os.environ.get("ADDON_MOUNT_ORACLE_SEED")
    if single:
        seeds = [int(single)]
    else:
        count = int(os.environ.get("ADDON_MOUNT_ORACLE_SCENARIOS", "300"))
        seeds = list(range(SEED_BASE, SEED_BASE + count))
    outcomes = oracle.run([generate(seed) for seed in seeds])
    seen, classes = summarize(outcomes)
    paths = sum(len(o.scenario.paths) for o in outcomes)
    coverage = ", ".join(f"{code} {seen[code]}" for code in sorted(seen))
    with capsys.disabled():
        print(
            f"\nkernel oracle: {len(seeds)} scenarios, {paths} paths, "
            f"{sum(len(v) for v in classes.values())} disagreements; kernel classes: {coverage}"
        )
    if len(seeds) >= 300:
        missing = [c for c in MAIN_CLASSES if not seen[c]]
        assert not missing, f"the generator never produced {missing}; seen: {coverage}"
    if classes:
        # Shrink one example of each class, the most frequent first, for a limited time.
        deadline = time.monotonic() + float(os.environ.get("ADDON_MOUNT_ORACLE_SHRINK", "30"))
        examples = {}
        for key, items in sorted(classes.items(), key=lambda kv: -len(kv[1])):
            if time.monotonic() >= deadline:
                break
            examples[key] = oracle.shrink(smallest(items), deadline)
        pytest.fail(report_disagreements(classes, paths, examples))
