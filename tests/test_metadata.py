"""Tests for the metadata stage: metadata.json to a validated add-on spec."""

from __future__ import annotations

import json

import pytest

from addon_mount._metadata import parse_metadata, registered_name, staging_root


def parse(document: object) -> tuple[list[str], list[str]]:
    """(codes, messages) of parsing *document* as metadata.json."""
    result = parse_metadata(json.dumps(document).encode(), fallback_name="bundle")
    return [f.code for f in result.findings], [f.message for f in result.findings]


def doc(name: str = "tool", paths: object = None) -> dict[str, object]:
    return {"name": name, "spec": {"paths": ["/opt/tool"] if paths is None else paths}}


def test_valid_metadata_gives_spec_and_no_findings() -> None:
    """The docs' example parses into a spec with both paths and no finding."""
    result = parse_metadata(
        json.dumps(doc("docs", ["/usr/bin/custom_folder", "/usr/custom_file"])).encode(),
        fallback_name="b",
    )
    assert result.findings == ()
    assert result.spec is not None
    assert result.spec.paths == ("/usr/bin/custom_folder", "/usr/custom_file")
    assert result.spec.registered_name == "custom-addon-docs"
    assert result.spec.target_of("/usr/custom_file") == (
        "/runtime-addons/custom-addon-docs/usr/custom_file"
    )


def test_registered_name_and_staging_root() -> None:
    """A registered add-on is known as custom-addon-<name> and mounted under /runtime-addons."""
    assert registered_name("x") == "custom-addon-x"
    assert staging_root("x") == "/runtime-addons/custom-addon-x"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "is empty"),
        ("a" * 36, "is 36 characters long, more than 35"),
        ("My.Addon", "uppercase letters are not allowed"),
        ("tool kit", "contains ' '"),
        ("naïve", "contains 'ï'"),
    ],
)
def test_name_rule(name: str, fragment: str) -> None:
    """Names outside [a-z0-9_-]{1,35} are invalid-name errors saying what is wrong."""
    codes, messages = parse(doc(name))
    assert "AM120" in codes
    assert any(fragment in m for m in messages)


@pytest.mark.parametrize("name", ["a", "a" * 35, "oracle_jdbc-8", "0-9_"])
def test_name_rule_accepts_valid_names(name: str) -> None:
    """Names of 1 to 35 characters from a-z, 0-9, '_' and '-' pass."""
    codes, _ = parse(doc(name))
    assert codes == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("opt/tool", "AM130"),
        ("/opt/tool/", "AM131"),
        ("/opt//tool", "AM132"),
        ("/opt/./tool", "AM132"),
        ("/opt/x/../tool", "AM132"),
        ("/", "AM136"),
        ("/runtime-addons/x", "AM135"),
        ("/proc/x", "AM135"),
        ("/sys", "AM135"),
        ("/dev/shm/x", "AM135"),
        ("/home/cdsw/x", "AM140"),
        ("/home/cdsw", "AM140"),
        ("/usr/local/lib/python3.10/site-packages/x", "AM141"),
        ("/usr/lib/python3/dist-packages/x", "AM141"),
        ("/usr/local/lib/R/site-library/x", "AM141"),
        ("/usr/lib/R/library/x", "AM141"),
        ("/opt/conda/lib/python3.11/x", "AM141"),
    ],
)
def test_path_rules(path: str, code: str) -> None:
    """Each path rule gives its own code."""
    codes, _ = parse(doc(paths=[path]))
    assert codes == [code]


def test_runtime_path_like_names_are_not_platform_paths() -> None:
    """Paths that merely start like a platform root (/devtools, /system) are fine."""
    codes, _ = parse(doc(paths=["/devtools", "/system/x", "/procfs"]))
    assert codes == []


def test_duplicate_and_nested_paths() -> None:
    """A repeated path and a path inside another of the same add-on are errors naming both."""
    codes, messages = parse(doc(paths=["/opt/a", "/opt/a", "/opt/a/b", "/opt/ab"]))
    assert sorted(codes) == ["AM133", "AM134"]
    assert "spec.paths[1] '/opt/a' is listed already as spec.paths[0]" in messages
    assert any("spec.paths[2] '/opt/a/b' is inside spec.paths[0] '/opt/a'" in m for m in messages)


def test_nested_path_is_not_linked_but_outer_is() -> None:
    """Only the outer of two nested paths reaches the spec."""
    result = parse_metadata(
        json.dumps(doc(paths=["/opt/a/b", "/opt/a"])).encode(), fallback_name="b"
    )
    assert result.spec is not None
    assert result.spec.paths == ("/opt/a",)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "metadata.json holds an array; expected an object"),
        ({"spec": {"paths": ["/opt/x"]}}, "key 'name' is missing; expected a string"),
        ({"name": 3, "spec": {"paths": ["/opt/x"]}}, "key 'name' is a number; expected a string"),
        ({"name": "x"}, "key 'spec' is missing; expected an object with 'paths'"),
        ({"name": "x", "spec": []}, "key 'spec' is an array; expected an object with 'paths'"),
        ({"name": "x", "spec": {}}, "key 'spec.paths' is missing; expected a list"),
        ({"name": "x", "spec": {"paths": "/opt/x"}}, "key 'spec.paths' is a string; expected"),
        ({"name": "x", "spec": {"paths": []}}, "key 'spec.paths' is an empty list"),
        ({"name": "x", "spec": {"paths": ["/a", None]}}, "key 'spec.paths[1]' is null"),
    ],
)
def test_wrong_types_name_the_key(document: object, message: str) -> None:
    """Wrong or missing fields are invalid-metadata errors naming the key and the types."""
    codes, messages = parse(document)
    assert "AM111" in codes
    assert any(message in m for m in messages), messages


def test_unknown_keys_are_warnings() -> None:
    """Keys the API does not read are warnings, at both levels."""
    result = parse_metadata(
        json.dumps({"name": "x", "version": 2, "spec": {"paths": ["/opt/x"], "env": {}}}).encode(),
        fallback_name="b",
    )
    assert [(f.code, str(f.severity)) for f in result.findings] == [
        ("AM112", "warning"),
        ("AM112", "warning"),
    ]
    assert result.spec is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "metadata.json is empty"),
        (b"   \n", "metadata.json is empty"),
        (b"\xef\xbb\xbf{}", "starts with a UTF-8 byte-order mark"),
        (b'{"name": "\xff"}', "is not UTF-8: byte 0xff at offset 10"),
        (
            b'{"name": "x",}',
            "is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 14",
        ),
        (b'{"name": "x", "name": "y"}', "has the key 'name' twice"),
        (b"[" * 10_000 + b"]" * 10_000, "nests 10000 levels deep; expected at most 32"),
    ],
)
def test_undecodable_metadata(data: bytes, message: str) -> None:
    """Bytes that are not one JSON object give one AM110 finding saying why."""
    result = parse_metadata(data, fallback_name="bundle")
    assert result.spec is None
    assert [f.code for f in result.findings] == ["AM110"]
    assert message in result.findings[0].message
    assert result.findings[0].addon == "bundle"


def test_findings_carry_the_addon_name_and_source() -> None:
    """Findings name the add-on from the file, and the file they are about."""
    result = parse_metadata(
        json.dumps(doc("tool", ["rel"])).encode(), fallback_name="dir", source="b/metadata.json"
    )
    assert [(f.addon, f.source, f.path) for f in result.findings] == [
        ("tool", "b/metadata.json", "rel")
    ]


def test_invalid_name_still_yields_a_spec_for_simulation() -> None:
    """A name that breaks the rule is reported, yet the rest is still checked."""
    result = parse_metadata(json.dumps(doc("Tool", ["/opt/tool"])).encode(), fallback_name="b")
    assert [f.code for f in result.findings] == ["AM120"]
    assert result.spec is not None
    assert result.spec.name == "Tool"


def test_name_with_slash_is_staged_under_the_label() -> None:
    """A name that cannot name a directory is reported, and the rest is staged under the label."""
    result = parse_metadata(json.dumps(doc("a/b")).encode(), fallback_name="My Bundle")
    assert [f.code for f in result.findings] == ["AM120"]
    assert result.spec is not None
    assert result.spec.name == "my-bundle"
    assert [f.code for f in result.findings] == ["AM120"]
