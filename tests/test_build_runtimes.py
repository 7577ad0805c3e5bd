"""Tests for scripts/runtimes: the Dockerfile steps, apt layers and catalog, on small trees.

Nothing here needs root or the network: apt layers are given as the
difference of two small synthetic walks, as the real build captures them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from addon_mount._runtime import Entry, RuntimeImage
from scripts.runtimes import build, catalog, chroot, layers, steps
from scripts.runtimes.tree import CDSW, ModelError, Tree

D, F, L = "d", "f", "l"


def base_entries() -> list[Entry]:
    """A tiny merged-/usr root as debootstrap leaves it: everything root's."""
    return [
        Entry("/", D, 0o755),
        Entry("/bin", L, 0o777, 0, 0, 0, "usr/bin"),
        Entry("/etc", D, 0o755),
        Entry("/etc/alternatives", D, 0o755),
        Entry("/etc/passwd", F, 0o644, 0, 0, 1200),
        Entry("/opt", D, 0o755),
        Entry("/usr", D, 0o755),
        Entry("/usr/bin", D, 0o755),
        Entry("/usr/bin/ls", F, 0o755, 0, 0, 140000),
        Entry("/usr/lib", D, 0o755),
        Entry("/usr/share", D, 0o755),
        Entry("/var", D, 0o755),
        Entry("/var/lib", D, 0o755),
        Entry("/var/lib/apt/lists/mirror_dists_bookworm_InRelease", F, 0o644),
        Entry("/var/cache/apt/pkgcache.bin", F, 0o644),
        Entry("/home", D, 0o755),
    ]


def emacs_layer() -> layers.LayerDiff:
    """What installing a package like emacs-nox does: new directories, a program, a changed dir."""
    before = base_entries()
    after = [
        *before,
        Entry("/usr/share/emacs", D, 0o755),
        Entry("/usr/share/emacs/site-lisp", D, 0o755),
        Entry("/usr/bin/emacs", F, 0o755, 0, 0, 9000),
        Entry("/etc/emacs", D, 0o755),
        Entry("/usr/lib/emacs", D, 0o755),
    ]
    return layers.LayerDiff.between(before, after)


def run(tree: Tree, *chosen: steps.Step, diffs: dict[str, layers.LayerDiff] | None = None) -> Tree:
    ctx = steps.Context(diffs or {})
    for step in chosen:
        step(tree, ctx)
    return tree


LAYER = layers.AptLayer("emacs", ("emacs-nox",))
PERMISSIONS = catalog.PERMISSIONS_2025


def owner(tree: Tree, path: str) -> tuple[str, int, int, int]:
    entry = tree.get(path)
    assert entry is not None, path
    return entry.type, entry.mode, entry.uid, entry.gid


# -- the ordering of the permission step ------------------------------------------------


def test_packages_installed_after_chown_keep_root_directories() -> None:
    """20.04 ordering: chown first, then apt: the directories the package creates are root's."""
    tree = run(Tree(base_entries()), *PERMISSIONS, steps.apt(LAYER), diffs={"emacs": emacs_layer()})
    assert owner(tree, "/usr/share/emacs/site-lisp") == (D, 0o755, 0, 0)
    assert owner(tree, "/etc/emacs") == (D, 0o755, 0, 0)
    assert owner(tree, "/usr/share") == (D, 0o755, CDSW, 0)


def test_packages_installed_before_chown_get_cdsw_directories() -> None:
    """24.04 ordering: apt first, then chown: the package's directories become cdsw's."""
    tree = run(Tree(base_entries()), steps.apt(LAYER), *PERMISSIONS, diffs={"emacs": emacs_layer()})
    assert owner(tree, "/usr/share/emacs/site-lisp") == (D, 0o755, CDSW, 0)
    assert owner(tree, "/etc/emacs") == (D, 0o755, CDSW, 0)
    assert owner(tree, "/usr/bin/emacs") == (F, 0o755, 0, 0)


def test_catalog_generations_order_the_base_layer_around_chown() -> None:
    """2024.02 runtimes replay the base apt layer after chown_directories; later ones before."""
    for runtime in catalog.CATALOG:
        names = [st.name for st in runtime.steps]
        base = next(n for n in names if n.startswith("apt_base_"))
        before_chown = names.index(base) < names.index("chown_directories")
        assert before_chown is (runtime.generation != "2024.02"), runtime.name


def test_2026_runtimes_install_ffmpeg_and_emacs_after_chown() -> None:
    """2026 runtimes take ffmpeg and emacs-nox out of the base layer and replay them after chown."""
    assert not {"ffmpeg", "emacs-nox"} & set(catalog.LAYERS["base-2026"].packages)
    for runtime in catalog.CATALOG:
        if runtime.generation == "2026.04":
            names = [st.name for st in runtime.steps]
            assert names.index("apt_late_2026") > names.index("chown_directories")


# -- replaying a captured layer ---------------------------------------------------------


def test_layer_leaves_an_existing_directory_as_the_model_has_it() -> None:
    """dpkg does not touch an existing directory: a cdsw-owned /usr/lib stays cdsw's."""
    tree = run(Tree(base_entries()), *PERMISSIONS)
    diff = layers.LayerDiff(added=(Entry("/usr/lib", D, 0o755), Entry("/usr/lib/x.so", F, 0o644)))
    diff.apply(tree)
    assert owner(tree, "/usr/lib") == (D, 0o755, CDSW, 0)
    assert owner(tree, "/usr/lib/x.so") == (F, 0o644, 0, 0)


def test_layer_change_is_applied_field_by_field() -> None:
    """A maintainer script's chmod changes the mode and keeps the owner an earlier chown gave."""
    tree = run(Tree(base_entries()), *PERMISSIONS)
    before, after = Entry("/opt", D, 0o755), Entry("/opt", D, 0o775)
    layers.LayerDiff(changed=(layers.Change(before, after),)).apply(tree)
    assert owner(tree, "/opt") == (D, 0o775, CDSW, 0)


def test_layer_removal_takes_what_is_below() -> None:
    """A path the layer removed goes from the model, with everything below it."""
    tree = Tree([*base_entries(), Entry("/opt/old", D, 0o755), Entry("/opt/old/f", F, 0o644)])
    layers.LayerDiff(removed=("/opt/old",)).apply(tree)
    assert tree.get("/opt/old") is None
    assert tree.get("/opt/old/f") is None


def test_diff_between_two_walks() -> None:
    """between() sorts what was added, changed and removed."""
    before = [Entry("/", D, 0o755), Entry("/a", F, 0o644), Entry("/b", F, 0o644)]
    after = [Entry("/", D, 0o755), Entry("/a", F, 0o600), Entry("/c", D, 0o755)]
    diff = layers.LayerDiff.between(before, after)
    assert [e.path for e in diff.added] == ["/c"]
    assert [(c.before.mode, c.after.mode) for c in diff.changed] == [(0o644, 0o600)]
    assert diff.removed == ("/b",)


def test_cache_key_follows_the_layers_below() -> None:
    """A capture's name changes when a layer it was installed on changes."""
    lower = layers.AptLayer("lower", ("a",))
    upper = layers.AptLayer("upper", ("b",), after="lower")
    changed = layers.AptLayer("lower", ("a", "c"))
    key = layers.cache_key({"lower": lower, "upper": upper}, "upper", "bookworm")
    assert key.startswith("upper-")
    assert key != layers.cache_key({"lower": changed, "upper": upper}, "upper", "bookworm")
    assert key != layers.cache_key({"lower": lower, "upper": upper}, "upper", "trixie")


def test_layer_command_is_the_dockerfile_run() -> None:
    """The chroot runs apt-get install --no-install-recommends, cleans up, then the script."""
    layer = layers.AptLayer("x", ("git", "ssh"), script=("locale-gen",))
    command = layer.command()
    assert "apt-get install -y -q --no-install-recommends git ssh" in command
    assert command.index("rm -rf /var/lib/apt/lists/*") < command.index("locale-gen")


# -- the permission steps ----------------------------------------------------------------


def test_chown_directories_changes_directory_owners_only() -> None:
    """Directories under /etc /opt /usr get uid 8536; files, groups and /var stay as they were."""
    tree = run(Tree(base_entries()), steps.chown_directories)
    assert owner(tree, "/usr/bin") == (D, 0o755, CDSW, 0)
    assert owner(tree, "/usr/bin/ls") == (F, 0o755, 0, 0)
    assert owner(tree, "/bin") == (L, 0o777, 0, 0)
    assert owner(tree, "/var/lib") == (D, 0o755, 0, 0)


def test_open_etc_and_chown_root() -> None:
    """/etc and /etc/alternatives become 777 and / becomes cdsw's (owner only)."""
    tree = run(Tree(base_entries()), steps.open_etc, steps.chown_root)
    assert owner(tree, "/etc")[1] == 0o777
    assert owner(tree, "/etc/alternatives")[1] == 0o777
    assert owner(tree, "/") == (D, 0o755, CDSW, 0)


@pytest.mark.parametrize(
    ("permissions", "mode"), [("PERMISSIONS_2024", 0o755), ("PERMISSIONS_2025", 0o750)]
)
def test_cdsw_home_mode_follows_ubuntus_adduser(permissions: str, mode: int) -> None:
    """adduser made /home/cdsw 755 on Ubuntu 20.04 and 750 from 21.04 on."""
    tree = run(Tree(base_entries()), *getattr(catalog, permissions))
    assert owner(tree, "/home/cdsw") == (D, mode, CDSW, CDSW)


def test_apt_clean_drops_lists_named_after_the_mirror() -> None:
    """apt_clean removes list files and caches, which carry the mirror's name."""
    tree = run(Tree(base_entries()), steps.apt_clean)
    assert tree.under("/var/lib/apt/lists") == []
    assert tree.get("/var/cache/apt/pkgcache.bin") is None


@pytest.mark.parametrize(
    ("path", "kind", "pruned"),
    [
        ("/usr/share/doc/git/copyright", F, True),
        ("/usr/share/doc/git", D, False),
        ("/usr/share/cmake-3.25/Modules/x.cmake", F, True),
        ("/usr/share/docs/x", F, False),
        ("/usr/bin/git", F, False),
        ("/usr/include/zlib.h", F, True),
        ("/usr/local/include/python3.10/Python.h", F, False),
    ],
)
def test_pruning_leaves_out_files_of_bulk_trees_only(path: str, kind: str, pruned: bool) -> None:
    """Files below documentation and header trees go; their directories and all else stay."""
    assert steps.is_pruned(path, kind) is pruned


def test_tree_refuses_a_directory_over_a_file() -> None:
    """mkdir -p through a file is a catalog bug, reported as such."""
    tree = Tree(base_entries())
    with pytest.raises(ModelError, match="exists and is not a directory"):
        tree.mkdir("/usr/bin/ls/sub")


# -- whole runtimes ------------------------------------------------------------------------


def synthetic_layers(runtime: catalog.Runtime) -> dict[str, layers.LayerDiff]:
    """An empty diff for every layer but the base layer, which installs 'emacs'."""
    diffs = {name: layers.LayerDiff() for name in catalog.LAYERS}
    for name in catalog.LAYERS:
        if name.startswith("base-"):
            diffs[name] = emacs_layer()
    return diffs


@pytest.mark.parametrize("runtime", catalog.CATALOG, ids=lambda r: r.name)
def test_every_runtime_assembles_on_a_small_root(runtime: catalog.Runtime) -> None:
    """Each catalog runtime's steps run on a tiny root and give cdsw's /usr, root's later trees."""
    tree = build.assemble(base_entries(), runtime, synthetic_layers(runtime))
    assert owner(tree, "/usr/bin")[2] == CDSW
    assert owner(tree, "/runtime-addons") == (D, 0o755, 0, 0)
    assert owner(tree, "/usr/local/share/jupyter/kernels") == (D, 0o755, 0, 0)
    emacs_owner = owner(tree, "/usr/share/emacs")[2]
    assert emacs_owner == (0 if runtime.generation == "2024.02" else CDSW)


def test_snapshot_is_deterministic_and_describes_itself() -> None:
    """Two builds of one runtime give the same bytes, and the snapshot says how it was built."""
    runtime = catalog.by_name("cml-2024.02-r4.3")
    tree = build.assemble(base_entries(), runtime, synthetic_layers(runtime))
    first = build.snapshot(tree, runtime, "bookworm")
    assert first == build.snapshot(tree, runtime, "bookworm")
    assert first[4:8] == b"\0\0\0\0"  # no gzip timestamp
    image = RuntimeImage.from_bytes(gzip.decompress(first), source="test")
    assert image.name == "cml-2024.02-r4.3"
    assert image.meta["generation"] == "2024.02"
    assert "debootstrap" in image.meta["source"]
    assert "Generation 2024.02" in image.description
    assert "Inferred" in image.description
    assert "apt_r_2024" in image.meta["steps"]


def test_catalog_names_and_aliases_are_unique() -> None:
    """No name or alias is used twice, and the default runtime is in the catalog."""
    names = [n for r in catalog.CATALOG for n in (r.name, *r.aliases)]
    assert len(names) == len(set(names))
    assert catalog.by_name(catalog.DEFAULT).name == catalog.DEFAULT
    assert catalog.by_name("cml-2025.01-r4.4").name == "cml-r"


def test_every_layer_used_has_its_chain() -> None:
    """Each replayed apt layer, and every layer it was installed on, is defined."""
    for name in catalog.layers_used():
        assert [layer.name for layer in layers.chain(catalog.LAYERS, name)][-1] == name


# -- the mirror and host names ---------------------------------------------------------------


def test_apt_mirror_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    """The mirror for the suite comes from .sources files first, then sources.list."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://one.example/debian trixie main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    assert chroot.apt_mirror("bookworm", tmp_path) == "http://two.example/debian"
    assert chroot.apt_mirror("trixie", tmp_path) == "http://one.example/debian"


def test_host_names_never_reach_a_snapshot() -> None:
    """A path naming the mirror's host stops the build."""
    entries = [Entry("/var/cache/x/mirror.example_debian", F, 0o644)]
    with pytest.raises(SystemExit, match="mirror host name"):
        chroot.check_no_hosts(entries, chroot.hosts_of(["http://mirror.example/debian"]))
