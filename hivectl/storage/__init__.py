"""Storage: disks, ZFS snapshots and clones, ISO and cloud images, cloud-init seeds, backups.

Each module has one job and plans its work as ``hivectl.plan`` actions where it can, so ``--dry-run``
shows what will happen and a failure part-way is rolled back. Streams (downloads, ``zfs send``, backups)
are handled in-process with the standard library: no command is ever taken from a file, and
decompression never runs an external program.
"""
