"""Cloudera's own add-ons as overlays: the workloads a check covers, and collisions with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import addon_mount
from addon_mount import CheckError, Entry, RuntimeImage, RuntimeLoadError
from addon_mount._cli import cli
from addon_mount._cli_runtimes import runtimes_command
from addon_mount._overlays import (
    IN_WORKLOADS_ATTACHING,
    attach,
    attached,
    catalog,
    collision,
    combinations,
    overlays_named,
    selection,
    variants,
    where,
)
from addon_mount._runtime_sources import builtin_names, load_builtin, load_runtime

from .conftest import CDSW, BundleFactory, cml_entries

HADOOP_DIR = "hadoop-cli-7.3.1.101-c2jhs"
SPARK_DIR = "spark332-7190-1202-b75-ht9wmb"


def conf_bundle(bundle: BundleFactory, path: str = "/etc/hadoop/conf") -> Path:
    name = path[1:]
    return bundle("conf", [path], [(name, "d", 0o755, ""), (f"{name}/site.xml", "f", 0o644, "x")])


# -- the done criterion: a collision with a Cloudera add-on fails the default check ----------


def test_requesting_the_hadoop_cli_conf_fails_the_default_check(bundle: BundleFactory) -> None:
    """/etc/hadoop/conf collides with the Hadoop CLI add-on, named, in workloads that attach it."""
    report = addon_mount.check([conf_bundle(bundle)])
    assert not report.ok
    [error] = report.errors
    assert (error.code, error.runtime, error.path) == (
        "AM301",
        "cml-workbench-python",
        "/etc/hadoop/conf",
    )
    assert error.message == (
        "cannot link /etc/hadoop/conf: it collides with the Hadoop CLI add-on's "
        f"/etc/hadoop/conf {IN_WORKLOADS_ATTACHING}"
    )


def test_requesting_spark_home_names_the_spark_add_on(bundle: BundleFactory) -> None:
    """/opt/spark collides with the Spark 3 add-on by default, and with Spark 2 too with 'all'."""
    b = bundle("spark", ["/opt/spark"], [("opt/spark", "d", 0o755, "")])
    default = addon_mount.check([b])
    assert ["Spark 3 add-on's /opt/spark" in f.message for f in default.errors] == [True]
    widened = addon_mount.check([b], cloudera_addons="all")
    assert sorted(f.message.split(" it collides with ")[1] for f in widened.errors) == [
        f"the Spark 2 add-on's /opt/spark {IN_WORKLOADS_ATTACHING}",
        f"the Spark 3 add-on's /opt/spark {IN_WORKLOADS_ATTACHING}",
    ]


def test_without_cloudera_add_ons_the_same_path_is_free(bundle: BundleFactory) -> None:
    """--cloudera-addons none checks the runtime alone: cdsw creates /etc/hadoop (a warning)."""
    report = addon_mount.check([conf_bundle(bundle)], cloudera_addons="none")
    assert report.ok
    assert [f.code for f in report.findings] == ["AM330"]
    assert "only in workloads" not in report.findings[0].message


def test_a_finding_of_the_runtime_alone_says_so(bundle: BundleFactory) -> None:
    """The parent cdsw must create exists once the add-on is attached: the warning says where."""
    report = addon_mount.check([conf_bundle(bundle)])
    [warning] = report.warnings
    assert warning.code == "AM330"
    assert warning.message.endswith("(only in workloads without Cloudera's add-ons)")


def test_a_finding_in_every_workload_is_reported_once(bundle: BundleFactory) -> None:
    """A collision with the runtime itself holds in every workload: one finding, the runtime's."""
    b = bundle("ls", ["/usr/bin/ls"], [("usr/bin/ls", "f", 0o755, "x")])
    report = addon_mount.check([b], cloudera_addons="all")
    [error] = report.errors
    assert error.runtime == "cml-workbench-python"
    assert "only in workloads" not in error.message
    assert [r.name for r in report.runtimes] == ["cml-workbench-python"]


def test_inside_the_spark_add_on_a_path_collides_with_its_file(bundle: BundleFactory) -> None:
    """A path the Spark add-on's /opt/spark holds is its file, named as the Spark add-on's."""
    jar = "opt/spark/jars/spark-core_2.12-3.3.2.jar"
    b = bundle("jar", [f"/{jar}"], [(jar, "f", 0o644, "x")])
    report = addon_mount.check([b])
    messages = [f.message for f in report.errors if f.code == "AM301"]
    assert messages == [
        f"cannot link /{jar}: it collides with the Spark 3 add-on's /{jar} {IN_WORKLOADS_ATTACHING}"
    ]


def test_users_may_add_files_to_the_spark_conf_copy(bundle: BundleFactory) -> None:
    """/etc/spark/conf is cdsw's (users copy files into it): a new file there links."""
    b = bundle(
        "conf", ["/etc/spark/conf/extra.conf"], [("etc/spark/conf/extra.conf", "f", 0o644, "x")]
    )
    report = addon_mount.check([b])
    assert report.ok
    assert [link.path for link in report.links] == ["/etc/spark/conf/extra.conf"]


# -- the workloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (None, ["spark3", "hadoop-cli", "cmladdon"]),
        ("default", ["spark3", "hadoop-cli", "cmladdon"]),
        ("none", []),
        ("all", ["spark3", "spark2", "hadoop-cli", "cmladdon"]),
        ("hadoop-cli, spark2", ["spark2", "hadoop-cli"]),
        (["hadoop-cli", "cmladdon"], ["hadoop-cli", "cmladdon"]),
    ],
)
def test_selection_words_and_names(value: str | list[str] | None, names: list[str]) -> None:
    """--cloudera-addons takes default, none, all or names, comma-separated or repeated."""
    assert [o.name for o in selection(value)] == names


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("spark4", "no Cloudera add-on is named 'spark4'"),
        ("all,spark3", "stand alone"),
        ("", "names no add-on; give 'none'"),
        (" , ", "names no add-on"),
        ([], "names no add-on"),
    ],
)
def test_selection_refuses_unknown_names(value: str | list[str], message: str) -> None:
    """An unknown add-on name, or a word mixed with names, is refused with the known names."""
    with pytest.raises(ValueError, match=message):
        selection(value)


def test_check_refuses_an_unknown_add_on_before_reading(tmp_path: Path) -> None:
    """check() cannot run with an unknown add-on name, even before the bundle is looked at."""
    with pytest.raises(CheckError, match="--cloudera-addons: no Cloudera add-on is named 'x'"):
        addon_mount.check([tmp_path / "missing"], cloudera_addons="x")


def test_one_spark_per_workload() -> None:
    """Spark versions exclude each other: one workload per Spark, each with the other add-ons."""
    combos = combinations(selection("all"))
    assert [[o.name for o in c] for c in combos] == [
        ["spark3", "hadoop-cli", "cmladdon"],
        ["spark2", "hadoop-cli", "cmladdon"],
    ]


def tiny() -> RuntimeImage:
    return RuntimeImage.from_entries(cml_entries(), name="tiny")


def test_attach_places_links_copies_and_parents_as_the_start_up_would() -> None:
    """Links are cdsw's symlinks into the mount; the conf copy and missing parents are cdsw's."""
    image = attach(tiny(), overlays_named(["spark3", "hadoop-cli"]))
    assert image.name == "tiny+spark3+hadoop-cli"
    link = image.get("/opt/spark")
    assert link is not None
    assert (link.type, link.uid, link.target) == (
        "l",
        CDSW,
        f"/runtime-addons/{SPARK_DIR}/opt/spark",
    )
    for path in ("/etc/spark", "/etc/spark/conf", "/etc/hadoop", "/usr/lib/jvm"):
        entry = image.get(path)
        assert entry is not None
        assert (entry.type, entry.mode, entry.uid) == ("d", 0o755, CDSW), path
    conf = image.get("/etc/spark/conf/spark-defaults.conf")
    assert conf is not None
    assert conf.uid == CDSW
    mounted = image.get(f"/runtime-addons/{HADOOP_DIR}/etc/hadoop/conf/core-site.xml")
    assert mounted is not None
    assert mounted.uid == 0
    assert [a["name"] for a in attached(image)] == ["spark3", "hadoop-cli"]


def test_attach_leaves_a_path_the_runtime_has() -> None:
    """A path the runtime already has stays the runtime's, and is recorded as skipped."""
    base = RuntimeImage.from_entries([*cml_entries(), Entry("/opt/spark", "d", 0o755)], name="t")
    image = attach(base, overlays_named(["spark3"]))
    entry = image.get("/opt/spark")
    assert entry is not None
    assert entry.type == "d"
    [record] = attached(image)
    assert record["skipped"] == ["/opt/spark"]


def captured_with_hadoop_cli() -> RuntimeImage:
    """A live session's capture: the Hadoop CLI mounted and linked, no Spark."""
    mount = "/runtime-addons/hadoop-cli-7.1.9.0-xyz12"
    return RuntimeImage.from_entries(
        [
            *cml_entries(),
            Entry("/runtime-addons", "d", 0o755),
            Entry(mount, "d", 0o755),
            Entry(f"{mount}/etc", "d", 0o755),
            Entry(f"{mount}/etc/hadoop", "d", 0o755),
            Entry(f"{mount}/etc/hadoop/conf", "d", 0o755),
            Entry("/etc/hadoop", "d", 0o755, CDSW, CDSW),
            Entry("/etc/hadoop/conf", "l", 0o777, CDSW, CDSW, 0, f"{mount}/etc/hadoop/conf"),
        ],
        name="session",
    )


def test_a_captured_session_is_checked_with_the_add_ons_it_has_not() -> None:
    """A session showing the Hadoop CLI is checked as it is, and with Spark and cmladdon too."""
    captured = captured_with_hadoop_cli()
    workloads = variants(captured, selection(None))
    assert workloads[0] is captured
    assert [[a["name"] for a in attached(w)] for w in workloads[1:]] == [["spark3", "cmladdon"]]
    assert variants(captured, selection("hadoop-cli")) == [captured]
    assert len(variants(tiny(), selection(None))) == 2


def test_a_session_with_one_spark_attaches_no_other() -> None:
    """A runtime that has Spark 3 attached gets the Hadoop CLI, never a second Spark."""
    with_spark = attach(tiny(), overlays_named(["spark3"]))
    workloads = variants(with_spark, selection("all"))
    assert [[a["name"] for a in attached(w)] for w in workloads] == [
        ["spark3"],
        ["spark3", "hadoop-cli", "cmladdon"],
    ]


def test_spark_home_fails_against_a_session_that_only_shows_the_hadoop_cli(
    bundle: BundleFactory,
) -> None:
    """/opt/spark is free in that session, but not in the ones that attach Spark: it fails."""
    spark = bundle("spark", ["/opt/spark"], [("opt/spark", "d", 0o755, "")])
    report = addon_mount.check([spark], runtime=captured_with_hadoop_cli())
    [error] = report.errors
    assert (error.code, error.runtime, error.path) == ("AM301", "session", "/opt/spark")
    assert "the Spark 3 add-on's /opt/spark" in error.message
    hadoop = addon_mount.check([conf_bundle(bundle)], runtime=captured_with_hadoop_cli())
    [error] = hadoop.errors
    assert "the Hadoop CLI add-on's /etc/hadoop/conf" in error.message


def test_a_named_runtime_with_the_hadoop_cli_is_checked_with_spark(bundle: BundleFactory) -> None:
    """RUNTIME+hadoop-cli with --cloudera-addons spark3 covers the session that attaches both."""
    spark = str(bundle("spark", ["/opt/spark"], [("opt/spark", "d", 0o755, "")]))
    runner = CliRunner()
    args = ["check", spark, "-r", "cml-r+hadoop-cli", "--cloudera-addons", "spark3"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Spark 3 add-on's /opt/spark" in result.output


def test_a_captured_sessions_add_on_is_named_from_its_directory() -> None:
    """In a captured session, a link into /runtime-addons/hadoop-cli-* is the Hadoop CLI's."""
    target = "/runtime-addons/hadoop-cli-7.1.9.0-xyz12/etc/hadoop/conf"
    link = Entry("/etc/hadoop/conf", "l", 0o777, CDSW, CDSW, 0, target)
    found = collision(tiny(), "/etc/hadoop/conf", "/etc/hadoop/conf", link)
    assert found == "the Hadoop CLI add-on's /etc/hadoop/conf"
    assert collision(tiny(), "/opt/x", "/opt/x", Entry("/opt/x", "d", 0o755)) is None


@pytest.mark.parametrize("name", builtin_names())
def test_every_add_on_attaches_cleanly_to_every_built_in(name: str) -> None:
    """No built-in runtime already has a path Cloudera's add-ons put in place."""
    for combo in combinations(selection("all")):
        for record in attached(attach(load_builtin(name), combo)):
            assert record["skipped"] == [], (name, record)


# -- where a finding holds --------------------------------------------------------------------

ALONE = frozenset()
FULL = frozenset({"spark3", "hadoop-cli", "cmladdon"})
SPARK2 = frozenset({"spark2", "hadoop-cli", "cmladdon"})


@pytest.mark.parametrize(
    ("found", "every", "phrase"),
    [
        ([ALONE, FULL], [ALONE, FULL], ""),
        ([ALONE], [ALONE, FULL], "only in workloads without Cloudera's add-ons"),
        (
            [FULL],
            [ALONE, FULL],
            "only in workloads that attach the Spark 3, Hadoop CLI and cmladdon add-ons",
        ),
        (
            [FULL, SPARK2],
            [ALONE, FULL, SPARK2],
            "only in workloads that attach the Hadoop CLI and cmladdon add-ons",
        ),
        ([ALONE, SPARK2], [ALONE, FULL, SPARK2], "only in workloads without the Spark 3 add-on"),
    ],
)
def test_where_a_finding_holds(
    found: list[frozenset[str]], every: list[frozenset[str]], phrase: str
) -> None:
    """The phrase names the add-ons whose presence (or absence) the finding follows."""
    assert where(found, every, "cannot link /x") == phrase


def test_a_message_that_names_its_add_on_needs_no_phrase() -> None:
    """A collision that names the add-on and says 'in workloads that attach it' stays as it is."""
    message = (
        "cannot link /opt/spark: it collides with the Spark 3 add-on's /opt/spark "
        + IN_WORKLOADS_ATTACHING
    )
    assert where([FULL], [ALONE, FULL], message) == ""


# -- naming a workload -------------------------------------------------------------------------


def test_a_runtime_with_add_ons_can_be_named(bundle: BundleFactory) -> None:
    """RUNTIME+ADDON... is that runtime with those add-ons attached, checked as it is."""
    image = load_runtime("cml-workbench-python+hadoop-cli")
    assert image.name == "cml-workbench-python+hadoop-cli"
    report = addon_mount.check([conf_bundle(bundle)], runtime="cml-workbench-python+hadoop-cli")
    assert [(f.code, f.runtime) for f in report.findings] == [
        ("AM301", "cml-workbench-python+hadoop-cli")
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cml-r+", "an empty add-on name after '\\+'"),
        ("cml-r+spark3+spark2", "one session attaches one Spark, not spark3, spark2"),
    ],
)
def test_a_runtime_name_no_session_has_is_refused(name: str, message: str) -> None:
    """An empty add-on name, or two Sparks in one session, is no workload."""
    with pytest.raises(RuntimeLoadError, match=message):
        load_runtime(name)


def test_an_unknown_add_on_in_a_runtime_name_is_refused() -> None:
    """A runtime name with an unknown add-on names the known ones."""
    with pytest.raises(RuntimeLoadError, match="no Cloudera add-on is named 'hive'"):
        load_runtime("cml-workbench-python+hive")


# -- the command line ----------------------------------------------------------------------------


def test_cli_cloudera_addons_none(bundle: BundleFactory) -> None:
    """check --cloudera-addons none passes where the default check fails."""
    b = str(conf_bundle(bundle))
    assert CliRunner().invoke(cli, ["check", b]).exit_code == 1
    assert CliRunner().invoke(cli, ["check", b, "--cloudera-addons", "none"]).exit_code == 0
    wrong = CliRunner().invoke(cli, ["check", b, "--cloudera-addons", "hive"])
    assert wrong.exit_code == 2
    empty = CliRunner().invoke(cli, ["check", b, "--cloudera-addons", ""])
    assert empty.exit_code == 2
    assert "names no add-on; give 'none'" in empty.output


def test_runtimes_lists_cloudera_add_ons() -> None:
    """'runtimes' prints the add-ons table; --cloudera-addons -f json lists them with evidence."""
    text = CliRunner().invoke(runtimes_command, [])
    assert text.exit_code == 0
    assert HADOOP_DIR in text.output
    listed = CliRunner().invoke(runtimes_command, ["--cloudera-addons", "-f", "json"])
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == [o.name for o in catalog()]
    hadoop = next(r for r in rows if r["name"] == "hadoop-cli")
    assert {p["path"]: p["evidence"] for p in hadoop["paths"]}["/etc/hadoop/conf"] == "code"
    assert hadoop["default"] is True


def test_a_message_naming_an_add_ons_directory_names_that_add_on() -> None:
    """A refusal inside the Spark add-on's mount holds where Spark is attached, said so."""
    message = (
        f"cannot link /opt/spark/x: cdsw may not write in /runtime-addons/{SPARK_DIR}/opt/spark"
    )
    assert (
        where([FULL], [ALONE, FULL], message) == "only in workloads that attach the Spark 3 add-on"
    )


# -- paths around a Cloudera add-on's -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "child"),
    [
        ("/etc/hadoop", "/etc/hadoop/conf"),
        ("/usr/lib/jvm", "/usr/lib/jvm/java-8-openjdk-amd64"),
        ("/etc/spark", "/etc/spark/conf"),
    ],
)
def test_a_parent_a_cloudera_add_on_makes_is_its_collision(
    bundle: BundleFactory, path: str, child: str
) -> None:
    """A directory the Hadoop CLI's start-up makes for its link is blamed on it, not the runtime."""
    report = addon_mount.check([conf_bundle(bundle, path)])
    [error] = report.errors
    assert error.code == "AM301"
    assert "makes for " + child in error.message
    assert error.message.endswith(IN_WORKLOADS_ATTACHING)
    assert "the runtime already has" not in error.message


@pytest.mark.parametrize(
    ("path", "theirs"),
    [
        ("/etc/hadoop/conf/extra.xml", "the Hadoop CLI add-on's /etc/hadoop/conf"),
        ("/opt/spark/jars/x.jar", "the Spark 3 add-on's /opt/spark"),
    ],
)
def test_a_path_inside_a_cloudera_add_on_is_a_nested_request(
    bundle: BundleFactory, path: str, theirs: str
) -> None:
    """Below a Cloudera add-on's link is its read-only mount: AM310, naming that add-on's path."""
    name = path[1:]
    b = bundle("nested", [path], [(name, "f", 0o644, "x")])
    report = addon_mount.check([b])
    [error] = report.errors
    assert (error.code, error.path) == ("AM310", path)
    assert error.message == (
        f"cannot link {path}: it is inside {theirs}, a read-only mount, {IN_WORKLOADS_ATTACHING}"
    )


def test_a_captured_sessions_cloudera_mount_is_read_only(bundle: BundleFactory) -> None:
    """In a captured session, below the Hadoop CLI's linked conf is its read-only mount."""
    b = bundle("nested", ["/etc/hadoop/conf/x.xml"], [("etc/hadoop/conf/x.xml", "f", 0o644, "x")])
    report = addon_mount.check([b], runtime=captured_with_hadoop_cli(), cloudera_addons="none")
    [error] = report.errors
    assert error.code == "AM310"
    assert "the Hadoop CLI add-on's /runtime-addons/hadoop-cli-7.1.9.0-xyz12" in error.message
