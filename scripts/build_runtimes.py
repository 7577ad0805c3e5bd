#!/usr/bin/env python3
"""Generate addon-mount's built-in runtime catalog: ``addon_mount/_runtimes/*.snap.gz``.

Input is a real Debian root filesystem made by ``debootstrap --variant=minbase``.
It is walked with ``lstat`` only (never reading a file), then each runtime
applies its own ordered steps, modelled on Cloudera's public runtime
Dockerfiles (the cloudera/ml-runtimes repository; see ``docs/runtimes.md``),
to the same base. Order matters as it does in a Dockerfile: whatever a step creates
after the permission step stays root's.

Usage::

    python scripts/build_runtimes.py --rootfs /path/to/debootstrapped/root
    sudo python scripts/build_runtimes.py            # runs debootstrap itself
    sudo python scripts/build_runtimes.py --mirror URL

Without ``--rootfs`` the script runs debootstrap into a temporary directory,
as root, with the mirror from ``--mirror`` or else the one this machine's apt
configuration names. The output is deterministic: the same root gives
byte-identical snapshots (sorted walk, no timestamps, gzip mtime 0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from addon_mount import _capture
from addon_mount._runtime import (
    BUILTIN_DIR,
    DEFAULT_RUNTIME,
    DIRECTORY,
    FILE,
    SYMLINK,
    Entry,
    RuntimeImage,
    new_snapshot_db,
    parent_of,
    write_entries,
)

CDSW = 8536  # uid and gid of the cdsw user, from the Dockerfiles' addgroup/adduser
ROOT = 0
MAX_BYTES = 400 * 1024
SUITE = "bookworm"
BASE_SOURCE = "debootstrap --variant=minbase {suite} (Debian), walked with lstat"


# -- the model of a root filesystem being built ---------------------------------


def placeholder_size(path: str) -> int:
    """A stable, plausible size for a modelled file (real contents are never known)."""
    return 200 + zlib.crc32(path.encode()) % 60_000


class Tree:
    """A mutable root filesystem: the entries a Dockerfile step would leave behind.

    Paths are absolute and real: a step writes ``/usr/lib/...``, never through
    the ``/lib`` symlink. Parents a step needs are created as ``mkdir -p``
    run by root would: root-owned, mode 755.
    """

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._entries = {e.path: e for e in entries}

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def exists(self, path: str) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[p] for p in sorted(self._entries)]

    def under(self, top: str) -> list[str]:
        """*top* and every path below it, sorted."""
        prefix = top.rstrip("/") + "/"
        return sorted(p for p in self._entries if p == top or p.startswith(prefix))

    def _put(self, entry: Entry) -> None:
        parent = parent_of(entry.path)
        self.mkdir(parent)
        self._entries[entry.path] = entry

    def mkdir(self, path: str, mode: int = 0o755, uid: int = ROOT, gid: int = ROOT) -> None:
        """``mkdir -p``: existing directories are left as they are."""
        existing = self._entries.get(path)
        if existing is not None:
            if not existing.is_dir:
                raise ValueError(f"model error: {path!r} exists and is not a directory")
            return
        self._put(Entry(path, DIRECTORY, mode, uid, gid))

    def file(
        self,
        path: str,
        mode: int = 0o644,
        uid: int = ROOT,
        gid: int = ROOT,
        size: int | None = None,
    ) -> None:
        """Create or overwrite a regular file (as ``COPY`` or a package install would)."""
        size = placeholder_size(path) if size is None else size
        self._put(Entry(path, FILE, mode, uid, gid, size))

    def files(self, directory: str, names: Iterable[str], mode: int = 0o644) -> None:
        for name in names:
            self.file(f"{directory}/{name}", mode)

    def symlink(self, path: str, target: str, uid: int = ROOT, gid: int = ROOT) -> None:
        """``ln -sf target path``."""
        self._put(Entry(path, SYMLINK, 0o777, uid, gid, 0, target))

    def remove(self, path: str) -> None:
        """``rm -rf path``."""
        for p in self.under(path):
            del self._entries[p]

    def remove_children(self, path: str) -> None:
        """``rm -rf path/*`` (and dot files)."""
        for p in self.under(path):
            if p != path:
                del self._entries[p]

    def chmod(self, path: str, mode: int) -> None:
        self._entries[path] = attrs.evolve(self._entries[path], mode=mode)

    def chown(self, path: str, uid: int | None = None, gid: int | None = None) -> None:
        old = self._entries[path]
        self._entries[path] = attrs.evolve(
            old, uid=old.uid if uid is None else uid, gid=old.gid if gid is None else gid
        )


# -- steps ---------------------------------------------------------------------
# Each step is one Dockerfile instruction (or a few run together), applied in
# the order the runtime lists them. The first docstring line is recorded in
# the snapshot's "steps" meta value.

Step = Callable[[Tree], None]


def apt_clean(t: Tree) -> None:
    """apt-get clean && rm -rf /var/lib/apt/lists/* (every Dockerfile RUN ends this way)."""
    # Besides matching the images, this drops list files named after the mirror.
    t.remove_children("/var/lib/apt/lists")
    for path in t.under("/var/cache/apt"):
        if path.endswith((".deb", ".bin")):
            t.remove(path)


def drop_debootstrap_traces(t: Tree) -> None:
    """Remove what debootstrap itself leaves behind (/var/log/bootstrap.log, /debootstrap)."""
    t.remove("/var/log/bootstrap.log")
    t.remove("/debootstrap")


def base_packages(t: Tree) -> None:
    """apt-get install of the Dockerfiles' first RUN (git, ssh, krb5-user, curl, build tools, ...).

    Modelled by the executables and configuration paths add-ons are likely to
    meet, not every file the packages install.
    """
    bin_ = "/usr/bin"
    t.files(
        bin_,
        [
            "autoconf",
            "automake",
            "cmake",
            "cpio",
            "cpp-12",
            "curl",
            "emacs-nox",
            "ffmpeg",
            "ffprobe",
            "g++-12",
            "gcc-12",
            "git",
            "git-lfs",
            "gpg",
            "kdestroy",
            "kinit",
            "klist",
            "kvno",
            "less",
            "make",
            "nano",
            "patch",
            "scp",
            "sftp",
            "ssh",
            "ssh-add",
            "ssh-agent",
            "ssh-keygen",
            "unzip",
            "wget",
            "xz",
            "zip",
        ],
        mode=0o755,
    )
    for name, version in (("gcc", "gcc-12"), ("g++", "g++-12"), ("cpp", "cpp-12")):
        t.symlink(f"{bin_}/{name}", version)
    # Debian's alternatives: /usr/bin/x -> /etc/alternatives/x -> the chosen program.
    for name, chosen in (
        ("cc", "/usr/bin/gcc"),
        ("c++", "/usr/bin/g++"),
        ("emacs", "/usr/bin/emacs-nox"),
        ("editor", "/bin/nano"),
        ("pico", "/bin/nano"),
    ):
        t.symlink(f"{bin_}/{name}", f"/etc/alternatives/{name}")
        t.symlink(f"/etc/alternatives/{name}", chosen)
    t.file("/etc/krb5.conf")
    t.mkdir("/etc/ssh/ssh_config.d")
    t.file("/etc/ssh/ssh_config")
    t.file("/etc/ssh/moduli")
    t.file("/etc/locale.gen")
    t.file("/usr/lib/locale/locale-archive")
    t.mkdir("/etc/ssl/private", mode=0o700)
    t.file("/etc/ssl/openssl.cnf")
    t.file("/etc/ssl/certs/ca-certificates.crt")
    t.file("/etc/ca-certificates.conf")
    t.mkdir("/usr/share/ca-certificates/mozilla")
    t.mkdir("/usr/lib/git-core")
    t.files("/usr/lib/git-core", ["git-remote-http", "git-remote-https"], mode=0o755)
    lib = "/usr/lib/x86_64-linux-gnu"
    t.file(f"{lib}/libsasl2.so.2.0.25")
    t.symlink(f"{lib}/libsasl2.so.2", "libsasl2.so.2.0.25")
    t.mkdir(f"{lib}/sasl2")
    t.file(f"{lib}/sasl2/libgssapiv2.so.2.0.25")
    t.file(f"{lib}/libzmq.so.5.2.4")
    t.symlink(f"{lib}/libzmq.so.5", "libzmq.so.5.2.4")
    t.mkdir("/usr/lib/gcc/x86_64-linux-gnu/12/include")
    t.file("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    t.file("/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf")


def add_cdsw_user(t: Tree) -> None:
    """addgroup --gid 8536 cdsw; adduser --uid 8536 --gid 8536 cdsw: /home/cdsw and its dotfiles.

    Mode 750 is Ubuntu's adduser default (the Dockerfiles build FROM Ubuntu);
    /etc/passwd and /etc/group are files and change only in content.
    """
    t.mkdir("/home/cdsw", 0o750, CDSW, CDSW)
    for name in (".bash_logout", ".bashrc", ".profile"):
        t.file(f"/home/cdsw/{name}", 0o644, CDSW, CDSW)


def open_etc(t: Tree) -> None:
    """for i in /etc /etc/alternatives; do chmod 777 $i; done."""
    for path in ("/etc", "/etc/alternatives"):
        t.chmod(path, 0o777)


def chown_root(t: Tree) -> None:
    """chown cdsw / (the owner only: the group stays root)."""
    t.chown("/", uid=CDSW)


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


def pki_links(t: Tree) -> None:
    """ln -s libsasl2.so.2 libsasl2.so.3; mkdir -p /etc/pki/tls/certs; ln -s the CA bundle.

    These run after the permission step in the same RUN, so /etc/pki and
    below are root's.
    """
    lib = "/usr/lib/x86_64-linux-gnu"
    t.symlink(f"{lib}/libsasl2.so.3", f"{lib}/libsasl2.so.2")
    t.mkdir("/etc/pki/tls/certs")
    t.symlink("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt")


def pip_conf(t: Tree) -> None:
    """COPY etc/pip.conf /etc/pip.conf."""
    t.file("/etc/pip.conf")


PY = "3.10"
SITE = f"/usr/local/lib/python{PY}/site-packages"
_STDLIB_MODULES = (
    "__future__",
    "_collections_abc",
    "_sitebuiltins",
    "abc",
    "argparse",
    "ast",
    "base64",
    "codecs",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "inspect",
    "io",
    "keyword",
    "locale",
    "operator",
    "os",
    "pathlib",
    "pickle",
    "platform",
    "posixpath",
    "random",
    "re",
    "shutil",
    "site",
    "socket",
    "sre_compile",
    "sre_parse",
    "ssl",
    "stat",
    "string",
    "subprocess",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "traceback",
    "types",
    "typing",
    "warnings",
    "weakref",
    "zipfile",
)
_STDLIB_PACKAGES = (
    "asyncio",
    "collections",
    "concurrent/futures",
    "ctypes",
    "email",
    "encodings",
    "ensurepip",
    "http",
    "importlib",
    "json",
    "logging",
    "multiprocessing",
    "sqlite3",
    "unittest",
    "urllib",
    "venv",
    "xml/etree",
)
_DYNLOAD = (
    "_bz2",
    "_ctypes",
    "_decimal",
    "_hashlib",
    "_json",
    "_lzma",
    "_sqlite3",
    "_ssl",
    "_uuid",
    "math",
    "zlib",
)


def python310(t: Tree) -> None:
    """ADD build/python-prebuilt-3.10.16-...-pkg.tar.gz /usr/local (after the permission step).

    New directories (lib/python3.10, include/python3.10, ...) are root's.
    /usr/local/bin, lib, include and share existed before and keep the cdsw
    owner (inferred: the tarball is assumed not to list them).
    """
    bin_ = "/usr/local/bin"
    t.file(f"{bin_}/python{PY}", 0o755)
    t.symlink(f"{bin_}/python3", f"python{PY}")
    t.symlink(f"{bin_}/python", "python3")
    for name in (f"pip{PY}", "pip3", "pip", f"pydoc{PY}", f"idle{PY}", f"2to3-{PY}"):
        t.file(f"{bin_}/{name}", 0o755)
    t.file(f"{bin_}/python{PY}-config", 0o755)
    t.symlink(f"{bin_}/python3-config", f"python{PY}-config")
    lib = "/usr/local/lib"
    t.file(f"{lib}/libpython{PY}.so.1.0", 0o755)
    t.symlink(f"{lib}/libpython{PY}.so", f"libpython{PY}.so.1.0")
    t.file(f"{lib}/libpython3.so", 0o755)
    t.file(f"{lib}/pkgconfig/python-{PY}.pc")
    t.symlink(f"{lib}/pkgconfig/python3.pc", f"python-{PY}.pc")
    t.files(f"/usr/local/include/python{PY}", ["Python.h", "pyconfig.h", "object.h"])
    t.file(f"/usr/local/share/man/man1/python{PY}.1")
    std = f"{lib}/python{PY}"
    t.files(std, [f"{m}.py" for m in _STDLIB_MODULES])
    for package in _STDLIB_PACKAGES:
        t.file(f"{std}/{package}/__init__.py")
        t.file(f"{std}/{package}/__pycache__/__init__.cpython-310.pyc")
    t.files(
        f"{std}/lib-dynload",
        [f"{m}.cpython-310-x86_64-linux-gnu.so" for m in _DYNLOAD],
        mode=0o755,
    )
    t.files(f"{std}/config-{PY}-x86_64-linux-gnu", ["Makefile", "Setup", "python.o"])
    t.file(f"{SITE}/README.txt")


def site_package(
    t: Tree,
    name: str,
    version: str,
    modules: Iterable[str] = ("__init__.py",),
    scripts: Iterable[str] = (),
    top: str | None = None,
) -> None:
    """What ``pip install name==version`` (as root) leaves in site-packages and bin."""
    top = top or name.replace("-", "_").lower()
    for module in modules:
        # An empty module name means *top* is a single-file module.
        t.file(f"{SITE}/{top}/{module}" if module else f"{SITE}/{top}")
    dist = f"{SITE}/{name.replace('-', '_')}-{version}.dist-info"
    t.files(dist, ["INSTALLER", "METADATA", "RECORD", "WHEEL", "top_level.txt"])
    scripts = list(scripts)
    if scripts:
        t.file(f"{dist}/entry_points.txt")
    for script in scripts:
        t.file(f"/usr/local/bin/{script}", 0o755)


def python_standard_packages(t: Tree) -> None:
    """pip3 install -r python-standard-packages/requirements-3.10.txt (as root)."""
    site_package(t, "pip", "23.0.1", ("__init__.py", "__main__.py", "_internal/__init__.py"))
    site_package(t, "setuptools", "65.5.0", ("__init__.py", "dist.py"))
    site_package(t, "wheel", "0.40.0", ("__init__.py",), scripts=["wheel"])
    site_package(
        t,
        "numpy",
        "1.24.2",
        ("__init__.py", "version.py", "core/__init__.py", "linalg/__init__.py"),
        scripts=["f2py", "f2py3", f"f2py{PY}"],
    )
    site_package(t, "pandas", "1.5.3", ("__init__.py", "core/frame.py", "io/__init__.py"))
    site_package(t, "matplotlib", "3.7.1", ("__init__.py", "pyplot.py", "mpl-data/matplotlibrc"))
    site_package(t, "contourpy", "1.0.7")
    site_package(t, "cycler", "0.11.0", ("",), top="cycler.py")
    site_package(t, "fonttools", "4.39.3", ("__init__.py",), ["fonttools", "ttx"], "fontTools")
    site_package(t, "kiwisolver", "1.4.4")
    site_package(t, "pillow", "9.5.0", ("__init__.py", "Image.py"), top="PIL")
    site_package(t, "seaborn", "0.12.2")
    site_package(t, "requests", "2.31.0", ("__init__.py", "api.py", "sessions.py"))
    site_package(t, "urllib3", "1.26.18")
    site_package(t, "certifi", "2024.7.4", ("__init__.py", "cacert.pem"))
    site_package(t, "idna", "3.4")
    site_package(t, "impyla", "0.18.0", ("__init__.py", "dbapi.py"), top="impala")
    site_package(t, "kerberos", "1.3.1", ("",), top="kerberos.cpython-310-x86_64-linux-gnu.so")
    site_package(t, "bitarray", "2.7.3")
    site_package(t, "six", "1.16.0", ("",), top="six.py")
    site_package(t, "python-dateutil", "2.8.2", ("__init__.py",), top="dateutil")
    site_package(t, "pytz", "2023.3")


def workbench_packages(t: Tree) -> None:
    """pip3 install -r pbj-workbench-base/requirements-3.10.txt; COPY etc/cloudera.mplstyle.

    The Jupyter kernel gateway stack the PBJ Workbench editor talks to.
    """
    t.file("/etc/cloudera.mplstyle")
    site_package(t, "ipykernel", "6.22.0", ("__init__.py", "kernelapp.py"))
    t.files("/usr/local/share/jupyter/kernels/python3", ["kernel.json", "logo-32x32.png"])
    site_package(t, "ipython", "8.12.0", ("__init__.py",), ["ipython", "ipython3"], "IPython")
    site_package(t, "jupyter-client", "8.1.0", scripts=["jupyter-kernel", "jupyter-run"])
    site_package(t, "jupyter-core", "5.3.0", scripts=["jupyter", "jupyter-troubleshoot"])
    site_package(
        t,
        "jupyter-kernel-gateway",
        "2.5.2",
        ("__init__.py", "gatewayapp.py"),
        top="kernel_gateway",
    )
    site_package(t, "jupyter-server", "2.5.0", ("__init__.py", "serverapp.py"))
    site_package(t, "notebook", "6.5.4", scripts=["jupyter-notebook"])
    site_package(t, "tornado", "6.3.3")
    site_package(t, "traitlets", "5.9.0")
    site_package(t, "pyzmq", "25.0.2", top="zmq")
    site_package(t, "anyio", "4.7.0")
    site_package(t, "attrs", "24.2.0", top="attr")
    site_package(t, "nbconvert", "7.3.1", scripts=["jupyter-nbconvert"])
    site_package(t, "nbformat", "5.8.0")
    t.mkdir("/usr/local/etc/jupyter/jupyter_server_config.d")
    t.file("/usr/local/etc/jupyter/jupyter_server_config.d/notebook_shim.json")


def jupyterlab(t: Tree) -> None:
    """COPY etc/jupyterlab.sh; install node; pip install JupyterLab; ln -sf ml-runtime-editor.

    The editor launcher /usr/local/bin/ml-runtime-editor is a symlink to
    jupyterlab.sh. Node.js is unpacked into /usr/local and its files removed
    again, which leaves the directories it created behind, root's.
    """
    bin_ = "/usr/local/bin"
    for name in ("jupyterlab.sh", "read_default_copilot_model.py"):
        t.file(f"{bin_}/{name}", 0o755)
    t.file(f"{bin_}/read_default_copilot_embedding_model.py", 0o755)
    t.symlink(f"{bin_}/ml-runtime-editor", f"{bin_}/jupyterlab.sh")
    # Left behind by `tar tJf node.tar.xz | ... | xargs rm -f`: files go, dirs stay.
    for leftover in (
        "/usr/local/share/doc/node",
        "/usr/local/share/systemtap/tapset",
        "/usr/local/share/man/man1",
    ):
        t.mkdir(leftover)
    site_package(
        t,
        "jupyterlab",
        "4.3.4",
        ("__init__.py", "labapp.py", "extensions/__init__.py"),
        scripts=["jupyter-lab", "jupyter-labextension", "jlpm"],
    )
    site_package(t, "jupyterlab-server", "2.27.3")
    site_package(t, "notebook-shim", "0.2.4")
    site_package(t, "jupyter-lsp", "2.2.5")
    site_package(t, "jupyter-ai", "2.28.2", ("__init__.py", "extension.py"))
    for sub in ("schemas/@jupyterlab", "static", "themes/@jupyterlab"):
        t.mkdir(f"/usr/local/share/jupyter/lab/{sub}")
    t.file("/usr/local/share/jupyter/lab/static/index.html")
    t.mkdir("/usr/local/share/jupyter/labextensions")
    # jupyter labextension disable writes the sys-prefix page config.
    t.file("/usr/local/etc/jupyter/labconfig/page_config.json")


def conda(t: Tree) -> None:
    """bash Miniforge3.sh -b -p /opt/conda (as root, after the permission step).

    /opt stays cdsw's; /opt/conda and everything below are root's, 755.
    Then: jupyter kernelspec remove -f python3; /etc/profile.d/02-conda-init.sh.
    """
    root = "/opt/conda"
    t.mkdir(root)
    t.files(f"{root}/bin", ["conda", "mamba", "python3.12", "pip", "activate", "deactivate"], 0o755)
    t.symlink(f"{root}/bin/python3", "python3.12")
    t.symlink(f"{root}/bin/python", "python3.12")
    t.file(f"{root}/condabin/conda", 0o755)
    t.file(f"{root}/.condarc")
    t.mkdir(f"{root}/conda-meta")
    t.files(f"{root}/conda-meta", ["history", "conda-24.11.3-py312h7900ff3_0.json"])
    t.mkdir(f"{root}/envs")
    t.mkdir(f"{root}/pkgs")
    t.mkdir(f"{root}/include")
    t.mkdir(f"{root}/share")
    t.mkdir(f"{root}/etc/conda/activate.d")
    t.file(f"{root}/etc/profile.d/conda.sh")
    site = f"{root}/lib/python3.12/site-packages"
    for package in ("conda", "conda_libmamba_solver", "libmambapy", "pip", "setuptools"):
        t.file(f"{site}/{package}/__init__.py")
    t.file(f"{root}/lib/libpython3.12.so.1.0", 0o755)
    t.file(f"{root}/lib/python3.12/os.py")
    t.remove("/usr/local/share/jupyter/kernels/python3")
    t.file("/etc/profile.d/02-conda-init.sh")


R_HOME = "/usr/local/lib/R"


def r_runtime(t: Tree) -> None:
    """ADD build/r-prebuilt-4.4.0-...-pkg.tar.gz /usr/local; apt-get install R's dependencies.

    /usr/local/lib/R is new, so root's; then chown -R cdsw:cdsw
    /usr/local/lib/R/etc and ln -sf libopenblas.so.0 .../libRblas.so.
    """
    t.file("/usr/local/bin/R", 0o755)
    t.file("/usr/local/bin/Rscript", 0o755)
    t.files(f"{R_HOME}/bin", ["R", "Rscript", "INSTALL", "REMOVE", "SHLIB"], 0o755)
    t.file(f"{R_HOME}/bin/exec/R", 0o755)
    t.file(f"{R_HOME}/lib/libR.so", 0o755)
    t.symlink(f"{R_HOME}/lib/libRblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
    t.file("/usr/lib/x86_64-linux-gnu/libopenblas.so.0", 0o644)
    t.files(f"{R_HOME}/include", ["R.h", "Rinternals.h"])
    for package in ("base", "compiler", "graphics", "grDevices", "methods", "stats", "utils"):
        t.files(f"{R_HOME}/library/{package}", ["DESCRIPTION", "NAMESPACE"])
        t.file(f"{R_HOME}/library/{package}/R/{package}")
    t.mkdir(f"{R_HOME}/site-library")
    t.files(f"{R_HOME}/etc", ["Makeconf", "Renviron", "ldpaths", "repositories"])
    for path in t.under(f"{R_HOME}/etc"):
        t.chown(path, CDSW, CDSW)
    t.file("/usr/bin/pandoc", 0o755)


def r_profile(t: Tree) -> None:
    """COPY etc/Rprofile.site (chown cdsw:cdsw) and etc/Rserv.conf /etc/Rserv.conf."""
    t.file(f"{R_HOME}/etc/Rprofile.site", 0o644, CDSW, CDSW)
    t.file("/etc/Rserv.conf")


def r_irkernel(t: Tree) -> None:
    """install.packages('IRkernel'); IRkernel::installspec(prefix='/usr/local', name='r4.4').

    Run as root: the packages land in /usr/local/lib/R/site-library, root's.
    """
    for package in ("IRkernel", "IRdisplay", "pbdZMQ", "repr", "jsonlite", "uuid"):
        t.files(f"{R_HOME}/site-library/{package}", ["DESCRIPTION", "NAMESPACE"])
        t.file(f"{R_HOME}/site-library/{package}/R/{package}")
    t.files("/usr/local/share/jupyter/kernels/r4.4", ["kernel.json", "logo-64x64.png"])


def r_debian_library(t: Tree) -> None:
    """R packages from Debian's apt archive (r-base-core, r-cran-*): /usr/lib/R (inferred).

    Not in Cloudera's R Dockerfiles, which build R into /usr/local; custom R
    runtimes that apt-get install R get this layout, root's.
    """
    lib = "/usr/lib/R"
    t.files(f"{lib}/bin", ["R", "Rscript"], 0o755)
    t.file(f"{lib}/lib/libR.so", 0o644)
    t.mkdir(f"{lib}/etc")
    t.file(f"{lib}/etc/Renviron")
    for package in ("base", "stats", "utils"):
        t.file(f"{lib}/library/{package}/DESCRIPTION")
    t.mkdir(f"{lib}/site-library")
    for package in ("jsonlite", "Rcpp"):
        t.file(f"{lib}/site-library/{package}/DESCRIPTION")


CUDA = "12.5"


def cuda_base_image(t: Tree) -> None:
    """FROM nvidia/cuda:12.5.1-devel-ubuntu24.04: the CUDA toolkit, before any other step.

    Because it is in the base image, the permission step that follows
    chowns its directories to cdsw. /usr/local/cuda and cuda-12 are
    update-alternatives links through /etc/alternatives.
    """
    home = f"/usr/local/cuda-{CUDA}"
    target = f"{home}/targets/x86_64-linux"
    t.files(f"{home}/bin", ["nvcc", "nvdisasm", "cuobjdump", "ptxas", "cuda-gdb"], 0o755)
    t.files(f"{target}/include", ["cuda.h", "cuda_runtime.h", "cublas_v2.h"])
    t.files(
        f"{target}/lib",
        [
            "libcudart.so.12.5.82",
            "libcublas.so.12.5.3.2",
            "libcufft.so.11.2.3.61",
            "libnvrtc.so.12.5.82",
        ],
        mode=0o755,
    )
    t.symlink(f"{target}/lib/libcudart.so.12", "libcudart.so.12.5.82")
    t.symlink(f"{target}/lib/libcudart.so", "libcudart.so.12")
    t.symlink(f"{target}/lib/libcublas.so.12", "libcublas.so.12.5.3.2")
    t.symlink(f"{home}/include", "targets/x86_64-linux/include")
    t.symlink(f"{home}/lib64", "targets/x86_64-linux/lib")
    t.files(f"{home}/nvvm/bin", ["cicc"], 0o755)
    t.mkdir(f"{home}/nvvm/libdevice")
    t.file(f"{home}/compat/libcuda.so.555.42.06", 0o755)
    t.mkdir(f"{home}/extras/CUPTI/lib64")
    t.file(f"{home}/version.json")
    t.symlink("/usr/local/cuda", "/etc/alternatives/cuda")
    t.symlink("/etc/alternatives/cuda", home)
    t.symlink("/usr/local/cuda-12", "/etc/alternatives/cuda-12")
    t.symlink("/etc/alternatives/cuda-12", home)
    t.file("/etc/ld.so.conf.d/000_cuda.conf")
    t.file("/etc/ld.so.conf.d/988_cuda-12.conf")
    t.file("/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5", 0o644)
    t.symlink("/usr/lib/x86_64-linux-gnu/libnccl.so.2", "libnccl.so.2.21.5")


def runtime_addons_mount_point(t: Tree) -> None:
    """mkdir /runtime-addons, root's, 755: where the platform mounts each add-on (inferred)."""
    t.mkdir("/runtime-addons", 0o755, ROOT, ROOT)


def step_title(step: Step) -> str:
    doc = (step.__doc__ or step.__name__).strip().splitlines()[0]
    return f"{step.__name__}: {doc}"


# -- the catalog ---------------------------------------------------------------

BASE_LAYER: tuple[Step, ...] = (
    drop_debootstrap_traces,
    base_packages,
    apt_clean,
    add_cdsw_user,
    open_etc,
    chown_root,
    chown_directories,
    pki_links,
    pip_conf,
    python310,
    python_standard_packages,
    workbench_packages,
)

_BASE_NOTE = (
    " Inferred: a Debian {suite} minbase root stands in for Ubuntu (both merged-/usr: "
    "/bin, /sbin, /lib are symlinks); packages are modelled by name, sizes are placeholders."
)


@attrs.frozen
class Runtime:
    """One built-in runtime: its name, what it models, and the steps that build it."""

    name: str
    description: str
    steps: tuple[Step, ...]


CATALOG: tuple[Runtime, ...] = (
    Runtime(
        "cml-workbench-python",
        "PBJ Workbench, Python 3.10 (the default). cdsw (8536) owns / and every directory "
        "under /etc, /opt and /usr; /etc and /etc/alternatives are 777; files are root's, "
        "and so is what later steps add (Python's tree under /usr/local, /etc/pki)." + _BASE_NOTE,
        (*BASE_LAYER, runtime_addons_mount_point),
    ),
    Runtime(
        "cml-jupyterlab-python",
        "JupyterLab, Python 3.10: the Workbench model plus JupyterLab, installed by root "
        "after the permission step; /usr/local/bin/ml-runtime-editor links to "
        "jupyterlab.sh." + _BASE_NOTE,
        (*BASE_LAYER, jupyterlab, runtime_addons_mount_point),
    ),
    Runtime(
        "cml-conda",
        "JupyterLab with conda: Miniforge at /opt/conda, installed after the permission "
        "step, so /opt is cdsw's but /opt/conda and below are root's, 755. Python 3.10 "
        "stands in for the image's 3.12." + _BASE_NOTE,
        (*BASE_LAYER, jupyterlab, conda, runtime_addons_mount_point),
    ),
    Runtime(
        "cml-r",
        "PBJ Workbench, R 4.4: R in /usr/local/lib/R with its site-library, root's (R's "
        "etc/ is cdsw's), added after the permission step. /usr/lib/R, Debian's layout "
        "for R from apt, is inferred." + _BASE_NOTE,
        (
            *BASE_LAYER[:-1],
            r_runtime,
            r_profile,
            workbench_packages,
            r_irkernel,
            r_debian_library,
            runtime_addons_mount_point,
        ),
    ),
    Runtime(
        "cml-cuda",
        "PBJ Workbench, Python 3.10, Nvidia GPU: CUDA 12.5 comes with the FROM image, "
        "before the permission step, so /usr/local/cuda-12.5's directories are cdsw's; "
        "/usr/local/cuda links to it through /etc/alternatives." + _BASE_NOTE,
        (cuda_base_image, *BASE_LAYER, runtime_addons_mount_point),
    ),
)


# -- building ------------------------------------------------------------------


def walk_rootfs(rootfs: Path) -> list[Entry]:
    """Every recorded entry of the root at *rootfs*, read with lstat (the capture walk)."""
    report = _capture.WalkReport()
    entries = [Entry(*row) for row in _capture.walk(str(rootfs), report=report)]
    if report.unreadable or report.errors:
        raise SystemExit(f"build_runtimes: cannot read all of {rootfs}: {report.errors[:5]}")
    return entries


def build(base: list[Entry], runtime: Runtime, suite: str) -> bytes:
    """The gzipped snapshot of *runtime* built on *base*."""
    tree = Tree(base)
    for step in runtime.steps:
        step(tree)
    description = runtime.description.replace("{suite}", suite)
    db = new_snapshot_db(":memory:")
    count = write_entries(db, tree.entries())
    meta = {
        "name": runtime.name,
        "description": description,
        "source": BASE_SOURCE.format(suite=suite),
        "steps": json.dumps([step_title(s) for s in runtime.steps]),
        "entries": str(count),
        "default": "true" if runtime.name == DEFAULT_RUNTIME else "false",
    }
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
    db.commit()
    # Rebuild the file compactly (REPLACE of '/' left a free page), for a stable image.
    db.execute("VACUUM")
    data = db.serialize()
    db.close()
    RuntimeImage.from_bytes(data, source=runtime.name)  # the result must open
    return gzip.compress(data, compresslevel=9, mtime=0)


def _hosts_of(uris: Iterable[str]) -> set[str]:
    return {urllib.parse.urlsplit(u).hostname or "" for u in uris} - {""}


def check_no_hosts(entries: Iterable[Entry], hosts: set[str]) -> None:
    """Refuse to write a catalog with a mirror's host name in any path or link target.

    apt's list files are named after the mirror; whatever the mirror, none may remain.
    """
    for entry in entries:
        if entry.path.startswith("/var/lib/apt/lists/"):
            raise SystemExit(f"build_runtimes: apt list file left in the model: {entry.path!r}")
        for host in hosts:
            if host in entry.path or (entry.target and host in entry.target):
                raise SystemExit(f"build_runtimes: a mirror host name is in {entry.path!r}")


# -- debootstrap ---------------------------------------------------------------


def _deb822_uris(text: str, suite: str) -> Iterator[tuple[bool, str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith((" ", "\t", "#")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            yield suite in suites, uri


def _one_line_uris(text: str, suite: str) -> Iterator[tuple[bool, str]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[2] == suite, words[1]


def apt_mirror(suite: str, etc: Path = Path("/etc/apt")) -> str | None:
    """The first ``deb`` URI of this machine's apt sources, preferring one for *suite*."""
    found: list[tuple[bool, str]] = []
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        found.extend(_deb822_uris(path.read_text(errors="replace"), suite))
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            found.extend(_one_line_uris(path.read_text(errors="replace"), suite))
    for preferred in (True, False):
        for matches, uri in found:
            if matches is preferred:
                return uri
    return None


def _mounts_under(directory: Path) -> list[str]:
    return sorted(_capture.mount_points(str(directory)))


def debootstrap(suite: str, mirror: str, target: Path) -> None:
    """Run ``debootstrap --variant=minbase`` into *target* (needs root)."""
    if os.geteuid() != 0:
        raise SystemExit("build_runtimes: debootstrap needs root (or pass --rootfs DIR)")
    if shutil.which("debootstrap") is None:
        raise SystemExit("build_runtimes: debootstrap is not installed (or pass --rootfs DIR)")
    subprocess.run(["debootstrap", "--variant=minbase", suite, str(target), mirror], check=True)


# -- command line --------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", type=Path, help="an existing debootstrapped root to reuse")
    parser.add_argument("--mirror", help="mirror URL for debootstrap (default: from apt config)")
    parser.add_argument("--suite", default=SUITE, help=f"Debian suite (default: {SUITE})")
    parser.add_argument("--output", type=Path, default=BUILTIN_DIR, help="catalog directory")
    parser.add_argument("--only", action="append", help="build only this runtime (repeatable)")
    args = parser.parse_args(argv)

    configured = apt_mirror(args.suite)
    # Every mirror host name we know of is kept out of the catalog (see check_no_hosts).
    hosts = _hosts_of(u for u in (args.mirror, configured) if u)
    if args.rootfs is not None:
        base = walk_rootfs(args.rootfs)
    else:
        mirror = args.mirror or configured
        if mirror is None:
            raise SystemExit("build_runtimes: no apt mirror configured; pass --mirror URL")
        with tempfile.TemporaryDirectory(prefix="addon-mount-rootfs-") as tmp:
            target = Path(tmp) / "root"
            debootstrap(args.suite, mirror, target)
            base = walk_rootfs(target)
            if _mounts_under(Path(tmp)):
                # Never rmtree through a mount (e.g. a proc left mounted in the chroot).
                raise SystemExit(f"build_runtimes: mounts left under {tmp}; unmount, then rm")
    print(f"base root: {len(base)} entries")

    wanted = set(args.only or [r.name for r in CATALOG])
    unknown = wanted - {r.name for r in CATALOG}
    if unknown:
        raise SystemExit(f"build_runtimes: unknown runtime(s): {', '.join(sorted(unknown))}")
    args.output.mkdir(parents=True, exist_ok=True)
    for runtime in CATALOG:
        if runtime.name not in wanted:
            continue
        data = build(base, runtime, args.suite)
        image = RuntimeImage.from_bytes(gzip.decompress(data), source=runtime.name)
        check_no_hosts(image, hosts)
        out = args.output / f"{runtime.name}.snap.gz"
        out.write_bytes(data)
        note = "" if len(data) <= MAX_BYTES else f"  (over the {MAX_BYTES // 1024} KB budget)"
        print(f"{out}: {len(image)} entries, {len(data)} bytes{note}")
        image.close()
    return 0


if __name__ == "__main__":
    # Paths the script prints are the user's own; nothing else goes to stdout.
    sys.exit(main())
