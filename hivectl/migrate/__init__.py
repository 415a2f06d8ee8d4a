"""Migration of a guest to another host (issue 12, item 2; docs/migration.md).

``preflight`` lists every reason the target cannot run the guest before anything moves; ``send`` and
``receive`` are the two ends of the byte stream that carries the guest directory (sparse-aware, in rounds
of changed blocks for a warm migration); ``transport`` is how the sender reaches the other host's
``hivectl _stream`` sub-commands (``streams``); ``zfssend`` and ``zfsrecv`` are the two ends of a ZFS
guest's migration (zfs send/recv through replication's ``hivectl/transfer``, with a control session on the
target that holds its lock, cleans up on failure and publishes at the commit); ``vmcompat`` answers the
words vm-bhyve's own ``vm migrate`` sends to a receiving host. The operation itself, with its locks, journal events and
roll-back, is ``hivectl/ops/migrate.py``.
"""
