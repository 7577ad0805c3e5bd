"""Trees the model writes itself: what ``ADD``, ``pip`` and vendor installers put in place.

These come from tarballs and installers that are not Debian packages
(Cloudera's prebuilt Python and R, pip, Miniforge, the CUDA base image, sbt),
so they cannot be installed in the chroot. Each is modelled by the paths
add-ons are likely to meet, with the owner its Dockerfile step gives them
(root's: every one runs as root) and placeholder sizes.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .steps import Context, Step
from .tree import CDSW, Tree

TRIPLET = "x86_64-linux-gnu"


@attrs.frozen
class Python:
    """A CPython build: its full version, and the directory pip installs into."""

    version: str
    #: "site-packages" for a prebuilt /usr/local Python; "dist-packages" for the distribution's.
    packages_dir: str = "site-packages"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def abi(self) -> str:
        return "cpython-" + self.minor.replace(".", "")

    @property
    def site(self) -> str:
        return f"/usr/local/lib/python{self.minor}/{self.packages_dir}"


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


def python_tarball(py: Python, tarball: str) -> Step:
    """ADD build/<tarball> /usr/local: Cloudera's prebuilt CPython (after the permission step).

    New directories (lib/pythonX.Y, include/pythonX.Y, ...) are root's.
    /usr/local/bin, lib, include and share existed before and keep their
    owner (inferred: the tarball is assumed not to list them).
    """

    def run(t: Tree, _ctx: Context) -> None:
        v, abi = py.minor, py.abi
        bin_ = "/usr/local/bin"
        t.file(f"{bin_}/python{v}", 0o755)
        t.symlink(f"{bin_}/python3", f"python{v}")
        t.symlink(f"{bin_}/python", "python3")
        for name in (f"pip{v}", "pip3", "pip", f"pydoc{v}", f"idle{v}", f"python{v}-config"):
            t.file(f"{bin_}/{name}", 0o755)
        t.symlink(f"{bin_}/python3-config", f"python{v}-config")
        lib = "/usr/local/lib"
        t.file(f"{lib}/libpython{v}.so.1.0", 0o755)
        t.symlink(f"{lib}/libpython{v}.so", f"libpython{v}.so.1.0")
        t.file(f"{lib}/libpython3.so", 0o755)
        t.file(f"{lib}/pkgconfig/python-{v}.pc")
        t.symlink(f"{lib}/pkgconfig/python3.pc", f"python-{v}.pc")
        t.files(f"/usr/local/include/python{v}", ["Python.h", "pyconfig.h", "object.h"])
        t.file(f"/usr/local/share/man/man1/python{v}.1")
        std = f"{lib}/python{v}"
        t.files(std, [f"{m}.py" for m in _STDLIB_MODULES])
        for package in _STDLIB_PACKAGES:
            t.file(f"{std}/{package}/__init__.py")
            t.file(f"{std}/{package}/__pycache__/__init__.{abi}.pyc")
        t.files(f"{std}/lib-dynload", [f"{m}.{abi}-{TRIPLET}.so" for m in _DYNLOAD], mode=0o755)
        t.files(f"{std}/config-{v}-{TRIPLET}", ["Makefile", "Setup", "python.o"])
        t.file(f"{py.site}/README.txt")

    return Step(f"python{py.minor.replace('.', '')}", f"ADD build/{tarball} /usr/local", run)


def site_package(
    t: Tree,
    py: Python,
    name: str,
    version: str,
    modules: Iterable[str] = ("__init__.py",),
    scripts: Iterable[str] = (),
    top: str | None = None,
) -> None:
    """What ``pip install name==version`` (as root) leaves in the package directory and bin."""
    top = top or name.replace("-", "_").lower()
    for module in modules:
        # An empty module name means *top* is a single-file module.
        t.file(f"{py.site}/{top}/{module}" if module else f"{py.site}/{top}")
    dist = f"{py.site}/{name.replace('-', '_')}-{version}.dist-info"
    t.files(dist, ["INSTALLER", "METADATA", "RECORD", "WHEEL", "top_level.txt"])
    scripts = list(scripts)
    if scripts:
        t.file(f"{dist}/entry_points.txt")
    for script in scripts:
        t.file(f"/usr/local/bin/{script}", 0o755)


def python_standard_packages(py: Python) -> Step:
    """pip3 install -r python-standard-packages/requirements-X.Y.txt (as root)."""

    def run(t: Tree, _ctx: Context) -> None:
        site_package(
            t, py, "pip", "24.3.1", ("__init__.py", "__main__.py", "_internal/__init__.py")
        )
        site_package(t, py, "setuptools", "75.6.0", ("__init__.py", "dist.py"))
        site_package(t, py, "wheel", "0.45.1", ("__init__.py",), scripts=["wheel"])
        site_package(
            t,
            py,
            "numpy",
            "1.26.4",
            ("__init__.py", "version.py", "core/__init__.py", "linalg/__init__.py"),
            scripts=["f2py"],
        )
        site_package(t, py, "pandas", "2.2.3", ("__init__.py", "core/frame.py", "io/__init__.py"))
        site_package(t, py, "matplotlib", "3.9.3", ("__init__.py", "pyplot.py"))
        site_package(t, py, "contourpy", "1.3.1")
        site_package(t, py, "cycler", "0.12.1")
        site_package(
            t, py, "fonttools", "4.55.3", ("__init__.py",), ["fonttools", "ttx"], "fontTools"
        )
        site_package(t, py, "kiwisolver", "1.4.7")
        site_package(t, py, "pillow", "11.0.0", ("__init__.py", "Image.py"), top="PIL")
        site_package(t, py, "seaborn", "0.13.2")
        site_package(t, py, "requests", "2.32.3", ("__init__.py", "api.py", "sessions.py"))
        site_package(t, py, "urllib3", "2.2.3")
        site_package(t, py, "certifi", "2024.8.30", ("__init__.py", "cacert.pem"))
        site_package(t, py, "idna", "3.10")
        site_package(t, py, "impyla", "0.20.0", ("__init__.py", "dbapi.py"), top="impala")
        site_package(t, py, "kerberos", "1.3.1", ("",), top=f"kerberos.{py.abi}-{TRIPLET}.so")
        site_package(t, py, "six", "1.17.0", ("",), top="six.py")
        site_package(t, py, "python-dateutil", "2.9.0", ("__init__.py",), top="dateutil")
        site_package(t, py, "pytz", "2024.2")

    return Step(
        "python_standard_packages",
        f"pip3 install -r python-standard-packages/requirements-{py.minor}.txt (as root)",
        run,
    )


def workbench_packages(py: Python) -> Step:
    """pip3 install -r pbj-workbench-base/requirements-X.Y.txt; COPY etc/cloudera.mplstyle."""

    def run(t: Tree, _ctx: Context) -> None:
        t.file("/etc/cloudera.mplstyle")
        site_package(t, py, "ipykernel", "6.29.5", ("__init__.py", "kernelapp.py"))
        t.files("/usr/local/share/jupyter/kernels/python3", ["kernel.json", "logo-32x32.png"])
        site_package(
            t, py, "ipython", "8.30.0", ("__init__.py",), ["ipython", "ipython3"], "IPython"
        )
        site_package(t, py, "jupyter-client", "8.6.3", scripts=["jupyter-kernel", "jupyter-run"])
        site_package(t, py, "jupyter-core", "5.7.2", scripts=["jupyter", "jupyter-troubleshoot"])
        site_package(
            t,
            py,
            "jupyter-kernel-gateway",
            "3.0.1",
            ("__init__.py", "gatewayapp.py"),
            top="kernel_gateway",
        )
        site_package(t, py, "jupyter-server", "2.14.2", ("__init__.py", "serverapp.py"))
        site_package(t, py, "tornado", "6.4.2")
        site_package(t, py, "traitlets", "5.14.3")
        site_package(t, py, "pyzmq", "26.2.0", top="zmq")
        site_package(t, py, "nbconvert", "7.16.4", scripts=["jupyter-nbconvert"])
        site_package(t, py, "nbformat", "5.10.4")
        t.mkdir("/usr/local/etc/jupyter/jupyter_server_config.d")

    return Step(
        "workbench_packages",
        f"pip3 install -r pbj-workbench-base/requirements-{py.minor}.txt; "
        "COPY etc/cloudera.mplstyle /etc/cloudera.mplstyle",
        run,
    )


def jupyterlab(py: Python, *, tex: bool) -> Step:
    """COPY etc/jupyterlab.sh; unpack node; pip install JupyterLab; ln -sf ml-runtime-editor.

    Node.js is unpacked into /usr/local and its files removed again, which
    leaves the directories it created behind, root's. *tex*: the 2026
    Dockerfiles also install pandoc and tectonic into /usr/local/bin.
    """

    def run(t: Tree, _ctx: Context) -> None:
        bin_ = "/usr/local/bin"
        for name in (
            "jupyterlab.sh",
            "read_default_copilot_model.py",
            "read_default_copilot_embedding_model.py",
        ):
            t.file(f"{bin_}/{name}", 0o755)
        t.symlink(f"{bin_}/ml-runtime-editor", f"{bin_}/jupyterlab.sh")
        if tex:
            for name in ("pandoc", "tectonic", "tectonic-nbconvert"):
                t.file(f"{bin_}/{name}", 0o755)
            t.file("/usr/local/etc/jupyter_lab_config.py")
        # Left behind by `tar tJf node.tar.xz | ... | xargs rm -f`: files go, dirs stay.
        for leftover in (
            "/usr/local/share/doc/node",
            "/usr/local/share/systemtap/tapset",
            "/usr/local/share/man/man1",
        ):
            t.mkdir(leftover)
        site_package(
            t,
            py,
            "jupyterlab",
            "4.3.4",
            ("__init__.py", "labapp.py", "extensions/__init__.py"),
            scripts=["jupyter-lab", "jupyter-labextension", "jlpm"],
        )
        site_package(t, py, "jupyterlab-server", "2.27.3")
        site_package(t, py, "notebook-shim", "0.2.4")
        site_package(t, py, "jupyter-lsp", "2.2.5")
        site_package(t, py, "jupyter-ai", "2.28.2", ("__init__.py", "extension.py"))
        for sub in ("schemas/@jupyterlab", "static", "themes/@jupyterlab"):
            t.mkdir(f"/usr/local/share/jupyter/lab/{sub}")
        t.file("/usr/local/share/jupyter/lab/static/index.html")
        t.mkdir("/usr/local/share/jupyter/labextensions")
        # jupyter labextension disable writes the sys-prefix page config.
        t.file("/usr/local/etc/jupyter/labconfig/page_config.json")

    return Step(
        "jupyterlab",
        "COPY etc/jupyterlab.sh /usr/local/bin/; node into /usr/local and out again; "
        f"pip install -r pbj-jupyterlab/requirements-{py.minor}.txt; "
        "ln -sf jupyterlab.sh /usr/local/bin/ml-runtime-editor",
        run,
    )


def conda() -> Step:
    """bash Miniforge3.sh -b -p /opt/conda (as root, after the permission step).

    /opt stays cdsw's; /opt/conda and everything below are root's, 755.
    Then: jupyter kernelspec remove -f python3; /etc/profile.d/02-conda-init.sh.
    """

    def run(t: Tree, _ctx: Context) -> None:
        root = "/opt/conda"
        t.mkdir(root)
        t.files(
            f"{root}/bin", ["conda", "mamba", "python3.12", "pip", "activate", "deactivate"], 0o755
        )
        t.symlink(f"{root}/bin/python3", "python3.12")
        t.symlink(f"{root}/bin/python", "python3.12")
        t.file(f"{root}/condabin/conda", 0o755)
        t.file(f"{root}/.condarc")
        t.files(f"{root}/conda-meta", ["history", "conda-24.11.3-py312h7900ff3_0.json"])
        for sub in ("envs", "pkgs", "include", "share", "etc/conda/activate.d"):
            t.mkdir(f"{root}/{sub}")
        t.file(f"{root}/etc/profile.d/conda.sh")
        site = f"{root}/lib/python3.12/site-packages"
        for package in ("conda", "conda_libmamba_solver", "libmambapy", "pip", "setuptools"):
            t.file(f"{site}/{package}/__init__.py")
        t.file(f"{root}/lib/libpython3.12.so.1.0", 0o755)
        t.file(f"{root}/lib/python3.12/os.py")
        t.remove("/usr/local/share/jupyter/kernels/python3")
        t.file("/etc/profile.d/02-conda-init.sh")

    return Step(
        "conda",
        "bash Miniforge3-24.11.3-0-Linux-x86_64.sh -b -p /opt/conda; "
        "jupyter kernelspec remove -f python3; /etc/profile.d/02-conda-init.sh",
        run,
    )


R_HOME = "/usr/local/lib/R"


def r_tarball(version: str, tarball: str, *, blas_link: bool, ld_conf: bool) -> Step:
    """ADD build/<tarball> /usr/local; then chown -R cdsw:cdsw /usr/local/lib/R/etc.

    /usr/local/lib/R is new, so root's, except etc/, which the Dockerfile
    gives to cdsw. *blas_link*: ln -sf libopenblas.so.0 .../libRblas.so;
    *ld_conf*: echo /usr/local/lib/R/lib > /etc/ld.so.conf.d/cloudera-R.conf.
    """

    def run(t: Tree, _ctx: Context) -> None:
        t.file("/usr/local/bin/R", 0o755)
        t.file("/usr/local/bin/Rscript", 0o755)
        t.files(f"{R_HOME}/bin", ["R", "Rscript", "INSTALL", "REMOVE", "SHLIB"], 0o755)
        t.file(f"{R_HOME}/bin/exec/R", 0o755)
        t.files(f"{R_HOME}/lib", ["libR.so", "libRblas.so", "libRlapack.so"], 0o755)
        if blas_link:
            t.symlink(f"{R_HOME}/lib/libRblas.so", f"/usr/lib/{TRIPLET}/libopenblas.so.0")
        if ld_conf:
            t.file("/etc/ld.so.conf.d/cloudera-R.conf")
        t.files(f"{R_HOME}/include", ["R.h", "Rinternals.h"])
        for package in ("base", "compiler", "graphics", "grDevices", "methods", "stats", "utils"):
            t.files(f"{R_HOME}/library/{package}", ["DESCRIPTION", "NAMESPACE"])
            t.file(f"{R_HOME}/library/{package}/R/{package}")
        t.mkdir(f"{R_HOME}/site-library")
        t.files(f"{R_HOME}/etc", ["Makeconf", "Renviron", "ldpaths", "repositories"])
        for path in t.under(f"{R_HOME}/etc"):
            t.chown(path, CDSW, CDSW)

    return Step(f"r{version.replace('.', '')}", f"ADD build/{tarball} /usr/local", run)


def r_profile() -> Step:
    """COPY etc/Rprofile.site (chown cdsw:cdsw) and etc/Rserv.conf /etc/Rserv.conf."""

    def run(t: Tree, _ctx: Context) -> None:
        t.file(f"{R_HOME}/etc/Rprofile.site", 0o644, CDSW, CDSW)
        t.file("/etc/Rserv.conf")

    return Step(
        "r_profile",
        "COPY etc/Rprofile.site /usr/local/lib/R/etc/ (chown cdsw:cdsw); "
        "COPY etc/Rserv.conf /etc/Rserv.conf",
        run,
    )


def r_irkernel(kernel: str) -> Step:
    """install.packages('IRkernel'); IRkernel::installspec(prefix='/usr/local', ...) as root."""

    def run(t: Tree, _ctx: Context) -> None:
        for package in ("IRkernel", "IRdisplay", "pbdZMQ", "repr", "jsonlite", "uuid"):
            t.files(f"{R_HOME}/site-library/{package}", ["DESCRIPTION", "NAMESPACE"])
            t.file(f"{R_HOME}/site-library/{package}/R/{package}")
        t.files(f"/usr/local/share/jupyter/kernels/{kernel}", ["kernel.json", "logo-64x64.png"])
        t.file("/etc/inputrc")

    return Step(
        "r_irkernel",
        f"install.packages('IRkernel'); IRkernel::installspec(prefix='/usr/local', "
        f"name='{kernel}') (as root: into /usr/local/lib/R/site-library)",
        run,
    )


def cuda_base_image(version: str, image: str, *, cudnn: bool) -> Step:
    """FROM nvidia/cuda: the CUDA toolkit, in the base image, before any other step.

    Because it is in the base image, the permission step that follows
    chowns its directories to cdsw. /usr/local/cuda and cuda-N are
    update-alternatives links through /etc/alternatives.
    """
    major = version.split(".", maxsplit=1)[0]

    def run(t: Tree, _ctx: Context) -> None:
        home = f"/usr/local/cuda-{version}"
        target = f"{home}/targets/x86_64-linux"
        t.files(f"{home}/bin", ["nvcc", "nvdisasm", "cuobjdump", "ptxas", "cuda-gdb"], 0o755)
        t.files(f"{target}/include", ["cuda.h", "cuda_runtime.h", "cublas_v2.h"])
        t.files(
            f"{target}/lib",
            [f"libcudart.so.{version}", f"libcublas.so.{version}", f"libnvrtc.so.{version}"],
            mode=0o755,
        )
        t.symlink(f"{target}/lib/libcudart.so.{major}", f"libcudart.so.{version}")
        t.symlink(f"{target}/lib/libcudart.so", f"libcudart.so.{major}")
        t.symlink(f"{home}/include", "targets/x86_64-linux/include")
        t.symlink(f"{home}/lib64", "targets/x86_64-linux/lib")
        t.files(f"{home}/nvvm/bin", ["cicc"], 0o755)
        t.mkdir(f"{home}/nvvm/libdevice")
        t.mkdir(f"{home}/compat")
        t.mkdir(f"{home}/extras/CUPTI/lib64")
        t.file(f"{home}/version.json")
        t.symlink("/usr/local/cuda", "/etc/alternatives/cuda")
        t.symlink("/etc/alternatives/cuda", home)
        t.symlink(f"/usr/local/cuda-{major}", f"/etc/alternatives/cuda-{major}")
        t.symlink(f"/etc/alternatives/cuda-{major}", home)
        t.file("/etc/ld.so.conf.d/000_cuda.conf")
        t.file(f"/etc/ld.so.conf.d/988_cuda-{major}.conf")
        lib = f"/usr/lib/{TRIPLET}"
        t.file(f"{lib}/libnccl.so.2", 0o644)
        if cudnn:
            t.file(f"{lib}/libcudnn.so.8", 0o644)
            t.file("/usr/include/cudnn.h")

    return Step("cuda_base_image", f"FROM {image} (the CUDA {version} toolkit)", run)


def scala_kernel(py: Python) -> Step:
    """COPY scala/chunker.sh; apt-get install sbt (scala-sbt.org); build and pip install Toree.

    sbt comes from sbt's own apt repository, not Debian's, so it is modelled
    here; openjdk-8-jdk-headless is installed for the build and purged
    again (inferred: nothing of it stays). The kernel is installed with
    --spark_home=/opt/spark: it needs a Spark add-on.
    """

    def run(t: Tree, _ctx: Context) -> None:
        t.files("/usr/local/share/chunker", ["chunker.sh", "ScalaChunker-assembly-1.1.jar"])
        t.chmod("/usr/local/share/chunker/chunker.sh", 0o755)
        t.file("/etc/apt/sources.list.d/sbt.list")
        t.file("/etc/apt/trusted.gpg.d/scalasbt-release.gpg")
        t.files("/usr/share/sbt/bin", ["sbt", "sbt-launch.jar"], 0o755)
        t.files("/usr/share/sbt/conf", ["sbtopts"])
        t.symlink("/usr/share/sbt/conf/sbtopts", "/etc/sbt/sbtopts")
        t.file("/etc/sbt/sbtopts")
        t.symlink("/usr/bin/sbt", "../share/sbt/bin/sbt")
        site_package(t, py, "toree", "0.6.0", ("__init__.py", "toreeapp.py"))
        kernel = "/usr/local/share/jupyter/kernels/apache_toree_scala"
        t.files(kernel, ["kernel.json"])
        t.files(f"{kernel}/bin", ["run.sh"], 0o755)
        t.files(f"{kernel}/lib", ["toree-assembly-0.6.0.jar"])

    return Step(
        "scala_kernel",
        "COPY scala/chunker.sh /usr/local/share/chunker/; apt-get install sbt "
        "openjdk-8-jdk-headless; build Toree; pip3 install toree; jupyter toree install "
        "--spark_home=/opt/spark; apt-get remove --purge openjdk-8-jdk-headless",
        run,
    )


def dist_packages(py: Python) -> Step:
    """pip3 install -r pbj-workbench-base/requirements (into the distribution's python3).

    The 2024.02 R image installs Ubuntu's python3.8 with apt and pip-installs
    the workbench kernel stack into /usr/local/lib/python3.8/dist-packages.
    """

    def run(t: Tree, _ctx: Context) -> None:
        t.file("/etc/cloudera.mplstyle")
        site_package(t, py, "ipykernel", "6.29.5", ("__init__.py", "kernelapp.py"))
        site_package(t, py, "jupyter-client", "8.6.3", scripts=["jupyter-kernel", "jupyter-run"])
        site_package(t, py, "jupyter-core", "5.7.2", scripts=["jupyter"])
        site_package(t, py, "jupyter-kernel-gateway", "2.5.2", top="kernel_gateway")
        t.files("/usr/local/share/jupyter/kernels/python3", ["kernel.json"])

    return Step(
        "workbench_packages",
        f"pip3 install -r pbj-workbench-base/requirements-{py.minor}.txt "
        f"(into {py.site}); COPY etc/cloudera.mplstyle /etc/cloudera.mplstyle",
        run,
    )
