"""The kernel oracle: random start-up scenarios replayed on Linux and in the model.

``scenario`` generates and writes scenarios, ``kernel`` replays them on the
real kernel (inside ``unshare --mount``), ``verdicts`` turns both sides into
comparable verdicts. Only the standard library is imported here and by
``scenario`` and ``kernel``: the replay runs in a bare subprocess.
"""
