"""``python -m addon_mount``: the command line."""

from ._cli import main

if __name__ == "__main__":  # pragma: no branch
    main()
