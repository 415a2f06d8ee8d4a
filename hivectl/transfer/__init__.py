"""ZFS send/receive of a guest's datasets between this host and another (issue 12: replication, migration).

A guest on ZFS is its dataset ``<vm_dir dataset>/NAME`` (config file, logs, file disks) and the zvols below
it. :func:`hivectl.transfer.send.sync` brings the other side's copy up to a snapshot, dataset by dataset,
one ``zfs send`` stream per step: a full stream when the other side has nothing, then one incremental
(``zfs send -i``) per snapshot, so that every step can be resumed by itself. Where both ZFS have resumable
receives (OpenZFS: ``zfs recv -s``, ``receive_resume_token``, ``zfs send -t``; zfs-receive(8), zfs-send(8)),
an interrupted step leaves a token on the receiving side and the next run sends only the rest; where they
do not (zfs-fuse 0.7), the interrupted step is sent again from its start (docs/replication.md).

The last snapshot both sides have is held on both (``zfs hold``, zfs-hold(8)): neither pruning nor an
administrator's ``zfs destroy`` can remove it while replication needs it as the base of the next step.
Holds work on every ZFS here; bookmarks (which zfs-fuse lacks) would only matter if the source's snapshot
could go, which the hold prevents.

The decisions (:mod:`hivectl.transfer.chain`) are pure, so that the property test of the chain uses the
same code as the real transfers. The other side is a :class:`hivectl.transfer.peer.Peer`: a second vm_dir on
this host, or a remote's ``hivectl _stream replica ...`` (hivectl/remote).
"""
