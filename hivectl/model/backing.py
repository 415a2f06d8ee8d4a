"""What backs a disk (``diskN_dev``): one description per backing, asked by every module that handles disks.

vm-bhyve's ``lib/vm-run`` (the disk loop) and ``lib/vm-guest`` (create, add) give the backings:
``file`` is a sparse file in the guest directory, ``zvol``/``sparse-zvol`` a ZFS volume below the guest's
dataset (``zfs create -V``/``-sV``), ``custom`` a full path the administrator chose, ``9p`` a
``sharename=/host/dir`` share, ``iscsi`` a vm-bhyve value no driver here supports. Storage, the
operations and the drivers ask a ``Backing`` (where the data is, whether hivectl makes it, how it is
resized and backed up) instead of comparing ``diskN_dev`` strings, so a new backing is one entry here;
``tests/storage/test_disk_backings.py`` counts such comparisons outside this module (there are none).

Kept free of dataclasses and regular expressions: the guest layout imports it, and ``hivectl list`` is timed.
"""

from __future__ import annotations


class Backing:
    """One ``diskN_dev`` value and what it means for the disk's storage.

    ``in_directory``: the data is a file named inside the guest directory (copied by ``backup``,
    ``clone`` and ``restore`` with the directory). ``zvol``: a ZFS volume below the guest's dataset (needs
    a ZFS datastore; snapshots, clones and ``zfs send`` take it with the guest). ``sparse``: ``zfs create
    -s`` (no reservation). ``literal``: ``diskN_name`` is the location itself and hivectl never creates,
    resizes or copies it. ``share``: a 9p share, a directory and not a block device. ``supported``: some
    driver can attach it.
    """

    __slots__ = ("in_directory", "label", "literal", "name", "share", "sparse", "supported", "zvol")

    def __init__(self, name: str, *, in_directory: bool = False, zvol: bool = False, sparse: bool = False,
                 share: bool = False, supported: bool = True, label: str = "") -> None:
        self.name = name
        self.label = label or name  # how messages name it
        self.in_directory = in_directory
        self.zvol = zvol
        self.sparse = sparse
        self.share = share
        self.supported = supported
        self.literal = not (in_directory or zvol)

    @property
    def managed(self) -> bool:
        """hivectl makes, resizes and destroys the storage itself (``add -d disk -t``, ``create``,
        ``disk resize``): a file or a zvol; a literal location is the administrator's."""
        return self.in_directory or self.zvol

    @property
    def host_path(self) -> bool:
        """``diskN_name`` is a path on the host that hivectl neither makes nor removes (``custom``): it must
        exist when the guest starts."""
        return self.literal and self.supported and not self.share

    def __repr__(self) -> str:
        return f"Backing({self.name!r})"


FILE = Backing("file", in_directory=True)
BACKINGS: tuple[Backing, ...] = (
    FILE,
    Backing("zvol", zvol=True),
    Backing("sparse-zvol", zvol=True, sparse=True),
    Backing("custom"),
    Backing("iscsi", supported=False, label="iSCSI"),
    Backing("9p", share=True),
)
NAMES = tuple(b.name for b in BACKINGS)
DEFAULT = FILE.name  # vm-bhyve's default when diskN_dev is unset
MANAGED = tuple(b.name for b in BACKINGS if b.managed)  # what ``add -d disk -t`` and ``create -i`` accept
_BY_NAME = {b.name: b for b in BACKINGS}


def of(dev: str) -> Backing:
    """The backing called ``dev`` (``""`` is the default, ``file``); an unknown value is a literal location
    no driver supports, so that a config read before validation never makes a disk of it."""
    found = _BY_NAME.get(dev or DEFAULT)
    return found if found is not None else Backing(dev, supported=False)
