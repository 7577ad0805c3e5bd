"""metadata.json as people really write it: each mistake is one precise finding.

Each finding names the key path (like ``spec.paths[3]``), what was expected
and what was found; the wording is the contract, so messages are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from addon_mount import Limits
from addon_mount._builders import targz
from addon_mount._check import read_bundle
from addon_mount._metadata import parse_metadata

SHAPE = '{"name": ..., "spec": {"paths": [...]}}'
UTF16 = "metadata.json starts with a UTF-16 byte-order mark; save it as UTF-8 without BOM"
NOT_JSON_CONSTANT = "is not a JSON value (JSON has no NaN, Infinity or -Infinity)"
SURROGATE_HINT = "expected valid Unicode text (a \\u escape from U+D800 to U+DFFF needs its pair)"


def findings_of(data: bytes, **kw: object) -> list[tuple[str, str, str]]:
    result = parse_metadata(data, fallback_name="bundle", **kw)  # type: ignore[arg-type]
    return [(f.code, f.severity.value, f.message) for f in result.findings]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", f"metadata.json is empty; expected a JSON object {SHAPE}", id="empty"),
        pytest.param(
            b" \n\t\r\n", f"metadata.json is empty; expected a JSON object {SHAPE}", id="blank"
        ),
        pytest.param(
            b'\xef\xbb\xbf{"name": "x", "spec": {"paths": ["/opt/x"]}}',
            "metadata.json starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM",
            id="utf8-bom",
        ),
        pytest.param('{"name": "x"}'.encode("utf-16"), UTF16, id="utf16-le-bom"),
        pytest.param(
            '{"name": "x"}'.encode("utf-16-be").join([b"\xfe\xff", b""]), UTF16, id="utf16-be-bom"
        ),
        pytest.param(
            b'{"name": "caf\xe9", "spec": {"paths": ["/opt/x"]}}',
            "metadata.json is not UTF-8: byte 0xe9 at offset 13 cannot be decoded",
            id="latin-1",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/\xc3"]}}',
            "metadata.json is not UTF-8: byte 0xc3 at offset 39 cannot be decoded",
            id="cut-utf8-sequence",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/x"],}}',
            "metadata.json is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 44",
            id="trailing-comma",
        ),
        pytest.param(
            b"{'name': 'x'}",
            "metadata.json is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 1 column 2",
            id="single-quotes",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/x"]}}\n{"name": "y"}',
            "metadata.json is not valid JSON: Extra data at line 2 column 1",
            id="two-documents",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/x"]}',
            "metadata.json is not valid JSON: Expecting ',' delimiter at line 1 column 44",
            id="truncated",
        ),
        pytest.param(
            b"\x00" * 8,
            "metadata.json is not valid JSON: Expecting value at line 1 column 1",
            id="nul-bytes",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": [NaN]}}',
            f"metadata.json is not valid JSON: NaN {NOT_JSON_CONSTANT}",
            id="nan",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/x"]}, "size": -Infinity}',
            f"metadata.json is not valid JSON: -Infinity {NOT_JSON_CONSTANT}",
            id="infinity",
        ),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000,
            "metadata.json nests 100000 levels deep; expected at most 32 "
            "(--max-json-depth; the format needs 3)",
            id="deep-arrays",
        ),
        pytest.param(
            b'{"a":' * 33 + b"1" + b"}" * 33,
            "metadata.json nests 33 levels deep; expected at most 32 "
            "(--max-json-depth; the format needs 3)",
            id="deep-objects",
        ),
        pytest.param(
            b'{"name": "x", "name": "y", "spec": {"paths": ["/opt/x"]}}',
            "metadata.json has the key 'name' twice; a JSON object must name each key once",
            id="duplicate-name",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/x"], "paths": ["/opt/y"]}}',
            "metadata.json has the key 'spec.paths' twice; a JSON object must name each key once",
            id="duplicate-paths",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": [{"p": 1, "p": 2}]}}',
            "metadata.json has the key 'spec.paths[0].p' twice; a JSON object must name "
            "each key once",
            id="duplicate-deep",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"paths": ["/opt/a", "/opt/\\ud800"]}}',
            f"metadata.json has an unpaired surrogate escape '\\ud800' in spec.paths[1]; "
            f"{SURROGATE_HINT}",
            id="lone-surrogate-in-path",
        ),
        pytest.param(
            b'{"name": "\\udcfc", "spec": {"paths": ["/opt/x"]}}',
            f"metadata.json has an unpaired surrogate escape '\\udcfc' in name; {SURROGATE_HINT}",
            id="lone-surrogate-in-name",
        ),
        pytest.param(
            b'{"name": "x", "spec": {"\\ud83d": 1}}',
            f"metadata.json has an unpaired surrogate escape '\\ud83d' in a key of spec; "
            f"{SURROGATE_HINT}",
            id="lone-surrogate-in-key",
        ),
    ],
)
def test_undecodable_metadata_is_one_am110(data: bytes, message: str) -> None:
    """Bytes that are not one usable JSON document give exactly one AM110 saying why."""
    result = parse_metadata(data, fallback_name="bundle")
    assert [(f.code, f.message) for f in result.findings] == [("AM110", message)]
    assert result.spec is None
    assert result.findings[0].addon == "bundle"


def test_huge_integer_is_a_number_not_a_crash() -> None:
    """A 5,000-digit number (over Python's int limit) is reported by type like any number."""
    data = b'{"name": "x", "spec": {"paths": [' + b"9" * 5000 + b"]}}"
    assert findings_of(data) == [
        ("AM111", "error", "key 'spec.paths[0]' is a number; expected a string")
    ]


def test_a_valid_surrogate_pair_is_accepted() -> None:
    """An escaped surrogate pair is one character, not an unpaired surrogate."""
    result = parse_metadata(
        b'{"name": "x", "spec": {"paths": ["/opt/\\ud83d\\ude00"]}}', fallback_name="bundle"
    )
    assert result.findings == ()
    assert result.spec is not None
    assert result.spec.paths == ("/opt/\U0001f600",)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            [], [("AM111", f"metadata.json holds an array; expected an object {SHAPE}")], id="array"
        ),
        pytest.param(
            "x", [("AM111", f"metadata.json holds a string; expected an object {SHAPE}")], id="str"
        ),
        pytest.param(
            3, [("AM111", f"metadata.json holds a number; expected an object {SHAPE}")], id="num"
        ),
        pytest.param(
            None, [("AM111", f"metadata.json holds null; expected an object {SHAPE}")], id="null"
        ),
        pytest.param(
            True,
            [("AM111", f"metadata.json holds a boolean; expected an object {SHAPE}")],
            id="bool",
        ),
        pytest.param(
            {"spec": {"paths": ["/opt/x"]}},
            [("AM111", "key 'name' is missing; expected a string")],
            id="no-name",
        ),
        pytest.param(
            {"name": 7, "spec": {"paths": ["/opt/x"]}},
            [("AM111", "key 'name' is a number; expected a string")],
            id="name-number",
        ),
        pytest.param(
            {"name": None, "spec": {"paths": ["/opt/x"]}},
            [("AM111", "key 'name' is null; expected a string")],
            id="name-null",
        ),
        pytest.param(
            {"name": ["x"], "spec": {"paths": ["/opt/x"]}},
            [("AM111", "key 'name' is an array; expected a string")],
            id="name-array",
        ),
        pytest.param(
            {"name": "x"},
            [("AM111", "key 'spec' is missing; expected an object with 'paths'")],
            id="no-spec",
        ),
        pytest.param(
            {"name": "x", "spec": ["/opt/x"]},
            [("AM111", "key 'spec' is an array; expected an object with 'paths'")],
            id="spec-array",
        ),
        pytest.param(
            {"name": "x", "spec": "/opt/x"},
            [("AM111", "key 'spec' is a string; expected an object with 'paths'")],
            id="spec-string",
        ),
        pytest.param(
            {"name": "x", "spec": {}},
            [("AM111", "key 'spec.paths' is missing; expected a list of absolute paths")],
            id="no-paths",
        ),
        pytest.param(
            {"name": "x", "spec": {"paths": "/opt/x"}},
            [("AM111", "key 'spec.paths' is a string; expected a list of absolute paths")],
            id="paths-string",
        ),
        pytest.param(
            {"name": "x", "spec": {"paths": {"/opt/x": True}}},
            [("AM111", "key 'spec.paths' is an object; expected a list of absolute paths")],
            id="paths-object",
        ),
        pytest.param(
            {"name": "x", "spec": {"paths": None}},
            [("AM111", "key 'spec.paths' is null; expected a list of absolute paths")],
            id="paths-null",
        ),
        pytest.param(
            {"name": "x", "spec": {"paths": []}},
            [("AM111", "key 'spec.paths' is an empty list; expected at least one path")],
            id="paths-empty",
        ),
        pytest.param(
            {"name": "x", "spec": {"paths": ["/opt/a", 1, None, ["/opt/b"], {"p": 1}, False, 2.5]}},
            [
                ("AM111", "key 'spec.paths[1]' is a number; expected a string"),
                ("AM111", "key 'spec.paths[2]' is null; expected a string"),
                ("AM111", "key 'spec.paths[3]' is an array; expected a string"),
                ("AM111", "key 'spec.paths[4]' is an object; expected a string"),
                ("AM111", "key 'spec.paths[5]' is a boolean; expected a string"),
                ("AM111", "key 'spec.paths[6]' is a number; expected a string"),
            ],
            id="path-items",
        ),
        pytest.param(
            {"name": 1, "spec": []},
            [
                ("AM111", "key 'name' is a number; expected a string"),
                ("AM111", "key 'spec' is an array; expected an object with 'paths'"),
            ],
            id="every-level-at-once",
        ),
    ],
)
def test_wrong_type_names_the_key_expected_and_actual(
    document: object, expected: list[tuple[str, str]]
) -> None:
    """A wrong or missing field is AM111 naming its key path, the type found and the one needed."""
    result = parse_metadata(json.dumps(document).encode(), fallback_name="bundle")
    assert [(f.code, f.message) for f in result.findings] == expected


def test_path_items_of_the_wrong_type_do_not_hide_the_good_ones() -> None:
    """Valid entries next to wrong ones still make a spec, so the rest is checked too."""
    result = parse_metadata(
        json.dumps({"name": "x", "spec": {"paths": [1, "/opt/x"]}}).encode(), fallback_name="b"
    )
    assert result.spec is not None
    assert result.spec.paths == ("/opt/x",)
    assert result.raw_paths == ("/opt/x",)


def test_unknown_keys_are_warnings_at_each_level() -> None:
    """Unknown keys are AM112 warnings naming the key path; the add-on is still checked."""
    document = {
        "name": "x",
        "version": "1.0",
        "Name": "x",
        "spec": {"paths": ["/opt/x"], "mode": 755},
    }
    result = parse_metadata(json.dumps(document).encode(), fallback_name="bundle")
    assert [(f.code, f.severity.value, f.message) for f in result.findings] == [
        (
            "AM112",
            "warning",
            "unknown key 'Name'; the registration API reads only 'name' and 'spec'",
        ),
        (
            "AM112",
            "warning",
            "unknown key 'version'; the registration API reads only 'name' and 'spec'",
        ),
        (
            "AM112",
            "warning",
            "unknown key 'spec.mode'; the registration API reads only 'spec.paths'",
        ),
    ]
    assert result.spec is not None
    assert result.spec.paths == ("/opt/x",)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (
            ["opt/x"],
            [("AM130", "spec.paths[0] 'opt/x' is not absolute; expected a path starting with '/'")],
        ),
        (["/"], [("AM136", "spec.paths[0] is '/', the root directory, which always exists")]),
        (["/opt/x/"], [("AM131", "spec.paths[0] '/opt/x/' ends with '/'; expected '/opt/x'")]),
        (["/opt/\x00x"], [("AM132", "spec.paths[0] '/opt/\\x00x' contains a NUL character")]),
        (
            ["/opt//x"],
            [
                (
                    "AM132",
                    "spec.paths[0] '/opt//x' is not normalized; expected '/opt/x' "
                    "(no '.', '..' or '//')",
                )
            ],
        ),
        (
            ["/opt/./x", "/opt/y/../x"],
            [
                (
                    "AM132",
                    "spec.paths[0] '/opt/./x' is not normalized; expected '/opt/x' "
                    "(no '.', '..' or '//')",
                ),
                (
                    "AM132",
                    "spec.paths[1] '/opt/y/../x' is not normalized; expected '/opt/x' "
                    "(no '.', '..' or '//')",
                ),
            ],
        ),
        (
            ["/opt/" + "c" * 256],
            [
                (
                    "AM132",
                    "spec.paths[0] has a component of 256 characters; "
                    "a file name may have at most 255 bytes",
                )
            ],
        ),
        (
            ["/opt/x", "/opt/x"],
            [("AM133", "spec.paths[1] '/opt/x' is listed already as spec.paths[0]")],
        ),
    ],
)
def test_path_rule_findings_name_the_index(
    paths: list[str], expected: list[tuple[str, str]]
) -> None:
    """Each broken path rule names spec.paths[i], the path and what was expected."""
    result = parse_metadata(
        json.dumps({"name": "x", "spec": {"paths": paths}}).encode(), fallback_name="b"
    )
    assert [(f.code, f.message) for f in result.findings] == expected


def test_metadata_that_is_a_directory_or_missing_is_a_bundle_finding(tmp_path: Path) -> None:
    """A bundle without a metadata.json file is AM100, even when the name is a directory."""
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "addon.tar.gz").write_bytes(targz([("opt/x", "f", 0o644, b"")]))
    (bundle / "metadata.json").mkdir()
    read = read_bundle(bundle)
    assert [(f.code, f.message) for f in read.findings] == [
        ("AM100", "bundle 'b' has no metadata.json")
    ]


def test_limits_apply_before_parsing() -> None:
    """A file over --max-metadata-bytes is not parsed at all: one AM241, nothing else."""
    data = b'{"name": "x", "spec": {"paths": [' + b'"/opt/x", ' * 200 + b'"/opt/y"]}}'
    assert findings_of(data, limits=Limits(max_metadata_bytes=1000)) == [
        (
            "AM241",
            "error",
            "metadata.json is larger than the limit of 1,000 bytes (--max-metadata-bytes)",
        )
    ]
