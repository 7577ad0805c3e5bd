"""``python scripts/build_runtimes.py``: capture what is missing, then write the catalog."""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from addon_mount._runtime import RuntimeImage
from addon_mount._runtime_sources import BUILTIN_DIR

from .build import MAX_BYTES, assemble, catalog_json, snapshot
from .catalog import CATALOG, LAYERS, layers_used
from .chroot import Captures, apt_mirror, check_no_hosts, hosts_of

SUITE = "bookworm"
WORK = Path.home() / ".cache" / "addon-mount-runtimes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_runtimes.py",
        description="Generate addon-mount's built-in runtime catalog (addon_mount/_runtimes/).",
    )
    parser.add_argument(
        "--work", type=Path, default=WORK, help=f"captures are kept here (default: {WORK})"
    )
    parser.add_argument("--rootfs", type=Path, help="a debootstrapped root to use as the base")
    parser.add_argument("--mirror", help="mirror URL for debootstrap (default: from apt config)")
    parser.add_argument("--suite", default=SUITE, help=f"Debian suite (default: {SUITE})")
    parser.add_argument("--output", type=Path, default=BUILTIN_DIR, help="catalog directory")
    parser.add_argument("--only", action="append", help="build only this runtime (repeatable)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    configured = apt_mirror(args.suite)
    # Every mirror host name we know of is kept out of the catalog (see check_no_hosts).
    hosts = hosts_of(u for u in (args.mirror, configured) if u)
    known = {r.name for r in CATALOG}
    wanted = set(args.only or known)
    if wanted - known:
        raise SystemExit(f"build_runtimes: unknown runtime(s): {', '.join(sorted(wanted - known))}")
    runtimes = tuple(r for r in CATALOG if r.name in wanted)

    captures = Captures(args.work, args.suite, LAYERS)
    used = layers_used(runtimes)
    captures.make(used, args.mirror or configured, args.rootfs)
    if not args.only:
        for stale in captures.forget_others(used):
            print(f"{stale}: removed (a layer definition changed)")
    base = captures.base()
    diffs = {name: captures.diff(name) for name in used}
    print(f"base root: {len(base)} entries; {len(diffs)} apt layers captured")

    args.output.mkdir(parents=True, exist_ok=True)
    for runtime in runtimes:
        tree = assemble(base, runtime, diffs)
        data = snapshot(tree, runtime, args.suite)
        image = RuntimeImage.from_bytes(gzip.decompress(data), source=runtime.name)
        check_no_hosts(image, hosts)
        out = args.output / f"{runtime.name}.snap.gz"
        out.write_bytes(data)
        note = "" if len(data) <= MAX_BYTES else f"  (over the {MAX_BYTES // 1024} KB budget)"
        print(f"{out}: {len(image)} entries, {len(data)} bytes{note}")
        image.close()
    if not args.only:
        (args.output / "catalog.json").write_text(catalog_json(CATALOG))
        for stale in sorted(args.output.glob("*.snap.gz")):
            if stale.name.removesuffix(".snap.gz") not in known:
                stale.unlink()
                print(f"{stale}: removed (no longer in the catalog)")
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0
