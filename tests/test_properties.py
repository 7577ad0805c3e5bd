"""Property-based tests: the parsers hold their contract for any input Hypothesis finds."""

from __future__ import annotations

import io
import json
import posixpath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addon_mount import RULES, Finding, Report, Severity
from addon_mount._archive import normalize_name, sniff
from addon_mount._metadata import parse_metadata
from addon_mount._render import render_json, render_sarif, render_text
from addon_mount._report import UNENCODABLE, printable

SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
METADATA_CODES = {code for code in RULES if code.startswith("AM1")} | {"AM241"}
PATH_SHAPE_CODES = {"AM130", "AM131", "AM132"}

# Any text, lone surrogates included (json.loads produces them from '\ud800' escapes).
any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=30)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
component = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda c: c not in (".", ".."))
components = st.lists(component, min_size=1, max_size=6)
# Documents shaped like metadata.json, with a wrong value anywhere.
documents = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z0-9_-]{1,35}", fullmatch=True) | json_values,
        "spec": st.fixed_dictionaries(
            {"paths": st.lists(components.map(lambda c: "/" + "/".join(c)) | json_values)}
        )
        | json_values,
    },
    optional={"version": json_values, "description": any_text},
)


def metadata_findings(document: object) -> list[Finding]:
    result = parse_metadata(json.dumps(document).encode(), fallback_name="bundle")
    return list(result.findings)


def path_codes(path: str) -> list[str]:
    return [f.code for f in metadata_findings({"name": "x", "spec": {"paths": [path]}})]


def check_contract(data: bytes) -> None:
    result = parse_metadata(data, fallback_name="bundle")
    assert {f.code for f in result.findings} <= METADATA_CODES
    if result.spec is None:
        assert any(f.severity is Severity.ERROR for f in result.findings)
    for finding in result.findings:
        json.dumps(finding.to_json(), ensure_ascii=False).encode("utf-8")


@SETTINGS
@given(st.binary(max_size=600))
def test_metadata_parser_never_raises_on_bytes(data: bytes) -> None:
    """Any bytes give metadata findings only, and no spec without an error saying why."""
    check_contract(data)


@SETTINGS
@given(json_values)
def test_metadata_parser_never_raises_on_json_values(value: object) -> None:
    """Any JSON value, surrogate escapes included, gives known metadata findings only."""
    check_contract(json.dumps(value).encode())


@SETTINGS
@given(documents)
def test_metadata_parser_never_raises_on_near_miss_documents(document: object) -> None:
    """Documents shaped like metadata.json with wrong values anywhere keep the contract."""
    check_contract(json.dumps(document).encode())


@SETTINGS
@given(components)
def test_normalized_absolute_path_passes_the_shape_rules(parts: list[str]) -> None:
    """An absolute path of plain components is neither relative, slash-ended nor unnormalized."""
    assert not set(path_codes("/" + "/".join(parts))) & PATH_SHAPE_CODES


@SETTINGS
@given(components, st.data(), st.sampled_from(["", ".", ".."]))
def test_path_with_empty_dot_or_dotdot_component_is_am132(
    parts: list[str], data: st.DataObject, bad: str
) -> None:
    """Any path holding '//', '/./' or '/../' is AM132, and only that."""
    at = data.draw(st.integers(0, len(parts) - 1))
    path = "/" + "/".join([*parts[:at], bad, *parts[at:]])
    assert f"/{bad}/" in path
    assert path_codes(path) == ["AM132"]


@SETTINGS
@given(components, st.sampled_from(["", ".", ".."]))
def test_path_with_trailing_slash_is_am131(parts: list[str], bad: str) -> None:
    """Any path ending with '/' is AM131, whatever else is wrong with it."""
    path = "/" + "/".join([*parts, bad]) + "/"
    assert path_codes(path) == ["AM131"]


@SETTINGS
@given(components)
def test_relative_path_is_am130(parts: list[str]) -> None:
    """A path not starting with '/' is AM130."""
    assert path_codes("/".join(parts)) == ["AM130"]


@SETTINGS
@given(st.text(max_size=60).filter(lambda n: not n.startswith("/")))
def test_member_names_normalize_inside_the_root(name: str) -> None:
    """A relative member name normalizes to a name inside the root, or to None; idempotently."""
    normal = normalize_name(name)
    if normal is None:
        assert posixpath.normpath(name.rstrip("/") or ".").split("/")[0] == ".."
        return
    assert not normal.startswith(("/", "../"))
    assert normal != ".."
    assert "" not in normal.split("/") or normal == ""
    assert "." not in normal.split("/")
    assert normalize_name(normal) == normal


@SETTINGS
@given(st.binary(max_size=600))
def test_sniff_names_every_input(head: bytes) -> None:
    """sniff answers for any bytes, and says gzip exactly for the gzip magic number."""
    what = sniff(head)
    assert what
    assert (what == "gzip") == head.startswith(b"\x1f\x8b")


@SETTINGS
@given(any_text)
def test_printable_output_is_utf8_without_control_characters(text: str) -> None:
    """printable() leaves no surrogate or control character, and is idempotent."""
    shown = printable(text)
    shown.encode("utf-8")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert printable(shown) == shown


@SETTINGS
@given(any_text, st.none() | any_text, st.none() | any_text)
def test_reports_render_whatever_the_text(
    message: str, path: str | None, addon: str | None
) -> None:
    """Findings with any text render as UTF-8 JSON, SARIF and text; JSON keeps the fields."""
    finding = Finding("AM220", message, addon=addon, path=path)
    report = Report(addons=(), runtimes=(), links=(), findings=(finding,))
    document = json.loads(render_json(report).encode("utf-8"))
    assert document["findings"][0]["message"] == printable(message, UNENCODABLE)
    render_sarif(report, "0").encode("utf-8")
    out = io.StringIO()
    render_text(report, out)
    out.getvalue().encode("utf-8")
