"""The built-in runtimes: three generations of Cloudera's runtime Dockerfiles, and editions.

Generations differ in where the permission step stands (cloudera/ml-runtimes):

- ``2024.02``: runtimes 2022.11 to 2024.02, ``FROM ubuntu:20.04``. The cdsw
  user, ``chmod 777 /etc`` and the ``chown`` steps are the first ``RUN``s,
  *before* ``apt-get install``: directories the packages create stay root's.
- ``2025.01``: runtimes from 2025.01, ``FROM ubuntu:24.04``. The permission
  steps close the first ``RUN``, *after* the base packages: their directories
  are cdsw's; later layers' are root's.
- ``2026.04``: 2026 runtimes move ffmpeg and emacs-nox out of the first
  ``RUN`` into a later layer again: their directories are root's.

Package names are Debian bookworm's, standing in for Ubuntu's (inferred: the
same packages create much the same directories); where Debian has no package
of the name, the stand-in is named in the layer's note.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from . import products as p
from . import steps as s
from .layers import AptLayer
from .steps import Step

SSH_KEYS = (
    "rm -f /etc/ssh/ssh_host_ecdsa_key /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_rsa_key"
)
LOCALE = "echo 'en_US.UTF-8 UTF-8' > /etc/locale.gen && locale-gen"

_BASE_2024 = (  # noqa: SIM905 - the Dockerfile's list, as it is written there
    "locales apt-transport-https krb5-user xz-utils git ssh unzip gzip curl nano "
    "emacs-nox wget ca-certificates zlib1g-dev libbz2-dev liblzma-dev libssl-dev "
    "libsasl2-dev libsasl2-2 libsasl2-modules-gssapi-mit libzmq3-dev cpio cmake make "
    "libgl-dev libjpeg-dev libpng-dev ffmpeg git-lfs"
).split()
_BASE_2025 = (  # noqa: SIM905 - the Dockerfile's list, as it is written there
    "locales gpg apt-transport-https krb5-user xz-utils git git-lfs ssh zip unzip gzip "
    "curl nano emacs-nox wget less ca-certificates ca-certificates-java zlib1g-dev "
    "libbz2-dev liblzma-dev libssl-dev libsasl2-dev libsasl2-2 "
    "libsasl2-modules-gssapi-mit libzmq3-dev cpio cmake build-essential patch autoconf "
    "automake libgl-dev libjpeg-dev libpng-dev ffmpeg fonts-roboto fonts-dejavu"
).split()
_LATE_2026 = ("ffmpeg", "emacs-nox")
_BASE_2026 = [
    *(name for name in _BASE_2025 if name not in _LATE_2026),
    "unixodbc",
    "unixodbc-dev",
    "tzdata",
]
# build-utils/r/r-runtime-dependencies.txt, with Debian's names for Ubuntu's
# (libicu66/74 -> libicu72, libturbojpeg -> libturbojpeg0, libtiff5 -> libtiff6;
# globs like 'libtiff*' -> the runtime and -dev packages they are there for).
_R_2024 = (  # noqa: SIM905 - the Dockerfile's list, as it is written there
    "bash-completion ca-certificates file fonts-texgyre g++ gfortran gsfonts libblas-dev "
    "libbz2-1.0 libcurl4 libicu72 libturbojpeg0 libopenblas-dev libpangocairo-1.0-0 "
    "libpcre3 libpng16-16 libreadline8 libtiff6 liblzma5 locales make unzip zip zlib1g "
    "unixodbc unixodbc-dev libgit2-dev libxml2 libxml2-dev libcurl4-openssl-dev "
    "libpcre2-dev libpcre3-dev libfontconfig1-dev libcairo2-dev libharfbuzz-dev "
    "libfribidi-dev libfreetype6-dev libpng-dev libtiff-dev libjpeg-dev"
).split()
_R_2025 = (  # noqa: SIM905 - the Dockerfile's list, as it is written there
    "bash-completion ca-certificates file fonts-texgyre g++ gfortran gsfonts libblas-dev "
    "libbz2-1.0 libcurl4 libopenblas-dev libicu72 liblapack-dev libpcre2-dev "
    "libjpeg62-turbo libpangocairo-1.0-0 libpng16-16 libreadline8 libtiff6 libtiff-dev "
    "liblzma5 liblzma-dev locales libxt6 make tzdata unzip zip zlib1g unixodbc "
    "unixodbc-dev libgit2-dev libxml2 libxml2-dev libcurl4-openssl-dev libpcre3-dev "
    "libfontconfig1-dev libcairo2-dev libharfbuzz-dev libfribidi-dev libfreetype6-dev "
    "libpng-dev libjpeg-dev libssl-dev pandoc libicu-dev"
).split()
_R_NOTE = "r-runtime-dependencies.txt, Debian's names for Ubuntu's"
# `dpkg -i /tmp/python*.deb`: the R images install empty python3 packages of version
# 9999 first, so that R's dependencies bring no distribution Python. Here Debian's
# python3.11 names stand in for Ubuntu's python3.12, at a version Debian's python3-*
# packages accept (they want python3 < 3.12).
FAKE_PYTHON = (
    "for p in python3 python3-minimal python3.11 python3.11-minimal; do "
    "mkdir -p /tmp/fake/$p/DEBIAN && printf "
    "'Package: %s\\nVersion: 3.11.9999\\nArchitecture: amd64\\nMulti-Arch: allowed\\n"
    "Maintainer: none\\nDescription: empty stand-in\\n' $p > /tmp/fake/$p/DEBIAN/control "
    "&& dpkg-deb -b /tmp/fake/$p /tmp/fake/$p.deb >/dev/null; done",
    "dpkg -i /tmp/fake/*.deb >/dev/null",
    "rm -rf /tmp/fake",
)
_R_FAKE_NOTE = f"{_R_NOTE}; empty python3 packages first, as the Dockerfile's r/python*.deb"

LAYERS: Mapping[str, AptLayer] = {
    layer.name: layer
    for layer in (
        AptLayer(
            "base-2024",
            tuple(_BASE_2024),
            script=(SSH_KEYS, LOCALE),
            note="git-lfs from Debian for the packagecloud .deb",
        ),
        AptLayer(
            "python-deps-2024",
            ("libsqlite3-0", "mime-support", "libpq-dev", "gcc", "g++", "libkrb5-dev"),
            after="base-2024",
        ),
        AptLayer(
            "r-2024",
            ("python3", "python3-dev", "python3-pip", "python-is-python3", *_R_2024),
            after="python-deps-2024",
            note=f"python3 for Ubuntu's python3.8; {_R_NOTE}",
        ),
        AptLayer("base-2025", tuple(_BASE_2025), script=(SSH_KEYS, LOCALE)),
        AptLayer(
            "python-deps-2025",
            ("libsqlite3-0", "media-types", "libpq-dev", "libkrb5-dev"),
            after="base-2025",
        ),
        AptLayer(
            "r-2025",
            tuple(_R_2025),
            after="python-deps-2025",
            before=FAKE_PYTHON,
            note=_R_FAKE_NOTE,
        ),
        AptLayer("base-2026", tuple(_BASE_2026), script=(SSH_KEYS, LOCALE)),
        AptLayer("late-2026", _LATE_2026, after="base-2026"),
        AptLayer(
            "python-deps-2026",
            ("libsqlite3-0", "media-types", "libpq-dev", "libffi-dev", "libkrb5-dev"),
            after="late-2026",
        ),
        AptLayer(
            "r-2026",
            tuple(_R_2025),
            after="python-deps-2026",
            before=FAKE_PYTHON,
            note=_R_FAKE_NOTE,
        ),
        AptLayer("texlive-2026", ("texlive-binaries",), after="python-deps-2026"),
    )
}


def apt(name: str) -> Step:
    return s.apt(LAYERS[name])


@attrs.frozen
class Generation:
    """A generation of Cloudera's runtime Dockerfiles: where the permission step stands."""

    name: str
    ubuntu: str
    covers: str
    ordering: str


GENERATIONS: Mapping[str, Generation] = {
    g.name: g
    for g in (
        Generation(
            "2024.02",
            "20.04",
            "runtimes 2022.11 to 2024.02",
            "the cdsw user, chmod and chown run before apt-get install, so directories "
            "the packages create are root's",
        ),
        Generation(
            "2025.01",
            "24.04",
            "runtimes 2025.01 to 2025.x",
            "chown runs at the end of the first RUN, after the base packages: their "
            "directories are cdsw's, later layers' root's",
        ),
        Generation(
            "2026.04",
            "24.04",
            "2026 runtimes",
            "as 2025.01, but ffmpeg and emacs-nox are installed in a later layer again, "
            "so their directories are root's",
        ),
    )
}


@attrs.frozen
class Runtime:
    """One built-in runtime: its name, what it models, and the steps that build it."""

    name: str
    generation: str
    edition: str
    dockerfile: str
    models: str
    steps: tuple[Step, ...]
    aliases: tuple[str, ...] = ()

    def description(self) -> str:
        gen = GENERATIONS[self.generation]
        return (
            f"{self.models}. Generation {gen.name} ({gen.covers}, Ubuntu {gen.ubuntu}): "
            f"{gen.ordering}. Modelled on {self.dockerfile} (cloudera/ml-runtimes)."
        )


PREAMBLE = (s.drop_debootstrap_traces, s.apt_clean)
PERMISSIONS_2024 = (
    s.add_cdsw_user(0o755, "adduser --disabled-password --gecos 'CDSW User'"),
    s.open_etc,
    s.chown_root,
    s.chown_directories,
)
PERMISSIONS_2025 = (
    s.add_cdsw_user(0o750, "adduser --disabled-password --comment 'CDSW User'"),
    s.open_etc,
    s.chown_root,
    s.chown_directories,
)
FINISH = (s.runtime_addons_mount_point, s.prune_bulk_files)

PY310_2024 = p.Python("3.10.13")
PY310_2025 = p.Python("3.10.16")
PY312_2025 = p.Python("3.12.8")
PY312_2026 = p.Python("3.12.13")
# Ubuntu 20.04's python3.8, installed with apt in the 2024.02 R image.
PY38_APT = p.Python("3.8.10", packages_dir="dist-packages")


def _front_2024(*, cuda: tuple[Step, ...] = ()) -> tuple[Step, ...]:
    return (
        *PREAMBLE,
        *cuda,
        *PERMISSIONS_2024,
        apt("base-2024"),
        s.remove_krb5_conf,
        s.pki_links,
        apt("python-deps-2024"),
    )


def _python_2024(py: p.Python) -> tuple[Step, ...]:
    return (
        p.python_tarball(py, f"python-{py.version}-pkg.tar.gz"),
        s.pip_conf,
        p.python_standard_packages(py),
        p.workbench_packages(py),
    )


def _front_2025(*, cuda: tuple[Step, ...] = ()) -> tuple[Step, ...]:
    return (
        *PREAMBLE,
        *cuda,
        apt("base-2025"),
        *PERMISSIONS_2025,
        s.pki_links,
        apt("python-deps-2025"),
    )


def _front_2026() -> tuple[Step, ...]:
    return (
        *PREAMBLE,
        apt("base-2026"),
        *PERMISSIONS_2025,
        s.pki_links,
        apt("late-2026"),
        apt("python-deps-2026"),
    )


def _python(py: p.Python, tarball_date: str) -> tuple[Step, ...]:
    return (
        s.pip_conf,
        p.python_tarball(py, f"python-prebuilt-{py.version}-{tarball_date}-pkg.tar.gz"),
        p.python_standard_packages(py),
        p.workbench_packages(py),
    )


CATALOG: tuple[Runtime, ...] = (
    Runtime(
        "cml-2024.02-workbench-python3.10",
        "2024.02",
        "PBJ Workbench, Python 3.10, Standard",
        "pbj-workbench-python3.10-standard.Dockerfile of 2024.02.1-b4",
        "PBJ Workbench, Python 3.10 under /usr/local",
        (*_front_2024(), *_python_2024(PY310_2024), *FINISH),
    ),
    Runtime(
        "cml-2024.02-r4.3",
        "2024.02",
        "PBJ Workbench, R 4.3, Standard",
        "pbj-workbench-r4.3-standard.Dockerfile of 2024.02.1-b4",
        "PBJ Workbench, R 4.3 in /usr/local/lib/R (root's but its etc/); Ubuntu's python3.8 "
        "from apt, with the kernel stack in /usr/local/lib/python3.8/dist-packages",
        (
            *_front_2024(),
            s.pip_conf,
            p.r_tarball(
                "4.3", "r-4.3.1-community-20231004-pkg.tar.gz", blas_link=True, ld_conf=False
            ),
            apt("r-2024"),
            p.r_profile(),
            p.dist_packages(PY38_APT),
            p.r_irkernel("r4.3"),
            *FINISH,
        ),
    ),
    Runtime(
        "cml-2024.02-cuda11.8-python3.10",
        "2024.02",
        "PBJ Workbench, Python 3.10, Nvidia GPU",
        "pbj-workbench-python3.10-cuda.Dockerfile of 2024.02.1-b4",
        "PBJ Workbench, Python 3.10, Nvidia GPU: CUDA 11.8 and cuDNN 8 from the FROM image, "
        "before the permission step, so /usr/local/cuda-11.8's directories are cdsw's",
        (
            *_front_2024(
                cuda=(
                    p.cuda_base_image(
                        "11.8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu20.04", cudnn=True
                    ),
                )
            ),
            *_python_2024(PY310_2024),
            *FINISH,
        ),
    ),
    Runtime(
        "cml-workbench-python",
        "2025.01",
        "PBJ Workbench, Python 3.10, Standard",
        "pbj-workbench-python3.10-standard.Dockerfile of 2025.01.1-b8",
        "PBJ Workbench, Python 3.10 under /usr/local (installed after the permission step, "
        "so root's)",
        (*_front_2025(), *_python(PY310_2025, "20241205"), *FINISH),
        aliases=("cml-2025.01-workbench-python3.10",),
    ),
    Runtime(
        "cml-jupyterlab-python",
        "2025.01",
        "JupyterLab, Python 3.12, Standard",
        "pbj-jupyterlab-python3.12-standard.Dockerfile of 2025.01.1-b8",
        "JupyterLab, Python 3.12: the Workbench layers plus JupyterLab, installed after the "
        "permission step; /usr/local/bin/ml-runtime-editor links to jupyterlab.sh",
        (
            *_front_2025(),
            *_python(PY312_2025, "20241205"),
            p.jupyterlab(PY312_2025, tex=False),
            *FINISH,
        ),
        aliases=("cml-2025.01-jupyterlab-python3.12",),
    ),
    Runtime(
        "cml-r",
        "2025.01",
        "PBJ Workbench, R 4.4, Standard",
        "pbj-workbench-r4.4-standard.Dockerfile of 2025.01.1-b8",
        "PBJ Workbench, R 4.4 in /usr/local/lib/R (root's but its etc/), Python 3.12; "
        "R's system libraries from apt after the permission step, root's",
        (
            *_front_2025(),
            s.pip_conf,
            p.python_tarball(PY312_2025, "python-prebuilt-3.12.8-20241205-pkg.tar.gz"),
            p.python_standard_packages(PY312_2025),
            p.r_tarball(
                "4.4", "r-prebuilt-4.4.0-20241113-pkg.tar.gz", blas_link=True, ld_conf=False
            ),
            apt("r-2025"),
            p.r_profile(),
            p.workbench_packages(PY312_2025),
            p.r_irkernel("r4.4"),
            *FINISH,
        ),
        aliases=("cml-2025.01-r4.4",),
    ),
    Runtime(
        "cml-2025.01-scala2.12",
        "2025.01",
        "PBJ Workbench, Scala 2.12, Standard",
        "pbj-workbench-scala2.12-standard.Dockerfile of 2025.01.1-b8",
        "PBJ Workbench, Scala 2.12 (Apache Toree, run with --spark_home=/opt/spark, so it "
        "needs a Spark add-on), Python 3.12; sbt in /usr/share/sbt; no JVM stays in the image "
        "(inferred: openjdk-8 is purged after the build)",
        (*_front_2025(), *_python(PY312_2025, "20241205"), p.scala_kernel(PY312_2025), *FINISH),
    ),
    Runtime(
        "cml-cuda",
        "2025.01",
        "PBJ Workbench, Python 3.12, Nvidia GPU",
        "pbj-workbench-python3.12-cuda.Dockerfile of 2025.01.1-b8",
        "PBJ Workbench, Python 3.12, Nvidia GPU: CUDA 12.5 from the FROM image, before the "
        "permission step, so /usr/local/cuda-12.5's directories are cdsw's; /usr/local/cuda "
        "links to it through /etc/alternatives",
        (
            *_front_2025(
                cuda=(
                    p.cuda_base_image("12.5", "nvidia/cuda:12.5.1-devel-ubuntu24.04", cudnn=False),
                )
            ),
            *_python(PY312_2025, "20241205"),
            *FINISH,
        ),
        aliases=("cml-2025.01-cuda12.5-python3.12",),
    ),
    Runtime(
        "cml-2026.04-workbench-python3.12",
        "2026.04",
        "PBJ Workbench, Python 3.12, Standard",
        "the layers pbj-conda-standard.Dockerfile of 2026.04.2-b16 shares with the Workbench "
        "images (inferred: a 2026 Workbench image has the same)",
        "PBJ Workbench, Python 3.12 under /usr/local",
        (*_front_2026(), *_python(PY312_2026, "20260309"), *FINISH),
    ),
    Runtime(
        "cml-2026.04-jupyterlab-python3.12",
        "2026.04",
        "JupyterLab, Python 3.12, Standard",
        "the layers pbj-conda-standard.Dockerfile of 2026.04.2-b16 shares with the JupyterLab "
        "images (inferred: a 2026 JupyterLab image has the same)",
        "JupyterLab, Python 3.12; pandoc and tectonic in /usr/local/bin; texlive-binaries "
        "from apt after the permission step, root's",
        (
            *_front_2026(),
            *_python(PY312_2026, "20260309"),
            apt("texlive-2026"),
            p.jupyterlab(PY312_2026, tex=True),
            *FINISH,
        ),
    ),
    Runtime(
        "cml-conda",
        "2026.04",
        "JupyterLab, conda, Tech Preview",
        "pbj-conda-standard.Dockerfile of 2026.04.2-b16",
        "JupyterLab with conda: Miniforge at /opt/conda, installed after the permission step, "
        "so /opt is cdsw's but /opt/conda and below are root's, 755",
        (
            *_front_2026(),
            *_python(PY312_2026, "20260309"),
            apt("texlive-2026"),
            p.jupyterlab(PY312_2026, tex=True),
            p.conda(),
            *FINISH,
        ),
        aliases=("cml-2026.04-conda",),
    ),
    Runtime(
        "cml-2026.08-r4.6",
        "2026.04",
        "PBJ Workbench, R 4.6, Standard",
        "pbj-workbench-r4.6-standard.Dockerfile of 2026.08.1-b5",
        "PBJ Workbench, R 4.6 in /usr/local/lib/R (root's but its etc/), Python 3.12; "
        "R's system libraries from apt after the permission step, root's",
        (
            *_front_2026(),
            s.pip_conf,
            p.python_tarball(PY312_2026, "python-prebuilt-3.12.13-20260309-pkg.tar.gz"),
            p.python_standard_packages(PY312_2026),
            p.r_tarball(
                "4.6", "r-prebuilt-4.6.1-20260721-pkg.tar.gz", blas_link=False, ld_conf=True
            ),
            apt("r-2026"),
            p.r_profile(),
            p.workbench_packages(PY312_2026),
            p.r_irkernel("r4.6"),
            *FINISH,
        ),
    ),
)

#: The runtime a check uses when none is named.
DEFAULT = "cml-workbench-python"


def by_name(name: str) -> Runtime:
    for runtime in CATALOG:
        if name == runtime.name or name in runtime.aliases:
            return runtime
    raise KeyError(name)


def layers_used(runtimes: tuple[Runtime, ...] = CATALOG) -> list[str]:
    """The apt layers the runtimes' steps replay (each layer's chain must be captured)."""
    names = {st.name for r in runtimes for st in r.steps}
    return [name for name, layer in LAYERS.items() if s.apt(layer).name in names]
