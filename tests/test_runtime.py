"""Tests for addon_mount._runtime: the built-in catalog and every way of loading a runtime."""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import addon_mount
from addon_mount import _capture
from addon_mount._check import load_runtimes
from addon_mount._cli_runtimes import runtimes_command
from addon_mount._runtime import (
    DEFAULT_RUNTIME,
    SCHEMA,
    Entry,
    RuntimeImage,
    RuntimeLoadError,
    SnapshotError,
    TarballError,
)
from addon_mount._runtime_sources import (
    BUILTIN_DIR,
    builtin_aliases,
    builtin_names,
    image_from_directory,
    image_from_tar,
    load_builtin,
    load_runtime,
)

from .conftest import BundleFactory

CDSW = 8536
#: The names earlier releases had, and every built-in now.
CATALOG = ["cml-conda", "cml-cuda", "cml-jupyterlab-python", "cml-r", "cml-workbench-python"]
BUILTINS = builtin_names()
#: One runtime of each generation with the same edition: the Workbench with Python.
GEN_2024, GEN_2025, GEN_2026 = (
    "cml-2024.02-workbench-python3.10",
    "cml-workbench-python",
    "cml-2026.04-workbench-python3.12",
)


def make_tree(root: Path) -> Path:
    """A small root filesystem with every entry type a walk and a tarball share."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\n")
    (root / "usr/bin/tool").chmod(0o4755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-again")
    (root / "bin").symlink_to("usr/bin")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    os.mkfifo(root / "tmp/pipe")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    if os.geteuid() == 0:  # numeric owners other than our own need root
        os.chown(root / "etc/passwd", CDSW, CDSW)
    (root / "proc/1").mkdir(parents=True)
    (root / "proc/1/status").write_text("kernel made\n")
    (root / "home/cdsw/project/deep").mkdir(parents=True)
    (root / "home/cdsw/project/deep/notes.txt").write_text("user data\n")
    (root / "home/cdsw/.bashrc").write_text("")
    (root / "runtime-addons/spark/opt/spark/bin").mkdir(parents=True)
    (root / "runtime-addons/spark/opt/spark/bin/spark-submit").write_text("")
    return root


def as_tuples(image: RuntimeImage) -> list[tuple[object, ...]]:
    return [(e.path, e.type, e.mode, e.uid, e.gid, e.size, e.target) for e in image]


def add_member(
    tar: tarfile.TarFile,
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    data: bytes = b"",
    linkname: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = uid
    info.gid = gid
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def export_tarball(path: Path, *, prefix: str, compression: str) -> Path:
    """A tarball shaped like ``docker export`` output, with numeric owners and modes."""
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        add_member(tar, f"{prefix}etc", tarfile.DIRTYPE, mode=0o777, uid=CDSW)
        add_member(tar, f"{prefix}etc/hosts", data=b"127.0.0.1 localhost\n")
        add_member(tar, f"{prefix}usr/bin/sudo", mode=0o4755, data=b"x" * 10)
        add_member(tar, f"{prefix}usr/bin/sudoedit", tarfile.LNKTYPE, linkname="usr/bin/sudo")
        add_member(tar, f"{prefix}bin", tarfile.SYMTYPE, mode=0o777, linkname="usr/bin")
        add_member(tar, f"{prefix}tmp", tarfile.DIRTYPE, mode=0o1777)
        add_member(tar, f"{prefix}dev", tarfile.DIRTYPE, mode=0o755)
        add_member(tar, f"{prefix}dev/null", tarfile.CHRTYPE, mode=0o666)
        add_member(tar, f"{prefix}proc/cpuinfo", data=b"kernel made")
        add_member(tar, f"{prefix}var/run/fifo", tarfile.FIFOTYPE, mode=0o600)
        add_member(tar, f"{prefix}home/cdsw", tarfile.DIRTYPE, mode=0o755, uid=CDSW, gid=CDSW)
        add_member(tar, f"{prefix}home/cdsw/a/b.txt", uid=CDSW, gid=CDSW)
    return path


# -- the built-in catalog --------------------------------------------------------


def test_catalog_lists_the_documented_runtimes() -> None:
    """The twelve documented built-ins ship, the five earlier names among them, and the default."""
    assert set(CATALOG) <= set(BUILTINS)
    assert len(BUILTINS) == 12
    assert DEFAULT_RUNTIME in BUILTINS
    generations = {load_builtin(n).meta["generation"] for n in BUILTINS}
    assert generations == {"2024.02", "2025.01", "2026.04"}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_says_what_it_models_and_how_it_was_built(name: str) -> None:
    """Each built-in names its generation, Dockerfile, base, steps and what is inferred."""
    image = load_builtin(name)
    assert image.name == name
    assert image.source == f"builtin:{name}"
    assert f"Generation {image.meta['generation']}" in image.description
    assert "Modelled on " in image.description
    assert "Inferred" in image.description
    assert image.meta["dockerfile"] in image.description
    assert "debootstrap --variant=minbase bookworm" in image.meta["source"]
    assert len(image) == int(image.meta["entries"]) > 5000
    steps = json.loads(image.meta["steps"])
    assert any(step.startswith("chown_directories:") for step in steps)
    assert any(step.startswith("apt_base_") for step in steps)
    assert image.meta["default"] == ("true" if name == DEFAULT_RUNTIME else "false")


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_file_is_small_and_deterministic(name: str) -> None:
    """A built-in snapshot stays under 300 KB and its gzip header carries no timestamp."""
    data = (BUILTIN_DIR / f"{name}.snap.gz").read_bytes()
    assert len(data) < 300 * 1024
    assert data[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize(
    ("path", "kind", "mode", "uid", "gid"),
    [
        ("/", "d", 0o755, CDSW, 0),
        ("/etc", "d", 0o777, CDSW, 0),
        ("/etc/alternatives", "d", 0o777, CDSW, 0),
        ("/usr", "d", 0o755, CDSW, 0),
        ("/usr/bin", "d", 0o755, CDSW, 0),
        ("/usr/local/bin", "d", 0o755, CDSW, 0),
        ("/opt", "d", 0o755, CDSW, 0),
        ("/usr/bin/ls", "f", 0o755, 0, 0),
        ("/etc/passwd", "f", 0o644, 0, 0),
        ("/var/lib", "d", 0o755, 0, 0),
        ("/root", "d", 0o700, 0, 0),
        ("/runtime-addons", "d", 0o755, 0, 0),
        ("/etc/pki/tls/certs", "d", 0o755, 0, 0),
    ],
)
def test_builtin_follows_the_dockerfile_permission_model(
    name: str, path: str, kind: str, mode: int, uid: int, gid: int
) -> None:
    """Every built-in has cdsw-owned system directories, a 777 /etc and root-owned files."""
    entry = load_builtin(name).get(path)
    assert entry is not None
    assert (entry.type, entry.mode, entry.uid, entry.gid) == (kind, mode, uid, gid)


@pytest.mark.parametrize("name", BUILTINS)
def test_cdsw_home_follows_the_generations_adduser(name: str) -> None:
    """/home/cdsw is 755 where Ubuntu 20.04's adduser made it, 750 from 24.04 on."""
    image = load_builtin(name)
    entry = image.get("/home/cdsw")
    assert entry is not None
    mode = 0o755 if image.meta["generation"] == "2024.02" else 0o750
    assert (entry.type, entry.mode, entry.uid, entry.gid) == ("d", mode, CDSW, CDSW)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize(("path", "target"), [("/bin", "usr/bin"), ("/sbin", "usr/sbin")])
def test_builtin_keeps_merged_usr_symlinks(name: str, path: str, target: str) -> None:
    """/bin and /sbin stay symlinks into /usr, as on a merged-/usr system."""
    entry = load_builtin(name).get(path)
    assert entry is not None
    assert (entry.type, entry.target) == ("l", target)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_holds_no_kernel_trees_or_apt_lists(name: str) -> None:
    """/proc, /sys and /dev are bare directories and apt's list files are gone."""
    image = load_builtin(name)
    for path in ("/proc", "/sys", "/dev"):
        assert image.get(path) is not None
        assert image.children(path) == []
    assert [e.path for e in image.children("/var/lib/apt/lists")] in (
        [],
        ["/var/lib/apt/lists/partial"],
    )


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        # Created by packages of the first apt layer: root's where it runs after chown
        # (2024.02), cdsw's where before it; ffmpeg and emacs-nox moved after chown in 2026.
        ("/usr/share/ffmpeg", (0, CDSW, 0)),
        ("/usr/lib/emacs", (0, CDSW, 0)),
        ("/etc/ssh/ssh_config.d", (0, CDSW, CDSW)),
        # emacsen-common comes with cmake's data in the first layer in 2026 too.
        ("/usr/share/emacs/site-lisp", (0, CDSW, CDSW)),
        ("/usr/share/git-core/templates", (0, CDSW, CDSW)),
        # Created by a layer after chown in every generation (libpq-dev), or there before.
        ("/usr/include/postgresql", (0, 0, 0)),
        ("/usr/share/doc", (CDSW, CDSW, CDSW)),
    ],
)
def test_package_directories_follow_the_generation(path: str, owners: tuple[int, ...]) -> None:
    """A directory a package creates is root's or cdsw's as its generation's step order decides."""
    found = []
    for name in (GEN_2024, GEN_2025, GEN_2026):
        entry = load_builtin(name).get(path)
        assert entry is not None, (name, path)
        assert entry.type == "d"
        found.append(entry.uid)
    assert tuple(found) == owners


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        ("cml-conda", "/opt/conda", ("d", 0o755, 0, 0)),
        ("cml-conda", "/opt/conda/bin", ("d", 0o755, 0, 0)),
        (DEFAULT_RUNTIME, "/opt/conda", None),
        (DEFAULT_RUNTIME, "/usr/local/lib/python3.10/site-packages", ("d", 0o755, 0, 0)),
        (DEFAULT_RUNTIME, "/usr/local/bin/python3.10", ("f", 0o755, 0, 0)),
        (DEFAULT_RUNTIME, "/usr/local/bin/ml-runtime-editor", None),
        ("cml-jupyterlab-python", "/usr/local/share/jupyter/lab", ("d", 0o755, 0, 0)),
        ("cml-jupyterlab-python", "/usr/local/lib/python3.12/site-packages", ("d", 0o755, 0, 0)),
        ("cml-r", "/usr/local/lib/R", ("d", 0o755, 0, 0)),
        ("cml-r", "/usr/local/lib/R/site-library", ("d", 0o755, 0, 0)),
        ("cml-r", "/usr/local/lib/R/etc", ("d", 0o755, CDSW, CDSW)),
        ("cml-r", "/usr/lib/R", None),
        ("cml-r", "/usr/bin/python3.11", None),  # the empty python3 packages
        ("cml-2024.02-r4.3", "/usr/bin/python3.11", ("f", 0o755, 0, 0)),
        ("cml-2025.01-scala2.12", "/usr/share/sbt/bin", ("d", 0o755, 0, 0)),
        ("cml-2025.01-scala2.12", "/usr/lib/jvm", None),
        ("cml-cuda", "/usr/local/cuda-12.5/bin", ("d", 0o755, CDSW, 0)),
        ("cml-cuda", "/usr/local/cuda-12.5/bin/nvcc", ("f", 0o755, 0, 0)),
        ("cml-2024.02-cuda11.8-python3.10", "/usr/local/cuda-11.8/bin", ("d", 0o755, CDSW, 0)),
        (DEFAULT_RUNTIME, "/usr/local/cuda", None),
    ],
)
def test_builtin_runtime_specific_trees(
    name: str, path: str, expected: tuple[str, int, int, int] | None
) -> None:
    """Each runtime's own tree is there with the owner its Dockerfile step gives it."""
    entry = load_builtin(name).get(path)
    if expected is None:
        assert entry is None
    else:
        assert entry is not None
        assert (entry.type, entry.mode, entry.uid, entry.gid) == expected


@pytest.mark.parametrize(
    ("name", "path", "target"),
    [
        (
            "cml-jupyterlab-python",
            "/usr/local/bin/ml-runtime-editor",
            "/usr/local/bin/jupyterlab.sh",
        ),
        ("cml-cuda", "/usr/local/cuda", "/etc/alternatives/cuda"),
        ("cml-cuda", "/etc/alternatives/cuda", "/usr/local/cuda-12.5"),
        (DEFAULT_RUNTIME, "/usr/local/bin/python3", "python3.10"),
        (
            "cml-2024.02-r4.3",
            "/usr/local/lib/R/lib/libRblas.so",
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
        ),
    ],
)
def test_builtin_links(name: str, path: str, target: str) -> None:
    """The modelled links (editor launcher, CUDA alternatives, python3) point where documented."""
    entry = load_builtin(name).get(path)
    assert entry is not None
    assert (entry.type, entry.target) == ("l", target)


def test_unknown_builtin_names_the_known_ones() -> None:
    """Asking for a built-in that does not exist lists those that do."""
    with pytest.raises(RuntimeLoadError) as caught:
        load_builtin("cml-nope")
    assert str(caught.value) == (
        f"cannot load runtime 'cml-nope': no built-in runtime has that name "
        f"(built-in: {', '.join(builtin_names())})"
    )


def test_builtin_name_is_never_a_path() -> None:
    """A built-in name with a path in it is refused, not resolved against the catalog folder."""
    with pytest.raises(RuntimeLoadError, match="no built-in runtime has that name"):
        load_builtin("../_runtimes/cml-conda")


def test_a_generation_name_is_another_name_for_a_builtin() -> None:
    """cml-2025.01-r4.4 opens cml-r under the name asked for, and says which runtime it is."""
    assert builtin_aliases()["cml-2025.01-r4.4"] == "cml-r"
    image = load_runtime("cml-2025.01-r4.4")
    assert image.name == "cml-2025.01-r4.4"
    assert image.description.startswith("Another name for cml-r. ")
    assert len(image) == len(load_builtin("cml-r"))


def test_a_runtime_and_its_other_name_are_one_runtime() -> None:
    """Naming a built-in twice, once by another name, is refused like naming it twice."""
    with pytest.raises(RuntimeLoadError, match=r"'cml-2025\.01-r4\.4' is given more than once"):
        load_runtimes(["cml-r", "cml-2025.01-r4.4"])


def test_a_misspelt_generation_name_is_answered_with_the_nearest() -> None:
    """A typo in a generation name suggests the name meant."""
    with pytest.raises(RuntimeLoadError, match=r"did you mean 'cml-2025\.01-r4\.4'"):
        load_builtin("cml-2025.01-r4.5")


# -- docker export tarballs ------------------------------------------------------


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
@pytest.mark.parametrize("prefix", ["", "./"])
def test_tarball_loads_with_numeric_owners_and_modes(
    tmp_path: Path, compression: str, prefix: str
) -> None:
    """A docker-export tarball, compressed or not, with or without './', loads as recorded."""
    tarball = export_tarball(tmp_path / "rootfs.tar", prefix=prefix, compression=compression)
    image = load_runtime(tarball)
    assert image.name == "rootfs"
    assert image.get("/etc") == Entry("/etc", "d", 0o777, CDSW, 0)
    assert image.get("/usr/bin/sudo") == Entry("/usr/bin/sudo", "f", 0o4755, 0, 0, 10)
    assert image.get("/usr/bin/sudoedit") == Entry("/usr/bin/sudoedit", "f", 0o644, 0, 0, 10)
    assert image.get("/bin") == Entry("/bin", "l", 0o777, target="usr/bin")
    assert image.get("/tmp") == Entry("/tmp", "d", 0o1777)
    assert image.get("/var/run/fifo") == Entry("/var/run/fifo", "p", 0o600)
    # Parents the archive does not list are made as tar would: root's, 755.
    assert image.get("/usr") == Entry("/usr", "d", 0o755)


def test_tarball_skips_kernel_trees_and_deep_home(tmp_path: Path) -> None:
    """Members inside /proc, /dev or deeper than /home/cdsw's top level are not recorded."""
    image = load_runtime(export_tarball(tmp_path / "r.tar.gz", prefix="", compression="gz"))
    assert image.get("/dev/null") is None
    assert image.get("/proc/cpuinfo") is None
    assert image.get("/proc") == Entry("/proc", "d", 0o755)
    assert image.get("/home/cdsw") == Entry("/home/cdsw", "d", 0o755, CDSW, CDSW)
    # The skipped member still implies its recorded ancestor, as a walk would list it.
    assert image.get("/home/cdsw/a") == Entry("/home/cdsw/a", "d", 0o755)
    assert image.get("/home/cdsw/a/b.txt") is None


def test_tarball_records_devices_outside_dev(tmp_path: Path) -> None:
    """Character and block devices are recorded with their type where the policy keeps them."""
    path = tmp_path / "dev.tar"
    with tarfile.open(path, "w") as tar:
        add_member(tar, "lib/udev/console", tarfile.CHRTYPE, mode=0o600)
        add_member(tar, "lib/udev/sda", tarfile.BLKTYPE, mode=0o660, gid=6)
    image = load_runtime(path)
    assert image.get("/lib/udev/console") == Entry("/lib/udev/console", "c", 0o600)
    assert image.get("/lib/udev/sda") == Entry("/lib/udev/sda", "b", 0o660, 0, 6)


def test_truncated_tarball_is_a_tarball_error(tmp_path: Path) -> None:
    """A gzipped tarball cut short fails with a TarballError naming the file."""
    full = export_tarball(tmp_path / "full.tar.gz", prefix="", compression="gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(TarballError, match=r"^cannot read runtime tarball '.*cut\.tar\.gz': "):
        load_runtime(cut)


def test_tarball_cut_at_a_member_boundary_is_truncated(tmp_path: Path) -> None:
    """A plain tarball that stops between members is reported, not read as a smaller root."""
    full = export_tarball(tmp_path / "full.tar", prefix="", compression="").read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full[: 3 * tarfile.BLOCKSIZE])  # etc/, etc/hosts and its data block
    with pytest.raises(TarballError) as caught:
        load_runtime(cut)
    assert str(caught.value) == (
        f"cannot read runtime tarball {str(cut)!r}: "
        "truncated: the archive stops before its end marker"
    )


def test_image_from_tar_takes_a_name(tmp_path: Path) -> None:
    """image_from_tar records the name it is given and the tarball as its source."""
    tarball = export_tarball(tmp_path / "x.tar", prefix="", compression="")
    image = image_from_tar(tarball, name="custom")
    assert image.name == "custom"
    assert image.meta["source"] == str(tarball)


# -- one tree, three sources -------------------------------------------------------


def test_snapshot_tarball_and_directory_agree(tmp_path: Path) -> None:
    """A tree read as a directory, as a captured snapshot and as a tarball gives one entry list."""
    root = make_tree(tmp_path / "root")
    snap = tmp_path / "tree.snap"
    _capture.capture(str(root), str(snap))
    tarball = tmp_path / "tree.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname=".")
    from_dir = load_runtime(root)
    from_snapshot = load_runtime(snap)
    from_tar = load_runtime(tarball)
    assert as_tuples(from_dir) == as_tuples(from_snapshot) == as_tuples(from_tar)
    st = os.lstat(root / "usr/bin/tool")
    assert from_dir.get("/usr/bin/tool-again") == Entry(
        "/usr/bin/tool-again", "f", 0o4755, st.st_uid, st.st_gid, 10
    )
    assert from_dir.get("/home/cdsw/project/deep") is None
    assert from_dir.get("/runtime-addons/spark/opt/spark/bin/spark-submit") is not None


def test_directory_image_records_walk_metadata(tmp_path: Path) -> None:
    """A directory runtime is named after the directory and says how it was walked."""
    image = image_from_directory(make_tree(tmp_path / "myroot"))
    assert image.name == "myroot"
    assert image.meta["cross_mounts"] == "false"
    assert json.loads(image.meta["unreadable"]) == []
    assert len(image) == int(image.meta["entries"])


def test_missing_directory_is_a_load_error(tmp_path: Path) -> None:
    """image_from_directory on a path that does not exist says so."""
    missing = tmp_path / "gone"
    with pytest.raises(RuntimeLoadError) as caught:
        image_from_directory(missing)
    assert str(caught.value) == f"cannot read runtime directory {str(missing)!r}: " + (
        "No such file or directory"
    )


# -- load_runtime: naming and sniffing ---------------------------------------------


def test_load_runtime_by_name_and_prefix() -> None:
    """A built-in is found by its bare name or with the builtin: prefix."""
    assert load_runtime("cml-r").name == "cml-r"
    assert load_runtime("builtin:cml-conda").name == "cml-conda"


def test_load_runtime_detects_snapshots_by_content(tmp_path: Path) -> None:
    """Snapshots are recognised by magic bytes whatever their names, plain or gzipped."""
    data = load_builtin("cml-r").serialize()
    plain = tmp_path / "runtime.tar"  # a misleading name on purpose
    plain.write_bytes(data)
    zipped = tmp_path / "runtime"
    zipped.write_bytes(gzip.compress(data))
    assert load_runtime(plain).name == "cml-r"
    assert load_runtime(zipped).name == "cml-r"


def test_snapshot_path_with_uri_characters_opens(tmp_path: Path) -> None:
    """A snapshot whose path holds '?', '#' and '%' still opens (the SQLite URI is quoted)."""
    path = tmp_path / "odd ?#%25 name.snap"
    path.write_bytes(load_builtin("cml-r").serialize())
    assert RuntimeImage.from_snapshot(path).name == "cml-r"


def test_path_object_is_never_a_builtin_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Path that happens to spell a built-in name is looked up on disk only."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeLoadError, match=r"^cannot load runtime 'cml-r': no such file"):
        load_runtime(Path("cml-r"))


def bad_source(kind: str, directory: Path) -> Path:
    """A runtime source of the given unusable *kind*, made in *directory*."""
    path = directory / kind
    if kind == "missing":
        return path
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("hello\n" * 200)
    elif kind == "zstd":
        path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 600)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        db = sqlite3.connect(path)
        if kind == "foreign-sqlite":
            db.execute("CREATE TABLE t (x)")
        else:  # a snapshot from a future format version
            db.executescript(SCHEMA)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("format", "addon-mount-snapshot"), ("version", "9")],
            )
        db.commit()
        db.close()
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "cannot load runtime '{p}': no such file or directory"),
        ("empty", "cannot load runtime '{p}': the file is empty"),
        (
            "text",
            "cannot load runtime '{p}': not a runtime snapshot (SQLite, plain or gzipped), "
            "a root filesystem tarball (docker export, plain or compressed) or a directory",
        ),
        (
            "zstd",
            "cannot load runtime '{p}': zstd-compressed, which Python's tarfile cannot read; "
            "decompress it first",
        ),
        ("fifo", "cannot load runtime '{p}': not a regular file or a directory"),
        ("foreign-sqlite", "cannot read runtime snapshot '{p}': not an addon-mount-snapshot file"),
        (
            "future-snapshot",
            "cannot read runtime snapshot '{p}': snapshot format version '9', expected 1",
        ),
    ],
)
def test_bad_specs_raise_runtime_load_error(tmp_path: Path, kind: str, message: str) -> None:
    """Each kind of unusable runtime source fails with a message naming it and the reason."""
    path = bad_source(kind, tmp_path)
    with pytest.raises(RuntimeLoadError) as caught:
        load_runtime(path)
    assert str(caught.value) == message.format(p=path)
    assert caught.value.source == str(path)


def test_unknown_bare_name_mentions_builtins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare word that is neither a file nor a built-in lists the built-in names."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeLoadError) as caught:
        load_runtime("ubuntu-ish")
    assert str(caught.value) == (
        "cannot load runtime 'ubuntu-ish': no such file or directory, nor a built-in runtime "
        f"(built-in: {', '.join(builtin_names())})"
    )


def test_snapshot_error_is_a_runtime_load_error() -> None:
    """SnapshotError carries its source and reason and is caught as a RuntimeLoadError."""
    error = SnapshotError("x.snap", "broken")
    assert isinstance(error, RuntimeLoadError)
    assert (error.source, error.reason, str(error)) == (
        "x.snap",
        "broken",
        "cannot read runtime snapshot 'x.snap': broken",
    )


# -- addon-mount runtimes --------------------------------------------------------


def test_runtimes_json_lists_the_catalog() -> None:
    """'runtimes --format json' lists every built-in with its entry count and the default."""
    result = CliRunner().invoke(runtimes_command, ["--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == builtin_names()
    assert [r["name"] for r in rows if r["default"]] == [DEFAULT_RUNTIME]
    for row in rows:
        assert row["entries"] == len(load_builtin(row["name"]))
        assert row["description"]
        assert row["generation"] in ("2024.02", "2025.01", "2026.04")
        assert row["steps"]
    assert next(r for r in rows if r["name"] == "cml-r")["aliases"] == ["cml-2025.01-r4.4"]


def test_runtimes_text_is_a_table() -> None:
    """'runtimes' prints a table naming each built-in and marking the default."""
    result = CliRunner().invoke(runtimes_command, [])
    assert result.exit_code == 0, result.output
    for name in CATALOG:
        assert name in result.output
    assert "(default)" in result.output


# -- the generations' verdicts -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        # ffmpeg creates /usr/share/ffmpeg: after chown in 2024.02 and again in 2026.
        ("/usr/share/ffmpeg/tool.ffpreset", ("AM320", None, "AM320")),
        # ssh creates /etc/ssh/ssh_config.d: after chown in 2024.02 only.
        ("/etc/ssh/ssh_config.d/tool.conf", ("AM320", None, None)),
    ],
)
def test_a_path_under_a_package_directory_depends_on_the_generation(
    bundle: BundleFactory, path: str, codes: tuple[str | None, ...]
) -> None:
    """The 20.04-era runtime refuses cdsw a package's directory that the 24.04-era one gives it."""
    name = path[1:]
    b = bundle("tool", [path], [(name, "f", 0o644, "x")])
    report = addon_mount.check([b], runtime=[GEN_2024, GEN_2025, GEN_2026])
    found = []
    for runtime in (GEN_2024, GEN_2025, GEN_2026):
        errors = [f for f in report.errors if f.runtime == runtime]
        found.append(errors[0].code if errors else None)
    assert tuple(found) == codes
    refused = next(f for f in report.errors if f.runtime == GEN_2024)
    assert f"may not write in {path.rpartition('/')[0]}: owner uid 0" in refused.message
    assert [link.runtime for link in report.links if link.path == path] == [
        r for r, code in zip((GEN_2024, GEN_2025, GEN_2026), codes, strict=True) if code is None
    ]


def test_derive_puts_entries_over_a_runtime(runtime: RuntimeImage) -> None:
    """A derived runtime answers with its entries over the base's; the base is untouched."""
    over = [
        Entry("/opt/conda", "l", 0o777, CDSW, CDSW, 0, "/elsewhere"),
        Entry("/opt/new", "d", 0o755, CDSW, CDSW),
        Entry("/opt/new/x", "f", 0o644),
    ]
    derived = runtime.derive(over, name="tiny+x", description="with x", meta={"base": "tiny"})
    assert (derived.name, derived.meta["base"], derived.meta["entries"]) == (
        "tiny+x",
        "tiny",
        str(len(runtime) + 2),
    )
    assert derived.get("/opt/conda") == over[0]
    assert [e.path for e in derived.children("/opt")] == ["/opt/conda", "/opt/new"]
    assert len(list(derived)) == len(derived) == len(runtime) + 2
    copy = RuntimeImage.from_bytes(derived.serialize(), source="copy")
    assert list(copy) == list(derived)
    derived.close()
    conda = runtime.get("/opt/conda")
    assert conda is not None
    assert conda.type == "d"
