"""The Dockerfile steps every runtime shares: users, permissions, clean-up.

Each step is one Dockerfile instruction (or a few run together). A runtime
lists its steps in the order its Dockerfile runs them; each step's title
(the instruction it models) is recorded in the snapshot's ``steps`` meta value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import attrs

from .layers import AptLayer, LayerDiff
from .tree import CDSW, ROOT, Tree


@attrs.frozen
class Context:
    """What a step may read besides the tree: the captured apt layers, by name."""

    layers: Mapping[str, LayerDiff] = attrs.Factory(dict)


@attrs.frozen
class Step:
    """One step: a name, the instruction it models, and what it does to the tree."""

    name: str
    title: str
    run: Callable[[Tree, Context], None] = attrs.field(eq=False, repr=False)

    def __call__(self, tree: Tree, ctx: Context) -> None:
        self.run(tree, ctx)

    @property
    def line(self) -> str:
        """``name: title``, as the snapshot records it."""
        return f"{self.name}: {self.title}"


def step(fn: Callable[[Tree], None]) -> Step:
    """A step from a function of the tree; its docstring's first line is the title."""
    title = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
    return Step(fn.__name__, title, lambda tree, _ctx: fn(tree))


def apt(layer: AptLayer) -> Step:
    """The step that replays captured apt layer *layer* (see :mod:`.layers`)."""

    def run(tree: Tree, ctx: Context) -> None:
        ctx.layers[layer.name].apply(tree)

    return Step(f"apt_{layer.name.replace('-', '_')}", layer.title, run)


@step
def drop_debootstrap_traces(t: Tree) -> None:
    """Remove what debootstrap itself leaves behind (/var/log/bootstrap.log, /debootstrap)."""
    t.remove("/var/log/bootstrap.log")
    t.remove("/debootstrap")


@step
def apt_clean(t: Tree) -> None:
    """apt-get clean && rm -rf /var/lib/apt/lists/* (every Dockerfile RUN ends this way)."""
    # Besides matching the images, this drops list files named after the mirror.
    t.remove_children("/var/lib/apt/lists")
    for path in t.under("/var/cache/apt"):
        if path.endswith((".deb", ".bin")):
            t.remove(path)


def add_cdsw_user(home_mode: int, adduser: str) -> Step:
    """addgroup --gid 8536 cdsw; adduser --uid 8536 --gid 8536 cdsw: /home/cdsw, its dotfiles.

    *home_mode* is the Ubuntu release's adduser default (755 on 20.04, 750
    from 21.04 on; inferred from Ubuntu's adduser, not from the Dockerfiles).
    /etc/passwd and /etc/group are files and change only in content.
    """

    def run(t: Tree, _ctx: Context) -> None:
        t.mkdir("/home", 0o755)
        t.remove("/home/cdsw")
        t.mkdir("/home/cdsw", home_mode, CDSW, CDSW)
        for name in (".bash_logout", ".bashrc", ".profile"):
            t.file(f"/home/cdsw/{name}", 0o644, CDSW, CDSW)

    return Step(
        "add_cdsw_user",
        f"addgroup --gid 8536 cdsw && {adduser} --uid 8536 --gid 8536 cdsw "
        f"(home mode {home_mode:03o}, Ubuntu's default then)",
        run,
    )


@step
def open_etc(t: Tree) -> None:
    """for i in /etc /etc/alternatives; do chmod 777 $i; done."""
    for path in ("/etc", "/etc/alternatives"):
        if path in t:
            t.chmod(path, 0o777)


@step
def chown_root(t: Tree) -> None:
    """chown cdsw / (the owner only: the group stays root)."""
    t.chown("/", uid=CDSW)


@step
def chown_directories(t: Tree) -> None:
    """for i in /bin /etc /opt /sbin /usr; do find $i -type d -exec chown cdsw {} +; done.

    Directories only, owner only. /bin and /sbin are symlinks into /usr on a
    merged-/usr system: find does not follow a symlinked start point, and
    /usr is walked anyway.
    """
    for top in ("/bin", "/etc", "/opt", "/sbin", "/usr"):
        entry = t.get(top)
        if entry is None or not entry.is_dir:
            continue
        for path in t.under(top):
            found = t.get(path)
            if found is not None and found.is_dir:
                t.chown(path, uid=CDSW)


@step
def remove_krb5_conf(t: Tree) -> None:
    """rm -f /etc/krb5.conf (the platform mounts its own)."""
    t.remove("/etc/krb5.conf")


@step
def pki_links(t: Tree) -> None:
    """ln -s libsasl2.so.2 libsasl2.so.3; mkdir -p /etc/pki/tls/certs; ln -s the CA bundle.

    These run after the permission step, so /etc/pki and below are root's.
    """
    lib = "/usr/lib/x86_64-linux-gnu"
    t.symlink(f"{lib}/libsasl2.so.3", f"{lib}/libsasl2.so.2")
    t.mkdir("/etc/pki/tls/certs")
    t.symlink("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt")


@step
def pip_conf(t: Tree) -> None:
    """COPY etc/pip.conf /etc/pip.conf."""
    t.file("/etc/pip.conf")


@step
def runtime_addons_mount_point(t: Tree) -> None:
    """mkdir /runtime-addons, root's, 755: where the platform mounts each add-on (inferred)."""
    t.mkdir("/runtime-addons", 0o755, ROOT, ROOT)


# Trees of data no add-on links into: their files are left out of the snapshots
# (directories stay, so every permission verdict under them is unchanged). '*'
# matches within one path component.
PRUNED_TREES: tuple[str, ...] = (
    "/usr/include",
    "/usr/lib/x86_64-linux-gnu/perl",
    "/usr/lib/x86_64-linux-gnu/perl-base",
    "/usr/lib/x86_64-linux-gnu/perl5",
    "/usr/lib/python3",
    "/usr/lib/python3.*",
    "/usr/lib/terminfo",
    "/usr/share/aclocal*",
    "/usr/share/alsa",
    "/usr/share/autoconf",
    "/usr/share/automake-*",
    "/usr/share/bash-completion",
    "/usr/share/bug",
    "/usr/share/cmake-*",
    "/usr/share/common-licenses",
    "/usr/share/doc",
    "/usr/share/emacs",
    "/usr/share/fontconfig",
    "/usr/share/gdb",
    "/usr/share/i18n",
    "/usr/share/icons",
    "/usr/share/info",
    "/usr/share/lintian",
    "/usr/share/locale",
    "/usr/share/man",
    "/usr/share/mime",
    "/usr/share/nano",
    "/usr/share/pandoc",
    "/usr/share/perl",
    "/usr/share/perl5",
    "/usr/share/terminfo",
    "/usr/share/texlive",
    "/usr/share/texmf",
    "/usr/share/X11",
    "/usr/share/zoneinfo",
    "/usr/share/zsh",
    "/var/lib/dpkg/info",
)


def _pruned_pattern(trees: tuple[str, ...]) -> re.Pattern[str]:
    parts = (re.escape(t).replace(r"\*", "[^/]*") for t in trees)
    return re.compile(rf"(?:{'|'.join(parts)})/")


_PRUNED = _pruned_pattern(PRUNED_TREES)


def is_pruned(path: str, kind: str) -> bool:
    """True for a file, symlink or other non-directory below one of :data:`PRUNED_TREES`."""
    return kind != "d" and _PRUNED.match(path) is not None


@step
def prune_bulk_files(t: Tree) -> None:
    """Leave out files below documentation, locale and header trees (directories stay).

    Not a Dockerfile step: it keeps each snapshot small. Paths an add-on is
    refused under these trees are still refused (the directories and their
    owners are kept); a collision with one of the files left out is not seen.
    """
    t.remove_if(lambda entry: is_pruned(entry.path, entry.type))
