"""The addon-mount pytest plugin: the ``addon_workload`` fixture.

Registered through the ``pytest11`` entry point, so installing addon-mount is
enough. The logic lives in :mod:`addon_mount.testing`; this module only wires
it to pytest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from addon_mount.testing import WorkloadFactory


@pytest.fixture
def addon_workload() -> Iterator[WorkloadFactory]:
    """Start a simulated Cloudera AI workload; the test then runs inside it, as cdsw.

    Call it once, ``addon_workload(*bundles, runtime=None)``: bundle
    directories (str or Path) enabled together, and the runtime as
    ``--runtime`` takes it (a built-in name, a snapshot file, a docker-export
    tarball, a root directory, or a RuntimeImage; default the embedded
    default runtime). It returns a :class:`~addon_mount.testing.StartedWorkload`
    with ``ok``, ``findings``, ``links`` and ``report``.

    For the rest of the test, ``os``, ``open``, ``pathlib`` and ``shutil`` see
    the workload's filesystem through pyfakefs, as cdsw (uid and gid 8536):
    the whole runtime, each add-on's archive read-only under
    ``/runtime-addons/custom-addon-<name>`` (writes raise EROFS) and the
    links. After the test, patching and pyfakefs's user ids are as before,
    pass or fail. With pyfakefs's ``fs`` fixture in the same test, the
    workload is built into that fake filesystem.
    """
    factory = WorkloadFactory()
    try:
        yield factory
    finally:
        factory.close()
