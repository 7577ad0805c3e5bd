"""Tests for the workload stage: the simulated start-up on pyfakefs as cdsw."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pyfakefs import helpers

from addon_mount import Report, RuntimeImage
from addon_mount._builders import MemberSpec
from addon_mount._check import read_bundle, simulate

from .conftest import TOOL, BundleFactory


def run(runtime: RuntimeImage, *bundles: Path) -> Report:
    return simulate([read_bundle(b) for b in bundles], [runtime])


def errors(report: Report) -> list[tuple[str, str | None]]:
    return [(f.code, f.path) for f in report.findings if f.severity == "error"]


def test_clean_addon_links_every_path(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """Paths in cdsw-owned directories link to the add-on's mount and pass."""
    b = bundle(
        "tool",
        ["/opt/tool", "/usr/local/bin/run"],
        [*TOOL, ("usr/local/bin/run", "l", 0o777, "../../../opt/tool/bin/run")],
    )
    report = run(runtime, b)
    assert report.findings == ()
    assert [(link.path, link.target) for link in report.links] == [
        ("/opt/tool", "/runtime-addons/custom-addon-tool/opt/tool"),
        ("/usr/local/bin/run", "/runtime-addons/custom-addon-tool/usr/local/bin/run"),
    ]
    assert {link.runtime for link in report.links} == {"tiny"}


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/etc/hosts", "a file (owner uid 0, mode 644)"),
        ("/etc/profile.d", "a directory (owner uid 8536, mode 755)"),
        ("/bin", "a symlink to 'usr/bin' (owner uid 0, mode 777)"),
        ("/usr/bin/env", "a file (owner uid 0, mode 755)"),
    ],
)
def test_existing_path_is_a_collision(
    runtime: RuntimeImage, bundle: BundleFactory, path: str, what: str
) -> None:
    """A path the runtime has (file, directory or symlink) fails with EEXIST: AM301."""
    b = bundle("x", [path], [(path[1:], "f", 0o644, "")])
    report = run(runtime, b)
    assert errors(report) == [("AM301", path)]
    assert report.errors[0].message == (f"cannot link {path}: the runtime already has {what} there")
    assert report.links == ()


def test_collision_through_runtime_symlink(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """/bin/env collides because /bin -> usr/bin resolves to /usr/bin/env."""
    report = run(runtime, bundle("x", ["/bin/env"], [("bin/env", "f", 0o755, "")]))
    assert errors(report) == [("AM301", "/bin/env")]


def test_root_owned_parent_is_permission_denied(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """/var/lib is root's 755: cdsw gets EACCES, reported with owner and mode."""
    report = run(runtime, bundle("x", ["/var/lib/x"], [("var/lib/x", "f", 0o644, "")]))
    assert errors(report) == [("AM320", "/var/lib/x")]
    assert report.errors[0].message == (
        "cannot link /var/lib/x: cdsw (uid 8536) may not write in /var/lib: "
        "owner uid 0, group 0, mode 755"
    )


def test_unsearchable_ancestor_is_named(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """/root is 700: even a 777 directory below it is out of reach, and the message says so."""
    report = run(runtime, bundle("x", ["/root/private/x"], [("root/private/x", "f", 0o644, "")]))
    assert errors(report) == [("AM320", "/root/private/x")]
    assert report.errors[0].message == (
        "cannot link /root/private/x: cdsw (uid 8536) may not search /root: "
        "owner uid 0, group 0, mode 700"
    )


def test_conda_installed_as_root_is_denied(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """/opt/conda is root's (installed after the permission step): EACCES under it."""
    report = run(runtime, bundle("x", ["/opt/conda/x"], [("opt/conda/x", "f", 0o644, "")]))
    assert errors(report) == [("AM320", "/opt/conda/x")]


def test_missing_entry_dangles(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A path the archive lacks links but dangles: AM300 with a layout hint."""
    members: list[MemberSpec] = [("tool/bin/run", "f", 0o755, "")]
    report = run(runtime, bundle("x", ["/opt/tool"], members))
    assert errors(report) == [("AM300", "/opt/tool")]
    assert report.errors[0].message == (
        "/opt/tool would dangle: the archive has no member 'opt/tool'; it has 'tool' "
        "(the layout must mirror the absolute path: 'opt/tool')"
    )


def test_dangling_symlink_member(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A requested member that is a symlink to nothing dangles too."""
    report = run(runtime, bundle("x", ["/opt/run"], [("opt/run", "l", 0o777, "missing")]))
    assert errors(report) == [("AM300", "/opt/run")]
    assert "is a symlink to 'missing'" in report.errors[0].message


def test_symlink_member_into_runtime_resolves(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A member linking to an existing runtime path resolves (warning only)."""
    report = run(
        runtime, bundle("x", ["/opt/envlink"], [("opt/envlink", "l", 0o777, "/usr/bin/env")])
    )
    assert errors(report) == []
    assert [f.code for f in report.findings] == ["AM212"]


def test_missing_parent_is_created_with_warning(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """A missing parent under a cdsw directory is created like mkdir -p: AM330 warning."""
    report = run(
        runtime, bundle("x", ["/opt/vendor/sub/tool"], [("opt/vendor/sub/tool", "d", 0o755, "")])
    )
    assert [(f.code, str(f.severity)) for f in report.findings] == [("AM330", "warning")]
    assert report.findings[0].message == (
        "/opt/vendor/sub does not exist in the runtime; cdsw created /opt/vendor "
        "(mode 755) to link /opt/vendor/sub/tool"
    )
    assert report.ok
    assert [link.path for link in report.links] == ["/opt/vendor/sub/tool"]


def test_missing_parent_through_symlink_names_real_path(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """/lib/foo/x creates /usr/lib/foo, since /lib -> usr/lib."""
    report = run(runtime, bundle("x", ["/lib/foo/x"], [("lib/foo/x", "f", 0o644, "")]))
    assert [f.code for f in report.findings] == ["AM330"]
    assert "cdsw created /usr/lib/foo" in report.findings[0].message


def test_missing_parent_where_cdsw_may_not_create(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """A missing parent under a root directory is permission-denied, naming that directory."""
    report = run(runtime, bundle("x", ["/var/lib/tool/x"], [("var/lib/tool/x", "f", 0o644, "")]))
    assert errors(report) == [("AM320", "/var/lib/tool/x")]
    assert report.errors[0].message == (
        "cannot link /var/lib/tool/x: its parent /var/lib/tool does not exist and cdsw "
        "(uid 8536) cannot create it: it may not write in /var/lib: owner uid 0, group 0, "
        "mode 755"
    )


def test_parent_that_is_a_file(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """A path under a runtime file fails with ENOTDIR: AM302."""
    report = run(runtime, bundle("x", ["/etc/hosts/x"], [("etc/hosts/x", "f", 0o644, "")]))
    assert errors(report) == [("AM302", "/etc/hosts/x")]
    assert "/etc/hosts is a file (owner uid 0, mode 644), not a directory" in (
        report.errors[0].message
    )


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        (
            [("opt/key.pem", "f", 0o600, "secret")],
            "links to a file that cdsw (uid 8536) may not read",
        ),
        (
            [("opt/d", "d", 0o700, "")],
            "links to a directory that cdsw (uid 8536) may not read or search",
        ),
        ([("opt/d", "d", 0o700, ""), ("opt/d/x", "f", 0o644, "")], "may not read or search"),
    ],
)
def test_unreadable_content_is_permission_denied(
    runtime: RuntimeImage, bundle: BundleFactory, members: list[MemberSpec], fragment: str
) -> None:
    """Content keeps the archive's modes and owners; what cdsw cannot read is AM321."""
    path = "/" + members[0][0]
    report = run(runtime, bundle("x", [path], members))
    assert errors(report) == [("AM321", path)]
    assert fragment in report.errors[0].message


def test_unsearchable_archive_directory_blocks_content(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """A 700 directory above the requested member keeps cdsw out: AM321."""
    report = run(
        runtime, bundle("x", ["/opt/d/x"], [("opt/d", "d", 0o700, ""), ("opt/d/x", "f", 0o644, "")])
    )
    assert errors(report) == [("AM321", "/opt/d/x")]
    assert "may not search /runtime-addons/custom-addon-x/opt/d" in report.errors[0].message


def test_archive_owned_by_cdsw_is_readable(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """Owner bits apply when the archive's uid is cdsw's."""
    report = run(
        runtime, bundle("x", ["/opt/key.pem"], [("opt/key.pem", "f", 0o600, "")], uid=8536)
    )
    assert report.findings == ()


def test_archive_root_mode_applies_to_the_mount(
    runtime: RuntimeImage, bundle: BundleFactory
) -> None:
    """An archive whose '.' entry is 700 root makes the whole mount unreachable for cdsw."""
    report = run(runtime, bundle("x", ["/opt/tool"], [("./", "d", 0o700, ""), *TOOL]))
    assert errors(report) == [("AM321", "/opt/tool")]
    assert "may not search /runtime-addons/custom-addon-x" in report.errors[0].message


def test_every_path_is_checked(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """One failure does not stop the others: every path gets its verdict."""
    b = bundle("x", ["/etc/hosts", "/var/lib/x", "/opt/missing", "/opt/tool"], TOOL)
    report = run(runtime, b)
    assert sorted(errors(report)) == [
        ("AM300", "/opt/missing"),
        ("AM301", "/etc/hosts"),
        ("AM320", "/var/lib/x"),
    ]
    assert [link.path for link in report.links] == ["/opt/missing", "/opt/tool"]


def test_addon_collision_is_symmetric(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """Equal or nested paths of two add-ons fail both, whatever the order."""
    a = bundle("a", ["/opt/tool"], TOOL)
    b = bundle("b", ["/opt/tool/bin"], TOOL)
    for order in ((a, b), (b, a)):
        report = run(runtime, *order)
        assert sorted(errors(report)) == [("AM310", "/opt/tool"), ("AM310", "/opt/tool/bin")]
        assert {f.addon for f in report.errors} == {"a", "b"}
        assert len(report.links) == 1


def test_same_name_twice_is_a_collision(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """Two bundles with one name cannot both be registered: AM311 for each."""
    a = bundle("tool", ["/opt/a"], [("opt/a", "f", 0o644, "")], dirname="one")
    b = bundle("tool", ["/opt/b"], [("opt/b", "f", 0o644, "")], dirname="two")
    report = run(runtime, a, b)
    assert [f.code for f in report.errors] == ["AM311", "AM311"]


@pytest.mark.parametrize("directory", ["custom-addon-tool", "custom-addon-tool-x7k2p"])
def test_live_snapshot_has_the_addon_in_place(bundle: BundleFactory, directory: str) -> None:
    """A runtime already mounting the add-on (suffix or not) and linking it is in place."""
    from addon_mount import Entry

    from .conftest import cml_entries

    root = f"/runtime-addons/{directory}"
    image = RuntimeImage.from_entries(
        [
            *cml_entries(),
            Entry(root, "d", 0o755),
            Entry(f"{root}/opt/tool", "d", 0o755),
            Entry("/opt/tool", "l", 0o777, target=f"{root}/opt/tool"),
        ],
        name="live",
    )
    report = run(image, bundle("tool", ["/opt/tool", "/opt/other"], TOOL))
    assert report.errors[0].code == "AM300"  # /opt/other: a real difference
    assert {(f.code, f.path) for f in report.findings if f.code == "AM312"} == {
        ("AM312", root),
        ("AM312", "/opt/tool"),
    }
    assert [link.path for link in report.links] == ["/opt/other"]
    assert report.links[0].target == f"{root}/opt/other"


def test_another_addons_mount_is_not_taken_for_this_one(bundle: BundleFactory) -> None:
    """custom-addon-toolbox is not custom-addon-tool: the add-on is mounted under its own name."""
    from addon_mount import Entry

    from .conftest import cml_entries

    image = RuntimeImage.from_entries(
        [*cml_entries(), Entry("/runtime-addons/custom-addon-toolbox", "d", 0o755)], name="r"
    )
    report = run(image, bundle("tool", ["/opt/tool"], TOOL))
    assert report.findings == ()
    assert report.links[0].target == "/runtime-addons/custom-addon-tool/opt/tool"


def test_uid_is_restored_after_simulation(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """The emulated pyfakefs uid and gid are back to what they were, even as another user."""
    helpers.set_uid(1234)
    helpers.set_gid(4321)
    try:
        run(runtime, bundle("x", ["/var/lib/x", "/opt/x"], [("opt/x", "f", 0o644, "")]))
        assert (helpers.get_uid(), helpers.get_gid()) == (1234, 4321)
    finally:
        helpers.reset_ids()


@pytest.mark.parametrize("uid", [0, 1000])
def test_verdicts_do_not_depend_on_the_real_user(
    runtime: RuntimeImage, bundle: BundleFactory, uid: int
) -> None:
    """The same scenario gives the same report whether the process is root or not."""
    b = bundle(
        "x",
        ["/var/lib/x", "/opt/key.pem", "/etc/hosts", "/opt/tool"],
        [*TOOL, ("opt/key.pem", "f", 0o600, "")],
    )
    helpers.set_uid(uid)
    helpers.set_gid(uid)
    try:
        report = run(runtime, b)
    finally:
        helpers.reset_ids()
    assert sorted(errors(report)) == [
        ("AM301", "/etc/hosts"),
        ("AM320", "/var/lib/x"),
        ("AM321", "/opt/key.pem"),
    ]


def test_real_filesystem_is_untouched(runtime: RuntimeImage, bundle: BundleFactory) -> None:
    """The simulation creates nothing on the real disk: no /runtime-addons, no links."""
    run(
        runtime,
        bundle("x", ["/opt/addon-mount-probe"], [("opt/addon-mount-probe", "f", 0o644, "")]),
    )
    assert not os.path.lexists("/opt/addon-mount-probe")
    assert not os.path.lexists("/runtime-addons/custom-addon-x")


def test_only_needed_entries_are_materialized(bundle: BundleFactory) -> None:
    """A check touches a handful of runtime entries, not the whole image."""
    from addon_mount import Entry
    from addon_mount._workload import StagedAddon, Workload

    from .conftest import cml_entries

    many = [Entry(f"/usr/share/doc/pkg{i}", "d", 0o755) for i in range(2000)]
    image = RuntimeImage.from_entries([*cml_entries(), *many], name="big")
    b = read_bundle(bundle("x", ["/opt/tool"], TOOL))
    assert b.spec is not None
    assert b.archive is not None
    workload = Workload(image, [StagedAddon(b.spec, b.archive)])
    workload.start()
    assert workload.links
    # Count what is in place without listing anything (listing fills a directory).
    from addon_mount._linux import objects

    count = 0
    pending = [workload.fs.root]
    while pending:
        for child in objects.unloaded_entries(pending.pop()).values():
            count += 1
            if stat.S_ISDIR(child.st_mode):
                pending.append(child)
    assert count < 20


def test_mount_directory_is_a_setting(bundle: BundleFactory) -> None:
    """check(mount_dir=...) names the add-on's directory, suffixed or not; a bad one is refused."""
    from addon_mount import CheckError, Entry, check

    from .conftest import cml_entries

    root = "/runtime-addons/addon-tool-ab12"
    image = RuntimeImage.from_entries(
        [
            *cml_entries(),
            Entry(root, "d", 0o755),
            Entry("/opt/tool", "l", 0o777, target=f"{root}/opt/tool"),
        ],
        name="live",
    )
    made = bundle("tool", ["/opt/tool"], TOOL)
    kwargs = {"cloudera_addons": "none"}
    assert {f.code for f in check(made, image, mount_dir="addon-{name}", **kwargs).findings} == {
        "AM312"
    }
    assert [f.code for f in check(made, image, **kwargs).errors] == ["AM301"]
    with pytest.raises(CheckError, match="must hold"):
        check(made, image, mount_dir="addons/{name}", **kwargs)
