"""Resource limits: every input is read in bounded time and memory.

Each limit is documented in the README's "Limits" table and can be raised or
lowered from the command line (the flag is named in the finding's message).
"""

from __future__ import annotations

from typing import Final

import attrs

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB


@attrs.frozen
class Limits:
    """Upper bounds on what one check reads. Exceeding one is a finding, not a crash."""

    #: Sum of member sizes, uncompressed (--max-total-bytes).
    max_total_bytes: int = attrs.field(
        default=8 * GIB, metadata={"help": "Bytes all archive members may hold, uncompressed."}
    )
    #: Size of one member, uncompressed (--max-member-bytes).
    max_member_bytes: int = attrs.field(
        default=4 * GIB, metadata={"help": "Bytes one archive member may hold, uncompressed."}
    )
    #: Members in one archive (--max-members).
    max_members: int = attrs.field(
        default=1_000_000, metadata={"help": "Members one archive may hold."}
    )
    #: Header data of one member: pax headers, GNU long names, sparse maps (--max-header-bytes).
    #: tarfile reads each of these into memory whole; a 2 GiB long name gzips to 2 MB.
    max_header_bytes: int = attrs.field(
        default=1 * MIB,
        metadata={"help": "Header bytes of one member (pax headers, GNU long names)."},
    )
    #: Length of a member name or requested path, in bytes (--max-path-length).
    max_path_length: int = attrs.field(
        default=4096, metadata={"help": "Bytes in a member name or requested path."}
    )
    #: Components in a member name or requested path (--max-path-depth).
    max_path_depth: int = attrs.field(
        default=128, metadata={"help": "Components in a member name or requested path."}
    )
    #: Size of metadata.json (--max-metadata-bytes).
    max_metadata_bytes: int = attrs.field(
        default=1 * MIB, metadata={"help": "Bytes of metadata.json."}
    )
    #: Entries in spec.paths (--max-paths).
    max_paths: int = attrs.field(default=1000, metadata={"help": "Entries in spec.paths."})
    #: How deep metadata.json may nest arrays and objects (--max-json-depth).
    max_json_depth: int = attrs.field(
        default=32, metadata={"help": "Levels of nested arrays and objects in metadata.json."}
    )

    #: flag name for each field, for messages and the CLI.
    @staticmethod
    def flag(field: str) -> str:
        return "--" + field.replace("_", "-")


DEFAULT_LIMITS: Final = Limits()
