"""The add-on spec: metadata.json parsed leniently, then validated strictly.

Parsing never stops at the first problem: every rule a workload relies on is
checked and each broken one becomes a finding naming the key path (like
``spec.paths[3]``), what was expected and what was found.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ._findings import Severity
from ._limits import DEFAULT_LIMITS, Limits
from ._report import Finding

NAME_RE: Final = re.compile(r"[a-z0-9_-]{1,35}")
REGISTERED_PREFIX: Final = "custom-addon-"
ADDON_MOUNT_ROOT: Final = "/runtime-addons"
PROJECT_VOLUME: Final = "/home/cdsw"
PLATFORM_ROOTS: Final = ("/runtime-addons", "/proc", "/sys", "/dev")
KNOWN_TOP_KEYS: Final = frozenset({"name", "spec"})
KNOWN_SPEC_KEYS: Final = frozenset({"paths"})
NAME_MAX: Final = 255

# Python and R library locations: the docs say injecting libraries through an
# add-on is not supported, so a path at or under one of these is a warning.
_LIBRARY_COMPONENT_RE: Final = re.compile(r"site-packages|dist-packages|site-library")
_PYTHON_LIB_RE: Final = re.compile(r"/lib(?:64)?/python\d+(?:\.\d+)?(?:/|$)")
_R_LIBRARY_ROOTS: Final = ("/usr/lib/R", "/usr/local/lib/R", "/usr/share/R", "/opt/R")


def registered_name(name: str) -> str:
    """The name an add-on is known by once registered."""
    return REGISTERED_PREFIX + name


def staging_root(name: str) -> str:
    """Where the workload mounts the add-on's archive."""
    return f"{ADDON_MOUNT_ROOT}/{registered_name(name)}"


def is_within(path: str, root: str) -> bool:
    """True when *path* is *root* or lies below it (both absolute, normalized)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


@attrs.frozen
class AddonSpec:
    """A validated add-on: its name and the requested paths that passed every rule."""

    name: str
    paths: tuple[str, ...]

    @property
    def registered_name(self) -> str:
        return registered_name(self.name)

    @property
    def staging_root(self) -> str:
        return staging_root(self.name)

    def target_of(self, path: str) -> str:
        """The link target for requested *path*: its place in the mounted add-on."""
        return self.staging_root + path


@attrs.frozen
class ParsedMetadata:
    """The result of reading metadata.json: a spec if one could be made, and findings.

    ``spec`` is ``None`` when there is no usable name or no valid path; ``raw_name``
    and ``raw_paths`` keep what the file said, for the report.
    """

    spec: AddonSpec | None
    findings: tuple[Finding, ...]
    raw_name: str | None
    raw_paths: tuple[str, ...]


class _Collector:
    def __init__(self, addon: str | None, source: str | None) -> None:
        self.addon = addon
        self.source = source
        self.findings: list[Finding] = []

    def add(
        self, code: str, message: str, path: str | None = None, severity: Severity | None = None
    ) -> None:
        extra: dict[str, Any] = {} if severity is None else {"severity": severity}
        self.findings.append(
            Finding(code, message, addon=self.addon, path=path, source=self.source, **extra)
        )


class _Object(dict[str, Any]):
    """A JSON object as parsed, remembering the first key it was given twice."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object()
    for key, value in pairs:
        if key in result and result.duplicate is None:
            result.duplicate = key
        result[key] = value
    return result


class _NotJsonError(ValueError):
    """A value Python's json module accepts but JSON does not have."""


def _reject_constant(name: str) -> float:
    raise _NotJsonError(f"{name} is not a JSON value (JSON has no NaN, Infinity or -Infinity)")


def _parse_int(text: str) -> int | float:
    # Only a number's type matters here, and int() refuses thousands of digits.
    return int(text) if len(text) <= 100 else float(text)


#: What decode_json returns when the bytes are not usable JSON (null is a JSON value).
UNDECODABLE: Final = object()


def _json_type(value: object) -> str:
    # isinstance, not type(): objects are parsed as a dict subclass.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _nesting_depth(text: str) -> int:
    # Measured on the text, before json.loads, so a hostile file cannot exhaust the stack.
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode_json(data: bytes, out: _Collector, limits: Limits) -> object:
    """Decode metadata bytes to a JSON value, or record why not and return UNDECODABLE."""
    if len(data) > limits.max_metadata_bytes:
        # The caller may pass only the first limit + 1 bytes, so the real size is unknown.
        out.add(
            "AM241",
            f"metadata.json is larger than the limit of "
            f"{limits.max_metadata_bytes:,} bytes ({Limits.flag('max_metadata_bytes')})",
        )
        return UNDECODABLE
    if not data.strip():
        out.add(
            "AM110",
            "metadata.json is empty; expected a JSON object "
            '{"name": ..., "spec": {"paths": [...]}}',
        )
        return UNDECODABLE
    if data.startswith(b"\xef\xbb\xbf"):
        out.add(
            "AM110",
            "metadata.json starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM",
        )
        return UNDECODABLE
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add(
            "AM110",
            "metadata.json starts with a UTF-16 byte-order mark; save it as UTF-8 without BOM",
        )
        return UNDECODABLE
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.add(
            "AM110",
            f"metadata.json is not UTF-8: byte {data[exc.start]:#04x} at offset "
            f"{exc.start} cannot be decoded",
        )
        return UNDECODABLE
    depth = _nesting_depth(text)
    if depth > limits.max_json_depth:
        out.add(
            "AM110",
            f"metadata.json nests {depth} levels deep; expected at most "
            f"{limits.max_json_depth} ({Limits.flag('max_json_depth')}; the format needs 3)",
        )
        return UNDECODABLE
    try:
        value: object = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        out.add(
            "AM110",
            f"metadata.json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        )
    except (ValueError, RecursionError) as exc:  # NaN, or a hook's refusal
        out.add("AM110", f"metadata.json is not valid JSON: {exc}")
    else:
        problem = _first_problem(value, "")
        if problem is None:
            return value
        out.add("AM110", problem)
    return UNDECODABLE


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _first_problem(value: object, where: str) -> str | None:
    """The first key given twice or unpaired surrogate, in document order, as a message.

    json.loads lets both through: a repeated key silently keeps its last value,
    and a lone \\ud800 escape becomes a string no UTF-8 file or API can carry.
    """
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return _surrogate(found.group(), where or "the top-level value") if found else None
    if isinstance(value, _Object) and value.duplicate is not None:
        return (
            f"metadata.json has the key {_key_path(where, value.duplicate)!r} twice; "
            "a JSON object must name each key once"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            found = _SURROGATE.search(key)
            if found:
                return _surrogate(found.group(), f"a key of {where or 'the top-level object'}")
            problem = _first_problem(item, _key_path(where, key))
            if problem:
                return problem
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = _first_problem(item, f"{where}[{i}]")
            if problem:
                return problem
    return None


def _surrogate(char: str, where: str) -> str:
    return (
        f"metadata.json has an unpaired surrogate escape {char!r} in {where}; expected "
        "valid Unicode text (a \\u escape from U+D800 to U+DFFF needs its pair)"
    )


def check_name(name: str, out: _Collector) -> None:
    """Apply the product's naming rule; record a finding if it is broken."""
    if NAME_RE.fullmatch(name):
        return
    if not name:
        problem = "is empty"
    elif len(name) > 35:
        problem = f"is {len(name)} characters long, more than 35"
    else:
        bad = sorted({c for c in name if not re.fullmatch(r"[a-z0-9_-]", c)})
        problem = "contains " + ", ".join(repr(c) for c in bad)
        if any(c.isupper() for c in bad):
            problem += " (uppercase letters are not allowed)"
    out.add(
        "AM120", f"name {name!r} {problem}; expected 1 to 35 characters from a-z, 0-9, '_' and '-'"
    )


def check_path(path: str, key: str, out: _Collector, limits: Limits) -> bool:
    """Apply the rules a single requested path must meet; return True if it may be linked."""
    if not path.startswith("/"):
        out.add("AM130", f"{key} {path!r} is not absolute; expected a path starting with '/'", path)
        return False
    if path == "/":
        out.add("AM136", f"{key} is '/', the root directory, which always exists", path)
        return False
    if path.endswith("/"):
        out.add("AM131", f"{key} {path!r} ends with '/'; expected {path.rstrip('/')!r}", path)
        return False
    if "\x00" in path:
        out.add("AM132", f"{key} {path!r} contains a NUL character", path)
        return False
    encoded = len(path.encode("utf-8", "surrogatepass"))
    components = path[1:].split("/")
    if encoded > limits.max_path_length or len(components) > limits.max_path_depth:
        out.add(
            "AM241",
            f"{key} is {encoded} bytes in {len(components)} components; the limit "
            f"is {limits.max_path_length} bytes ({Limits.flag('max_path_length')}) and "
            f"{limits.max_path_depth} components ({Limits.flag('max_path_depth')})",
            path,
        )
        return False
    long_names = [c for c in components if len(c.encode("utf-8", "surrogatepass")) > NAME_MAX]
    if long_names:
        out.add(
            "AM132",
            f"{key} has a component of {len(long_names[0])} characters; "
            f"a file name may have at most {NAME_MAX} bytes",
            path,
        )
        return False
    if posixpath.normpath(path) != path or "" in components:
        out.add(
            "AM132",
            f"{key} {path!r} is not normalized; expected "
            f"{posixpath.normpath(path)!r} (no '.', '..' or '//')",
            path,
        )
        return False
    for root in PLATFORM_ROOTS:
        if is_within(path, root):
            out.add(
                "AM135",
                f"{key} {path!r} is under {root}, which the platform mounts "
                "over; the link would be hidden or break the mount",
                path,
            )
            return False
    if is_within(path, PROJECT_VOLUME):
        out.add(
            "AM140",
            f"{key} {path!r} is in the project volume {PROJECT_VOLUME}: the "
            "link would appear among the project's files, in every project",
            path,
        )
    if _is_library_path(path):
        out.add(
            "AM141",
            f"{key} {path!r} is a Python or R library location; injecting "
            "libraries through an add-on is not supported",
            path,
        )
    return True


def _is_library_path(path: str) -> bool:
    if any(_LIBRARY_COMPONENT_RE.fullmatch(c) for c in path.split("/")):
        return True
    if _PYTHON_LIB_RE.search(path):
        return True
    return any(is_within(path, root) for root in _R_LIBRARY_ROOTS)


def parse_metadata(
    data: bytes,
    *,
    fallback_name: str,
    source: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ParsedMetadata:
    """Read metadata.json bytes into a spec and every finding about them.

    *fallback_name* labels findings when the file gives no usable name (the
    bundle directory's name is the natural choice).
    """
    out = _Collector(fallback_name, source)
    value = decode_json(data, out, limits)
    if value is UNDECODABLE:
        return ParsedMetadata(None, tuple(out.findings), None, ())
    if not isinstance(value, dict):
        out.add(
            "AM111",
            f"metadata.json holds {_json_type(value)}; expected an object "
            '{"name": ..., "spec": {"paths": [...]}}',
        )
        return ParsedMetadata(None, tuple(out.findings), None, ())

    name: str | None = None
    raw_name = value.get("name")
    if "name" not in value:
        out.add("AM111", "key 'name' is missing; expected a string")
    elif not isinstance(raw_name, str):
        out.add("AM111", f"key 'name' is {_json_type(raw_name)}; expected a string")
    else:
        # Nothing was recorded before this point (a bad JSON value returns early),
        # so every finding from here on carries the add-on's own name.
        out.addon = raw_name or fallback_name
        check_name(raw_name, out)
        # A name that breaks the rule is still used to stage the simulation, so every
        # other problem is found in the same run, unless it cannot name a directory.
        if (
            raw_name
            and "/" not in raw_name
            and "\x00" not in raw_name
            and raw_name not in {".", ".."}
        ):
            name = raw_name

    for key in sorted(set(value) - KNOWN_TOP_KEYS):
        out.add(
            "AM112",
            f"unknown key {key!r}; the registration API reads only 'name' and 'spec'",
            severity=None,
        )

    raw_paths = _read_paths(value, out, limits)
    valid = _validate_paths(raw_paths, out, limits)
    if name is None:
        # No usable name: stage under the bundle's label, so every other problem
        # (archive, start-up) is still found in the same run.
        name = _stand_in_name(fallback_name)
    spec = AddonSpec(name, tuple(valid)) if valid else None
    shown_name = raw_name if isinstance(raw_name, str) else None
    return ParsedMetadata(spec, tuple(out.findings), shown_name, tuple(p for _, p in raw_paths))


def _stand_in_name(label: str) -> str:
    """A directory name for staging an add-on whose metadata names none."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in label)
    return cleaned.lower().strip("-")[:35] or "addon"


def _read_paths(value: dict[str, Any], out: _Collector, limits: Limits) -> list[tuple[str, str]]:
    if "spec" not in value:
        out.add("AM111", "key 'spec' is missing; expected an object with 'paths'")
        return []
    spec = value["spec"]
    if not isinstance(spec, dict):
        out.add("AM111", f"key 'spec' is {_json_type(spec)}; expected an object with 'paths'")
        return []
    for key in sorted(set(spec) - KNOWN_SPEC_KEYS):
        out.add("AM112", f"unknown key 'spec.{key}'; the registration API reads only 'spec.paths'")
    if "paths" not in spec:
        out.add("AM111", "key 'spec.paths' is missing; expected a list of absolute paths")
        return []
    paths = spec["paths"]
    if not isinstance(paths, list):
        out.add(
            "AM111", f"key 'spec.paths' is {_json_type(paths)}; expected a list of absolute paths"
        )
        return []
    if not paths:
        out.add("AM111", "key 'spec.paths' is an empty list; expected at least one path")
        return []
    if len(paths) > limits.max_paths:
        out.add(
            "AM241",
            f"spec.paths has {len(paths):,} entries, more than the limit of "
            f"{limits.max_paths:,} ({Limits.flag('max_paths')})",
        )
        return []
    result = []
    for i, item in enumerate(paths):
        key = f"spec.paths[{i}]"
        if isinstance(item, str):
            result.append((key, item))
        else:
            out.add("AM111", f"key '{key}' is {_json_type(item)}; expected a string")
    return result


def _validate_paths(
    raw_paths: Sequence[tuple[str, str]], out: _Collector, limits: Limits
) -> list[str]:
    valid: list[str] = []
    seen: dict[str, str] = {}
    for key, path in raw_paths:
        if path in seen:
            out.add("AM133", f"{key} {path!r} is listed already as {seen[path]}", path)
            continue
        seen[path] = key
        if check_path(path, key, out, limits):
            valid.append(path)
    # Nesting is checked among the valid paths only; each nested path is reported once,
    # against the outermost path that holds it.
    keep: list[str] = []
    for path in sorted(valid):
        outer = next((k for k in keep if is_within(path, k)), None)
        if outer is not None:
            out.add(
                "AM134",
                f"{seen[path]} {path!r} is inside {seen[outer]} {outer!r}; "
                "only the outer path can be linked",
                path,
            )
        else:
            keep.append(path)
    kept = set(keep)
    return [p for p in valid if p in kept]
