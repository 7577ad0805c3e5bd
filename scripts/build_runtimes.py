#!/usr/bin/env python3
"""Generate addon-mount's built-in runtime catalog: ``addon_mount/_runtimes/``.

The work is done by the ``runtimes`` package beside this file (see its
docstring). Usage::

    sudo python scripts/build_runtimes.py        # debootstrap and apt, as needed
    python scripts/build_runtimes.py             # from captures already made
    python scripts/build_runtimes.py --only cml-2025.01-r4.4

The first run needs root and a Debian mirror (taken from this machine's apt
configuration unless ``--mirror`` names one): it debootstraps a minbase root
and installs each Dockerfile's apt layers in chroots of it, keeping a walk of
each in ``~/.cache/addon-mount-runtimes``. Later runs reuse those walks. The
output is deterministic: the same captures give byte-identical snapshots.
"""

import sys

from runtimes.cli import main

if __name__ == "__main__":
    sys.exit(main())
