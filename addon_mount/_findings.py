"""The finding vocabulary: every code addon-mount can report, in one place.

Each rule has a stable code, a ``kind`` from a small documented vocabulary, a
default severity, a one-line title, the fix (``hint``) and an example. The
README's code table and ``addon-mount explain`` are generated from this module.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class Severity(enum.StrEnum):
    """How much a finding matters: errors fail the check, warnings do not."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@attrs.frozen
class Rule:
    """One documented finding code."""

    code: str
    kind: str
    severity: Severity
    title: str
    hint: str
    example: str
    #: What a user of a workload sees when an add-on with this problem is enabled.
    workload_shows: str = ""
    #: What to do when the add-on is already registered (it can never be changed).
    after_registration: str = ""
    #: One finding per archive member or file: aggregated per add-on, runtime and input.
    per_member: bool = False


# Kinds, with what each means. Order is the order of the pipeline.
KINDS: Mapping[str, str] = {
    "invalid-bundle": "the bundle directory lacks metadata.json or a single .tar.gz",
    "invalid-metadata": "metadata.json is not the JSON object the registration API expects",
    "invalid-name": "the add-on name breaks the product's naming rule",
    "invalid-path": "a requested path breaks a rule every workload relies on",
    "unsupported": "the path works but targets something the product does not support",
    "risky-path": "the path works but lands somewhere users will not expect",
    "invalid-archive": "addon.tar.gz is not a readable gzip-compressed tar archive",
    "unsafe-entry": "an archive member could escape the add-on or change privileges",
    "duplicate-entry": "the archive holds the same member more than once",
    "unused-entry": "archive content that no requested path reaches",
    "limit-exceeded": "the input is larger than the configured limit",
    "missing-entry": "a requested path is not in the archive: the link would dangle",
    "collision": "a requested path already exists in the runtime",
    "broken-parent": "a parent of the path is a symlink that dangles or loops in the runtime",
    "addon-collision": "two enabled add-ons request the same or nested paths",
    "in-place": "a live session's state: the add-on mounted and linked already, or not linked",
    "permission-denied": "the cdsw user may not create the link or read what it points to",
    "unreadable-content": "content reached through a link that cdsw may not read, list or run",
    "broken-executable": "a program the add-on ships cannot run in the runtime",
    "stray-file": "files a packing tool added by accident (macOS metadata)",
    "missing-parent": "the link's parent directory does not exist in the runtime",
    "unexpected-error": "the kernel would refuse a start-up step with an errno no rule covers",
}


def _rules(*rules: Rule) -> dict[str, Rule]:
    table = {}
    for rule in rules:
        if rule.code in table:  # pragma: no cover - guards edits to this file
            raise AssertionError(f"duplicate finding code {rule.code!r}")
        if rule.kind not in KINDS:  # pragma: no cover - guards edits to this file
            raise AssertionError(f"undocumented kind {rule.kind!r}")
        table[rule.code] = rule
    return table


E, W, N = Severity.ERROR, Severity.WARNING, Severity.INFO

# What every start-up problem comes down to once the add-on is registered: it
# can never be updated or removed, only disabled, and its name is burnt.
_REPLACE = (
    "Disable it ('addon-mount disable NAME --workspace URL') so new workloads stop "
    "mounting it, fix the bundle, check it, and register it under a new name: a "
    "registered add-on can never be updated or removed, and its name stays taken."
)
_REPLACE_LOWER = "d" + _REPLACE[1:]
# What to do about a problem the registration API may or may not have refused.
_IF_REGISTERED = (
    "If the workspace registered it anyway ('addon-mount addons --workspace URL' lists "
    "it): " + _REPLACE_LOWER
)
_IF_REFUSED = (
    "If the call failed, nothing is registered: fix the bundle and check it again. "
    + _IF_REGISTERED
)

RULES: Mapping[str, Rule] = _rules(
    # AM1xx: the bundle and its metadata.json
    Rule(
        "AM100",
        "invalid-bundle",
        E,
        "bundle has no metadata.json",
        "Put the metadata file the registration call uploads, named metadata.json, "
        "in the bundle directory.",
        "bundle/ holds only addon.tar.gz",
        workload_shows=(
            "Nothing: the registration call uploads metadata.json and the archive together, "
            "so a bundle without one cannot be registered and no workload mounts it."
        ),
        after_registration=(
            "Nothing is registered without both files: add metadata.json and check the "
            "bundle again."
        ),
    ),
    Rule(
        "AM101",
        "invalid-bundle",
        E,
        "bundle has no single archive",
        "Keep exactly one archive in the bundle: addon.tar.gz, or a single *.tar.gz.",
        "bundle/ holds a.tar.gz and b.tar.gz and no addon.tar.gz",
        workload_shows=(
            "Nothing yet: which archive is uploaded decides what every workload mounts."
        ),
        after_registration=(
            "If one of them was registered, check that one as it was sent ('addon-mount "
            "check --metadata FILE --archive FILE'); if it fails, " + _REPLACE_LOWER
        ),
    ),
    Rule(
        "AM110",
        "invalid-metadata",
        E,
        "metadata.json is not valid JSON",
        'Save metadata.json as UTF-8 JSON: {"name": "<name>", "spec": {"paths": ["/abs/path"]}}.',
        '{"name": "x", "spec": {"paths": ["/opt/x"],}}  (trailing comma)',
        workload_shows=(
            "Most likely nothing: the API cannot read the add-on's name and paths, so it "
            "should refuse the call (its answer is not documented), and no workload mounts "
            "an add-on that is not registered."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM111",
        "invalid-metadata",
        E,
        "metadata.json has a wrong or missing field",
        "Give each field the type the API expects: name a string, spec an object, "
        "spec.paths a non-empty list of strings.",
        '{"name": "x", "spec": {"paths": "/opt/x"}}  (paths is not a list)',
        workload_shows=(
            "Most likely nothing: the API should refuse metadata without a name and a list "
            "of paths (its answer is not documented); a workload mounts only registered "
            "add-ons."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM112",
        "invalid-metadata",
        W,
        "metadata.json has an unknown field",
        "Remove the field: the registration API ignores it, so it does nothing.",
        '{"name": "x", "version": "1", "spec": {"paths": ["/opt/x"]}}',
        workload_shows=("Nothing: the API ignores the field."),
        after_registration=(
            "Nothing to do: the field had no effect; leave it out of the next add-on's metadata."
        ),
    ),
    Rule(
        "AM120",
        "invalid-name",
        E,
        "add-on name breaks the naming rule",
        "Use 1 to 35 characters from a-z, 0-9, '_' and '-'. A registered name is "
        "burnt forever, so choose it before registering.",
        '"name": "My.Addon"',
        workload_shows=(
            "Nothing if the API refuses the name, as the documented naming rule says it "
            "must: the add-on is not registered and no workload mounts it."
        ),
        after_registration=(
            "If the call failed, nothing is registered and no name is taken: choose a "
            "valid name and check again. " + _IF_REGISTERED
        ),
    ),
    Rule(
        "AM130",
        "invalid-path",
        E,
        "path is not absolute",
        "Write the path the workload sees, starting with '/'.",
        '"paths": ["usr/bin/tool"]',
        workload_shows=(
            "The link is made relative to whatever directory the start-up runs in (not "
            "documented), not at the path users look for: they find nothing there."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM131",
        "invalid-path",
        E,
        "path ends with '/'",
        "Drop the trailing '/': the product rejects it and the link is the path itself.",
        '"paths": ["/opt/tool/"]',
        workload_shows=(
            "Nothing if the API refuses it, as the documentation says paths must not end "
            "with '/': the add-on is not registered."
        ),
        after_registration=(
            "If the call failed, nothing is registered: drop the '/' and check again. "
            + _IF_REGISTERED
        ),
    ),
    Rule(
        "AM132",
        "invalid-path",
        E,
        "path is not normalized",
        "Remove '.', '..' and repeated '/' so the path names one place.",
        '"paths": ["/opt/../usr//bin/tool"]',
        workload_shows=(
            "The link is made where the path resolves, and '..' after a symlinked directory "
            "goes to the link target's parent: users may find the content somewhere else "
            "than the path reads, or the link fails."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM133",
        "invalid-path",
        E,
        "path is listed twice",
        "List each path once.",
        '"paths": ["/opt/tool", "/opt/tool"]',
        workload_shows=(
            "The second symlink fails with 'File exists' (EEXIST), the first having made "
            "the path; whether that stops the workload is not documented."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM134",
        "invalid-path",
        E,
        "path is nested inside another path of the add-on",
        "Request only the outer path: the inner one already comes through its link.",
        '"paths": ["/opt/tool", "/opt/tool/bin"]',
        workload_shows=(
            "The inner symlink is made through the outer link, inside the read-only mount: "
            "it fails with 'File exists' (EEXIST) where the archive has the path, "
            "'Read-only file system' (EROFS) where not."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM135",
        "invalid-path",
        E,
        "path is in a location the platform owns",
        "Choose a path outside /runtime-addons, /proc, /sys and /dev; the platform "
        "mounts over those.",
        '"paths": ["/runtime-addons/tool"]',
        workload_shows=(
            "The platform mounts /runtime-addons, /proc, /sys and /dev over the runtime: "
            "the link is hidden by the mount or fails, and under /runtime-addons it looks "
            "like an add-on's mount."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM136",
        "invalid-path",
        E,
        "path is the root directory",
        "Request a path below '/': the root always exists.",
        '"paths": ["/"]',
        workload_shows=(
            "The symlink at '/' fails with 'File exists' (EEXIST): the root always exists."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM140",
        "risky-path",
        W,
        "path is in the project volume",
        "Choose a path outside /home/cdsw: the project's files are mounted there, so the "
        "link would appear among users' files or collide with them.",
        '"paths": ["/home/cdsw/tool"]',
        workload_shows=(
            "The link appears among the project's own files in /home/cdsw, in every "
            "project, and fails with 'File exists' (EEXIST) where a project has a file of "
            "that name."
        ),
        after_registration="If users can live with the link among their files, nothing; otherwise "
        + _REPLACE_LOWER,
    ),
    Rule(
        "AM141",
        "unsupported",
        W,
        "path injects a Python or R library",
        "Build a custom runtime instead: injecting Python or R libraries through an "
        "add-on is not supported.",
        '"paths": ["/usr/local/lib/python3.10/site-packages/mylib"]',
        workload_shows=(
            "The library is importable as long as it matches each runtime's Python or R; it "
            "is not supported, and breaks (ImportError, crashes) where a runtime's "
            "interpreter differs."
        ),
        after_registration=(
            "Move the library to a custom runtime; if it breaks workloads meanwhile, "
            + _REPLACE_LOWER
        ),
    ),
    # AM2xx: the archive
    Rule(
        "AM200",
        "invalid-archive",
        E,
        "archive is not gzip-compressed",
        "Create it with 'tar -czf addon.tar.gz <top-level dirs>': the platform expects gzip.",
        "addon.tar.gz is really a plain tar, or bzip2, xz, zstd or zip",
        workload_shows=(
            "Not documented: the platform expects gzip; if it registers the archive but "
            "cannot unpack it, the mount holds nothing and every link dangles ('No such "
            "file or directory', ENOENT)."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM201",
        "invalid-archive",
        E,
        "archive is truncated or corrupt",
        "Create the archive again and compare its checksum with the copy you upload.",
        "the upload stopped half way: unexpected end of data in member usr/bin/tool",
        workload_shows=(
            "Not documented: what is unpacked from a damaged archive; the members after the "
            "damage are missing, so the links to them dangle (ENOENT)."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM202",
        "invalid-archive",
        E,
        "tar cannot extract a member where the archive puts it",
        "Keep one member per name: a file and a directory of the same name, or members "
        "below a file, come from archives made twice into one; 'addon-mount pack' refuses "
        "them.",
        "member 'opt/tool/y' is below 'opt/tool', a file in the archive",
        per_member=True,
        workload_shows=(
            "GNU tar stops with an error ('Not a directory', or 'File exists' for a file over "
            "a directory with members); whether the platform registers the add-on then, and "
            "with which members, is not documented. Links to the members left out dangle "
            "(ENOENT)."
        ),
        after_registration=_IF_REFUSED,
    ),
    Rule(
        "AM210",
        "unsafe-entry",
        E,
        "member name escapes the add-on root",
        "Create the archive from inside the root, with relative names: "
        "'tar -C root -czf addon.tar.gz usr opt'.",
        "member '/etc/passwd' or '../../etc/passwd'",
        per_member=True,
        workload_shows=(
            "Depends on the platform's extractor (not documented): the member lands outside "
            "the add-on's directory or is dropped; either way the path it names is not in "
            "the mount."
        ),
        after_registration="Disable it at once: " + _REPLACE_LOWER,
    ),
    Rule(
        "AM211",
        "unsafe-entry",
        E,
        "link member points outside the add-on",
        "Make the link relative and keep its target inside the archive.",
        "member 'opt/tool/lib' -> '../../../etc'",
        per_member=True,
        workload_shows=(
            "The link in the mount resolves outside the add-on, in the runtime: it dangles "
            "('No such file or directory', ENOENT) where the runtime lacks the target, and "
            "shows the runtime's own files where it has it."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM212",
        "unsafe-entry",
        W,
        "symlink member points into the runtime",
        "The link works only in runtimes that have its target; ship the target in "
        "the archive, or check it exists in every runtime.",
        "member 'opt/tool/java' -> '/usr/lib/jvm/default-java'",
        per_member=True,
        workload_shows=(
            "Works in runtimes that have the target; in the others the link dangles ('No "
            "such file or directory', ENOENT)."
        ),
        after_registration="Where every runtime users pick has the target, nothing; otherwise "
        + _REPLACE_LOWER,
    ),
    Rule(
        "AM213",
        "unsafe-entry",
        E,
        "member is a device, FIFO or socket",
        "Remove it: an add-on can only carry files, directories and links.",
        "member 'opt/tool/null' is a character device",
        per_member=True,
        workload_shows=(
            "Not documented: the member may be dropped, or fail the unpacking; nothing in a "
            "workload can use it."
        ),
        after_registration="If workloads start and work, nothing; otherwise " + _REPLACE_LOWER,
    ),
    Rule(
        "AM214",
        "unsafe-entry",
        E,
        "member is setuid or setgid",
        "Clear the bit ('chmod u-s,g-s'): an add-on must not raise privileges.",
        "member 'usr/bin/tool' has mode 4755",
        per_member=True,
        workload_shows=(
            "Whether the bit survives the mount is not documented (read-only add-on mounts "
            "are likely nosuid); where it does, the program runs with its owner's "
            "privileges for every user."
        ),
        after_registration="Disable it at once: " + _REPLACE_LOWER,
    ),
    Rule(
        "AM220",
        "duplicate-entry",
        W,
        "member appears more than once",
        "Create the archive again from one tree; extractors keep only the last copy.",
        "'usr/bin/tool' appears twice",
        per_member=True,
        workload_shows=(
            "The last copy is the one unpacked (GNU tar and bsdtar both keep it): users get "
            "that content, which may not be the one intended."
        ),
        after_registration="If the last copy is the right one, nothing; otherwise "
        + _REPLACE_LOWER,
    ),
    Rule(
        "AM230",
        "unused-entry",
        N,
        "archive content no requested path reaches",
        "Request a path that covers it, or leave it out of the archive.",
        "archive has opt/extra/ but paths only name /opt/tool",
        workload_shows=(
            "Nothing: the content is mounted, under /runtime-addons only, and no link reaches it."
        ),
        after_registration="Nothing to do; leave it out of the next add-on.",
    ),
    Rule(
        "AM240",
        "limit-exceeded",
        E,
        "archive exceeds a limit",
        "Make the archive smaller, or raise the limit with the flag the message names "
        "if the size is intended.",
        "more than 1,000,000 members",
        workload_shows=(
            "These are addon-mount's limits, not the platform's, which are not documented: "
            "an archive this large costs every workload's start-up, or may be refused."
        ),
        after_registration="If workloads start and work, nothing; otherwise " + _REPLACE_LOWER,
    ),
    Rule(
        "AM241",
        "limit-exceeded",
        E,
        "metadata exceeds a limit",
        "Make metadata.json smaller, or raise the limit with the flag the message names.",
        "more than 1,000 paths",
        workload_shows=(
            "These are addon-mount's limits, not the platform's, which are not documented: "
            "so many paths cost every workload's start-up, one symlink each."
        ),
        after_registration="If workloads start and work, nothing; otherwise " + _REPLACE_LOWER,
    ),
    # AM3xx: the simulated workload start-up
    Rule(
        "AM250",
        "stray-file",
        W,
        "macOS metadata files in the archive",
        "Pack without them: 'COPYFILE_DISABLE=1 tar ...' on a Mac, or 'addon-mount pack', "
        "which leaves out ._* files, .DS_Store and __MACOSX/.",
        "opt/tool/._run, opt/tool/.DS_Store",
        per_member=True,
        workload_shows=(
            '"ls -a" in the linked directories shows the ._* and .DS_Store files; tools that '
            "load every file of a directory (plugins, jars, configs) may choke on them."
        ),
        after_registration=(
            "Harmless where nothing loads every file of a directory; otherwise " + _REPLACE
        ),
    ),
    Rule(
        "AM300",
        "missing-entry",
        E,
        "requested path is not in the archive",
        "Add the path to the archive under its name without the leading '/', or "
        "remove it from spec.paths: a dangling link breaks every workload.",
        '"/usr/bin/tool" requested but the archive has no usr/bin/tool',
        workload_shows=(
            "The link is there but dangles: 'ls -l' shows it, and opening or running the "
            "path fails with 'No such file or directory' (ENOENT). The docs say such an "
            "add-on breaks user workloads."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM301",
        "collision",
        E,
        "path already exists in the runtime",
        "Choose a path the runtime does not have (for example under /opt/<addon>), or "
        "ship the content under a new name.",
        '"/usr/bin/env": the runtime already has a file there',
        workload_shows=(
            "The start-up's symlink fails with 'File exists' (EEXIST): the path keeps the "
            "runtime's own file or directory, and whether the workload then fails to start "
            "or starts without the add-on's content is not documented."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM302",
        "collision",
        E,
        "a parent of the path is not a directory in the runtime",
        "Choose a path whose parents are directories in every runtime.",
        '"/usr/bin/env/extra": /usr/bin/env is a file',
        workload_shows=(
            "The start-up fails with 'Not a directory' (ENOTDIR): the path cannot exist, "
            "and whatever expects the add-on's content there finds nothing."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM303",
        "broken-parent",
        E,
        "a parent of the path is a dangling symlink",
        "Choose a path whose parents are real directories in every runtime: cdsw cannot "
        "create a directory where a symlink already stands, and the link would go nowhere.",
        '"/opt/data/tool": /opt/data is a symlink to /mnt/data, which does not exist',
        workload_shows=(
            "The start-up fails with 'No such file or directory' (ENOENT) although the "
            "parent seems to be there: 'ls -l' shows the parent as a symlink to a missing "
            "target."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM304",
        "broken-parent",
        E,
        "a parent of the path is a symlink loop",
        "Choose a path that does not pass through the looping symlink the message names; "
        "the kernel gives up after 40 symlinks (ELOOP).",
        '"/opt/loop/tool": /opt/loop is a symlink to loop, itself',
        workload_shows=(
            "The start-up fails with 'Too many levels of symbolic links' (ELOOP), and so "
            "does every use of the path."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM310",
        "addon-collision",
        E,
        "two add-ons request the same or nested paths",
        "Give each add-on its own paths; only one link can stand at a path, and nothing "
        "can be linked inside another add-on's read-only mount (Cloudera's /opt/spark, "
        "/etc/hadoop/conf included).",
        'add-on a requests "/opt/tool", add-on b requests "/opt/tool/bin"',
        workload_shows=(
            "Only one add-on's link stands at the path (whichever started first); the other "
            "add-on's content there is unreachable, so its users get the wrong files or 'No "
            "such file or directory'. A path inside another add-on's link is inside its "
            "read-only mount: the start-up's symlink fails with 'Read-only file system' "
            "(EROFS)."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM311",
        "addon-collision",
        E,
        "add-on name is already taken",
        "Choose another name: a registered name can never be reused, even after the "
        "add-on is disabled.",
        'two bundles named "tool"',
        workload_shows=(
            "Registration is refused, or the workload mounts only one of the two add-ons "
            "under that name; which one is not documented."
        ),
        after_registration=(
            "Register the new add-on under another name: a taken name can never be reused, "
            "even after the add-on that holds it is disabled."
        ),
    ),
    Rule(
        "AM312",
        "in-place",
        N,
        "add-on already mounted and linked in this runtime",
        "Nothing to do if the runtime is a live session with this add-on enabled; if it is "
        "another add-on of the same name, the name is taken: choose another.",
        "a snapshot of a live session holds /runtime-addons/custom-addon-tool and its links",
        workload_shows="Nothing: the add-on is already mounted and linked as requested.",
        after_registration=(
            "Nothing to do for this add-on. A different add-on of the same name cannot be "
            "registered: choose another name."
        ),
    ),
    Rule(
        "AM313",
        "in-place",
        E,
        "a requested path was never linked in this workload",
        "Start a new workload: links are made at start-up, so one started before the add-on "
        "was enabled has none. If a new workload lacks the link too, run 'addon-mount check' "
        "on the bundle against this runtime: it names what stops the start-up.",
        '"/opt/tool" is requested by tool, its mount is there, and nothing is at /opt/tool',
        workload_shows=(
            "The path does not exist: using it fails with 'No such file or directory' "
            "(ENOENT), though the add-on's mount is under /runtime-addons."
        ),
        after_registration=(
            "Nothing to change if new workloads have the link; otherwise " + _REPLACE_LOWER
        ),
    ),
    Rule(
        "AM320",
        "permission-denied",
        E,
        "cdsw may not create the link",
        "Choose a path whose parent cdsw may write in every runtime: the message names "
        "the directory that blocks (owner and mode) and a place cdsw may link instead.",
        '"/var/lib/tool": /var/lib is root\'s, mode 755',
        workload_shows=(
            "The start-up's symlink fails with 'Permission denied' (EACCES): the path does "
            "not exist in the workload."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM321",
        "permission-denied",
        E,
        "cdsw may not read what the link points to",
        "Make the content readable by all in the archive ('chmod -R a+rX' before tar): "
        "the archive keeps its modes and owners, and cdsw is not the owner.",
        '"/opt/tool/key.pem" has mode 600 owned by uid 0',
        workload_shows=(
            "The link resolves, but opening, listing or running what it points to fails "
            "with 'Permission denied' (EACCES) for every user of the workload."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM322",
        "unreadable-content",
        E,
        "content below a link cdsw may not read",
        "Make the content readable by all before packing ('chmod -R a+rX'; "
        "'addon-mount pack' does it): the mount keeps the archive's modes and owners.",
        '"/opt/tool" links a directory holding key.pem, mode 600 owned by uid 0',
        per_member=True,
        workload_shows=(
            "Opening or listing that content fails with 'Permission denied' (EACCES), in "
            "every workload; tools that read their whole tree fail at start."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM323",
        "unreadable-content",
        E,
        "executable cdsw may not run",
        "Give the program x permission for all ('chmod a+rx'): it has x bits only for "
        "its owner or group, and cdsw is neither.",
        '"/opt/tool/bin/run": mode 700, owner uid 501',
        per_member=True,
        workload_shows=(
            "Running the program fails with 'Permission denied' (EACCES); a shell prints "
            "'permission denied: <path>'."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM324",
        "unreadable-content",
        W,
        "file in a bin directory is not executable",
        "Set its x bits ('chmod a+x') if it is a command; move it out of bin/ if it is not.",
        '"/usr/local/bin/tool": mode 644',
        per_member=True,
        workload_shows=(
            "Running the command fails with 'Permission denied' (EACCES); a shell prints "
            "'permission denied: <path>'."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM330",
        "missing-parent",
        W,
        "the link's parent directory does not exist",
        "Choose a path whose parent exists in the runtime; cdsw could create it here, "
        "but the product does not promise to.",
        '"/opt/vendor/tool": /opt/vendor does not exist',
        workload_shows=(
            "Nothing, if cdsw created the missing parent as this check assumes; if the "
            "platform does not create it, the link is missing and the path gives 'No such "
            "file or directory' (ENOENT)."
        ),
        after_registration=(
            "If the path works in a new workload ('addon-mount doctor' there), nothing is "
            "needed; otherwise disable the add-on, and register a fixed one under a new "
            "name."
        ),
    ),
    Rule(
        "AM340",
        "broken-executable",
        E,
        "script interpreter is missing",
        "Use an interpreter the runtime has (see the message), or ship it in the add-on; "
        "'#!/usr/bin/env NAME' finds NAME on the workload's PATH.",
        '"/opt/tool/bin/report" starts with #!/usr/bin/php, which the runtime lacks',
        per_member=True,
        workload_shows=(
            "Running the script fails: the shell prints 'bad interpreter: No such file or "
            "directory', or env says 'No such file or directory'."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM341",
        "broken-executable",
        E,
        "script has Windows line endings",
        "Convert the script to LF line endings ('sed -i s/\\r$//' or dos2unix): the "
        "kernel looks for an interpreter named with a trailing carriage return.",
        "#!/usr/bin/python3\\r: bad interpreter",
        per_member=True,
        workload_shows=(
            'Running the script fails: the shell prints "/bin/sh^M: bad interpreter: No such '
            'file or directory".'
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM343",
        "broken-executable",
        E,
        "script's #! line follows a byte order mark",
        "Save the script as UTF-8 without a byte order mark ('sed -i \"1s/^\\xEF\\xBB\\xBF//\"'): "
        "the kernel reads '#!' only as a file's first two bytes.",
        '"/opt/tool/bin/run" starts with EF BB BF, then #!/bin/sh',
        per_member=True,
        workload_shows=(
            "Running the program directly (subprocess, exec, a Jupyter kernel spec) fails "
            "with 'Exec format error' (ENOEXEC); a shell runs it with /bin/sh instead of "
            "its interpreter."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM342",
        "broken-executable",
        E,
        "program's dynamic loader is missing",
        "Build the program for the runtime's platform, or link it statically: the ELF "
        "program interpreter it names is not in the runtime.",
        '"/opt/tool/bin/static" needs /lib/ld-musl-x86_64.so.1',
        per_member=True,
        workload_shows=(
            "Running the program fails with 'No such file or directory' although the file is "
            "there: the kernel cannot find its loader."
        ),
        after_registration=_REPLACE,
    ),
    Rule(
        "AM390",
        "unexpected-error",
        E,
        "a start-up step fails with an unexpected error",
        "Read the errno in the message: the kernel would refuse this step for a reason no "
        "other rule covers (a name too long, a read-only filesystem); choose another path.",
        '"/opt/vendor/tool": /opt/vendor is a symlink to a 300-byte name (ENAMETOOLONG)',
        workload_shows=(
            "The start-up step fails with the errno the message names, and the path is "
            "missing in the workload."
        ),
        after_registration=_REPLACE,
    ),
)


def rule(code: str) -> Rule:
    """Return the rule for *code*; raise ``KeyError`` for an unknown code."""
    return RULES[code]


def markdown_table() -> str:
    """The code table the README shows, generated from :data:`RULES`."""
    lines = [
        "| code | kind | severity | what | example | fix |",
        "|---|---|---|---|---|---|",
    ]
    for r in RULES.values():
        cells = [r.code, r.kind, r.severity.value, r.title, r.example, r.hint]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
