"""Verdicts: what the kernel did and what the model said, per requested path, comparable.

A verdict is the set of start-up finding codes for a path, whether the link
was created, and the audit's codes for each entry the link reaches (the
link's own target file, everything below its directory). The kernel's records
map to the codes the model must give by the tables below: this mapping is the
specification the oracle enforces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .scenario import Scenario

ADDON = "tool"
# The codes of the simulated start-up the oracle compares.
START_UP = frozenset(
    {"AM300", "AM301", "AM302", "AM303", "AM304", "AM310", "AM320", "AM321", "AM330", "AM390"}
)
# Whatever errno a table does not name.
UNMAPPED = "AM390"

# symlink(2) of the link (first attempt, or the second after makedirs) -> code
LINK_ERRNO: Mapping[str, str] = {
    "EEXIST": "AM301",  # something is already there, even a dangling symlink: never replaced
    "ENOTDIR": "AM302",  # a parent is a file (or a symlink to one)
    "EACCES": "AM320",  # a parent cdsw may not search, the parent not writable, protected_symlinks
    "EPERM": "AM320",  # the same refusal in its other spelling
    "ELOOP": "AM304",  # a parent is (or goes through) a symlink loop
    "EROFS": "AM310",  # a parent leads into an add-on's read-only mount
}
# os.makedirs(parent, 0o755, exist_ok=True) after symlink said ENOENT -> code
MAKEDIRS_ERRNO: Mapping[str, str] = {
    "ENOTDIR": "AM302",  # a parent is a file
    "EACCES": "AM320",  # cdsw may not create the first missing directory
    "EPERM": "AM320",  # the same refusal in its other spelling
    "ELOOP": "AM304",  # a parent is a symlink loop
    "ENOENT": "AM303",  # a parent is a dangling symlink (mkdir below it)
    "EEXIST": "AM303",  # a parent is a dangling symlink (mkdir of the link itself)
    "EROFS": "AM310",  # the missing parent would be inside an add-on's read-only mount
}
# makedirs succeeded: the parent did not exist and cdsw created it -> code
CREATED_PARENT = "AM330"
# stat(2) of the created link -> code
STAT_ERRNO: Mapping[str, str] = {
    "ENOENT": "AM300",  # the link dangles: no member, or a member symlink dangles
    "ENOTDIR": "AM300",  # a parent of the member is a file in the archive
    "ELOOP": "AM300",  # the member is a symlink loop
    "EACCES": "AM321",  # cdsw may not search a directory on the way to the member
}
# listdir, stat(path/.) of a directory or open(O_RDONLY) of a file it reaches -> code
USE_ERRNO: Mapping[str, str] = {
    "EACCES": "AM321",  # cdsw may not read (or search) what the link points to
}

# The audit: codes per entry the link reaches in the add-on (when it may use the link's
# target). The model reports them aggregated, one finding per code with every path.
AUDIT = frozenset({"AM322", "AM323", "AM324"})
# (entry type, call, outcome) of an audited entry -> code
AUDIT_OUTCOME: Mapping[tuple[str, str, str], str] = {
    ("d", "read", "EACCES"): "AM322",  # a directory below the link cdsw may not list
    ("d", "search", "EACCES"): "AM322",  # ... or search (the kernel walks no further there)
    ("f", "open", "EACCES"): "AM322",  # a file below the link cdsw may not read
    ("f", "exec", "denied"): "AM323",  # a file with an x bit cdsw may not run (not AM322 too)
}
# A symlink below the link, leading elsewhere in the add-on, that cdsw may not follow
# (a directory on its way it may not search) or whose target file it may not read.
SYMLINK_REFUSED = "AM322"
# A file with no x bit at all in a directory (on the link's path) named bin or sbin -> code
BIN_NOT_EXECUTABLE = "AM324"
BIN_DIRS = ("bin", "sbin")


def _codes(codes: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(codes)) + "}"


@dataclass(frozen=True)
class Verdict:
    """The start-up codes for one path, whether its link was created, and the audit's
    (entry path, code) pairs for what it reaches."""

    codes: frozenset[str]
    linked: bool
    audit: frozenset[tuple[str, str]] = frozenset()

    def show(self) -> str:
        """The start-up part: '{AM330} linked'."""
        return f"{_codes(self.codes)} {'linked' if self.linked else 'not linked'}"

    def at(self, path: str) -> frozenset[str]:
        """The audit's codes for the entry at *path*."""
        return frozenset(code for where, code in self.audit if where == path)

    def show_audit(self) -> str:
        paths = sorted({where for where, _ in self.audit})
        return ", ".join(f"{p} {_codes(self.at(p))}" for p in paths) or "nothing"


def audit_codes(entry: Mapping[str, Any]) -> frozenset[str]:
    """The codes the model must give for one entry the kernel audited."""
    kind = entry["type"]
    steps: tuple[str, ...]
    if kind == "d":
        steps = ("read", "search")
    elif kind == "l":
        # Followed as cdsw; a target inside the audited directory is audited as itself,
        # unless the link itself may not be followed (fs.protected_symlinks).
        if entry["protected"] and entry["follow"] == "EACCES":
            return frozenset({SYMLINK_REFUSED})
        if entry["inside"]:
            return frozenset()
        steps = ("follow", "open", "read", "search")
        refused = any(entry.get(step) == "EACCES" for step in steps)
        return frozenset({SYMLINK_REFUSED}) if refused else frozenset()
    elif kind == "f":
        if entry.get("exec", "ok") != "ok":  # a program cdsw may not run: that alone
            return frozenset({AUDIT_OUTCOME.get(("f", "exec", entry["exec"]), UNMAPPED)})
        steps = ("open",)
    else:
        return frozenset({UNMAPPED})  # lstat failed: no table names it
    codes = {
        AUDIT_OUTCOME.get((kind, step, entry[step]), UNMAPPED)
        for step in steps
        if entry[step] != "ok"
    }
    if kind == "f" and not int(entry["mode"], 8) & 0o111 and _in_bin(entry["path"]):
        codes.add(BIN_NOT_EXECUTABLE)
    return frozenset(codes)


def _in_bin(path: str) -> bool:
    return path.rpartition("/")[0].rpartition("/")[2] in BIN_DIRS


def audit_class(entry: Mapping[str, Any] | None) -> str:
    """A short name for what the kernel met at an audited entry (None: it met nothing)."""
    if entry is None:
        return "an entry the kernel did not reach"
    if entry["type"] == "d":
        return f"dir: read {entry['read']}, search {entry['search']}"
    if entry["type"] == "l":
        where = "inside" if entry["inside"] else "out of the directory"
        return f"symlink leading {where}: follow {entry['follow']}, open {entry.get('open')}"
    if entry["type"] != "f":
        return f"lstat {entry['lstat']}"
    what = "the link's target file" if entry.get("top") else "file"
    if "exec" in entry:
        what += f" with x bits: exec {entry['exec']}"
    else:
        what += " without x bits" + (" in bin" if _in_bin(entry["path"]) else "")
    return f"{what}; open {entry['open']}"


def expected(record: Mapping[str, Any]) -> Verdict:
    """The verdict the model must give for a path, from the kernel's record of it."""
    codes: set[str] = set()
    first = record["symlink"]
    if first == "ENOENT":
        made = record["makedirs"]
        if made != "ok":
            return Verdict(frozenset({MAKEDIRS_ERRNO.get(made, UNMAPPED)}), False)
        codes.add(CREATED_PARENT)
        last = record["symlink2"]
    else:
        last = first
    if last != "ok":
        codes.add(LINK_ERRNO.get(last, UNMAPPED))
        return Verdict(frozenset(codes), False)
    if record["stat"] != "ok":
        codes.add(STAT_ERRNO.get(record["stat"], UNMAPPED))
    for step in ("listdir", "search", "open"):
        outcome = record.get(step, "ok")
        if outcome != "ok":
            codes.add(USE_ERRNO.get(outcome, UNMAPPED))
    audit = {(e["path"], code) for e in record.get("audit", ()) for code in audit_codes(e)}
    return Verdict(frozenset(codes), True, frozenset(audit))


def kernel_class(record: Mapping[str, Any]) -> str:
    """A short name for what the kernel did: 'symlink EACCES', 'linked; stat ENOENT'..."""
    if record["symlink"] != "ENOENT":
        if record["symlink"] != "ok":
            return f"symlink {record['symlink']}"
        parts = ["linked"]
    elif record["makedirs"] != "ok":
        return f"symlink ENOENT; makedirs {record['makedirs']}"
    elif record["symlink2"] != "ok":
        return f"makedirs ok; symlink {record['symlink2']}"
    else:
        parts = ["linked after makedirs"]
    for step in ("stat", "listdir", "search", "open"):
        if record.get(step, "ok") != "ok":
            parts.append(f"{step} {record[step]}")
    return "; ".join(parts)


def show_record(record: Mapping[str, Any]) -> str:
    """Every call the kernel replay made for a path, and its outcome."""
    steps = [f"symlink {record['symlink']}"]
    if "makedirs" in record:
        created = ", ".join(f"{p} [{what}]" for p, what in record["created"].items())
        steps.append(
            f"makedirs {record['makedirs']}" + (f" (created {created})" if created else "")
        )
    for step in ("symlink2", "stat", "listdir", "search", "open"):
        if step in record:
            name = "symlink" if step == "symlink2" else step
            extra = f" ({record['reached']})" if step == "stat" and "reached" in record else ""
            steps.append(f"{name} {record[step]}{extra}")
    if "real" in record:
        audited = "audited" if "audit" in record else "outside the add-on: not audited"
        steps.append(f"reaches {record['real']} ({audited})")
    return "; ".join(steps)


def audit_lines(record: Mapping[str, Any]) -> list[str]:
    """One line per entry the kernel audited: the calls, their outcomes, the codes."""
    lines = []
    for entry in record.get("audit", ()):
        if entry["type"] == "d":
            calls = f"listdir {entry['read']}, search {entry['search']}"
        elif entry["type"] == "f":
            calls = f"open {entry['open']}" + (
                f", access X_OK {entry['exec']}" if "exec" in entry else ""
            )
        elif entry["type"] == "l":
            where = "inside" if entry["inside"] else "out of the directory"
            calls = f"symlink leading {where}: stat {entry['follow']}" + "".join(
                f", {step} {entry[step]}" for step in ("open", "read", "search") if step in entry
            )
        else:
            calls = f"lstat {entry['lstat']}"
        kind = entry["type"] + (f" {entry['mode']}" if "mode" in entry else "")
        lines.append(f"{entry['path']} [{kind}]: {calls} => {_codes(audit_codes(entry))}")
    return lines


@dataclass(frozen=True)
class ModelVerdict:
    """The model's verdict for one path, with the findings behind it."""

    verdict: Verdict
    findings: tuple[tuple[str, str], ...]


def _link_of(path: str, paths: list[str]) -> str:
    """The requested path *path* is at or below (requested paths do not nest)."""
    for link in paths:
        if path == link or path.startswith(link + "/"):
            return link
    return paths[0]  # below no link: the kernel has no such entry, so it disagrees


def model_verdicts(report: Any, paths: Iterable[str]) -> dict[str, ModelVerdict]:
    """Per requested path: the model's start-up codes, whether it linked, the audit's
    codes per entry (aggregated findings expanded), its findings."""
    paths = list(paths)
    linked = {link.path for link in report.links if link.addon == ADDON}
    found: dict[str, list[tuple[str, str]]] = {}
    audit: dict[str, set[tuple[str, str]]] = {}
    for finding in report.findings:
        if finding.addon != ADDON:
            continue
        if finding.code in START_UP:
            found.setdefault(finding.path, []).append((finding.code, finding.message))
        elif finding.code in AUDIT and paths:
            links = set()
            for where in finding.paths or (finding.path,):
                links.add(link := _link_of(where, paths))
                audit.setdefault(link, set()).add((where, finding.code))
            for link in sorted(links):
                found.setdefault(link, []).append((finding.code, finding.message))
    return {
        path: ModelVerdict(
            Verdict(
                frozenset(code for code, _ in found.get(path, []) if code in START_UP),
                path in linked,
                frozenset(audit.get(path, ())),
            ),
            tuple(found.get(path, [])),
        )
        for path in paths
    }


@dataclass(frozen=True)
class Disagreement:
    """One path where the model's verdict differs from the kernel's."""

    scenario: Scenario
    path: str
    record: Mapping[str, Any]
    kernel: Verdict
    model: ModelVerdict | None
    crash: str = ""

    @property
    def key(self) -> str:
        """The disagreement's class: what the kernel did, what it means, what the model said.

        When only the audit differs: what the kernel met at the first entry where
        the codes differ, and the codes of both there.
        """
        if self.model is None:
            return f"model crashed: {self.crash.splitlines()[0]}"
        model = self.model.verdict
        if (model.codes, model.linked) != (self.kernel.codes, self.kernel.linked):
            said = model.show()
            return f"kernel: {kernel_class(self.record)} => {self.kernel.show()}; model: {said}"
        where = self.audit_path
        entries = {e["path"]: e for e in self.record.get("audit", ())}
        return (
            f"audit: kernel: {audit_class(entries.get(where))} => "
            f"{_codes(self.kernel.at(where))}; model: {_codes(model.at(where))}"
        )

    @property
    def audit_path(self) -> str:
        """The first entry whose audit codes differ ('' if none)."""
        if self.model is None:
            return ""
        differ = self.kernel.audit ^ self.model.verdict.audit
        return min((where for where, _ in differ), default="")

    def explain(self) -> str:
        lines = [
            self.key,
            self.scenario.describe(),
            f"  path {self.path}",
            f"    kernel: {show_record(self.record)}",
        ]
        lines += [f"      audit {line}" for line in audit_lines(self.record)]
        lines.append(f"    expected: {self.kernel.show()}; audit: {self.kernel.show_audit()}")
        if self.model is None:
            lines.append("    model crashed: " + "\n      ".join(self.crash.splitlines()))
        else:
            verdict = self.model.verdict
            lines.append(f"    model: {verdict.show()}; audit: {verdict.show_audit()}")
            lines += [f"      {code}: {message}" for code, message in self.model.findings]
        lines.append(f"  reproduce: {reproduce(self.scenario)}")
        return "\n".join(lines)


def reproduce(scenario: Scenario) -> str:
    """The command that replays *scenario* alone."""
    if scenario.seed is None:
        return f"pytest tests/test_kernel_oracle.py (handwritten scenario {scenario.label!r})"
    return (
        f"ADDON_MOUNT_ORACLE_SEED={scenario.seed} .venv/bin/python -m pytest -q "
        f"tests/test_kernel_oracle.py -k random  (scenario: python -m tests.oracle.scenario "
        f"{scenario.seed})"
    )


@dataclass
class Outcome:
    """One scenario replayed on both sides."""

    scenario: Scenario
    records: dict[str, Mapping[str, Any]]
    model: dict[str, ModelVerdict] | None
    crash: str = ""
    disagreements: list[Disagreement] = field(default_factory=list)

    def compare(self) -> None:
        self.disagreements = []
        for path in self.scenario.paths:
            record = self.records[path]
            kernel = expected(record)
            model = None if self.model is None else self.model[path]
            if model is None or model.verdict != kernel:
                self.disagreements.append(
                    Disagreement(self.scenario, path, record, kernel, model, self.crash)
                )

    def kernel(self, path: str) -> Verdict:
        return expected(self.records[path])

    def disagreement(self, path: str) -> Disagreement | None:
        return next((d for d in self.disagreements if d.path == path), None)

    def explain(self) -> str:
        return "\n\n".join(d.explain() for d in self.disagreements)


def summarize(outcomes: Iterable[Outcome]) -> tuple[Counter[str], dict[str, list[Disagreement]]]:
    """Kernel verdict classes seen (by expected codes), and disagreements by class."""
    seen: Counter[str] = Counter()
    classes: dict[str, list[Disagreement]] = {}
    for outcome in outcomes:
        for path in outcome.scenario.paths:
            verdict = outcome.kernel(path)
            for code in verdict.codes or {"clean"}:
                seen[code] += 1
            for _, code in verdict.audit:
                seen[code] += 1
            seen["audited"] += len(outcome.records[path].get("audit", ()))
        for disagreement in outcome.disagreements:
            classes.setdefault(disagreement.key, []).append(disagreement)
    return seen, classes


def smallest(items: Iterable[Disagreement]) -> Disagreement:
    """The disagreement of the smallest scenario (then the lowest seed)."""
    return min(items, key=lambda d: (d.scenario.size, d.scenario.seed or 0))


def report_disagreements(
    classes: Mapping[str, list[Disagreement]],
    total: int,
    examples: Mapping[str, Disagreement] | None = None,
) -> str:
    """Each class with its count and an example (shrunk, if *examples* has one)."""
    count = sum(len(v) for v in classes.values())
    lines = [f"{count} of {total} paths disagree, in {len(classes)} classes:"]
    ordered = sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines += [f"  {len(items):5}  {key}" for key, items in ordered]
    for key, items in ordered:
        example = (examples or {}).get(key) or smallest(items)
        lines += ["", f"== {key} ({len(items)} paths); example:", example.explain()]
    return "\n".join(lines)
