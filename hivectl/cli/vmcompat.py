"""``vm``, answering the words vm-bhyve's ``vm migrate`` sends to the receiving host (optional).

vm-bhyve's sender (its ``lib/vm-migration``, ``migration::run``) runs, over ssh to the receiving host:

1. ``vm migrate -cd DS`` (``-c``: "output our config"; ``-d DS``, default ``default``): the receiver prints
   the ZFS dataset of its datastore DS (``migration::__check_config``), or exits 1 when DS is not ZFS;
2. ``zfs recv DATASET/NAME`` (stage 1, and again incrementally for stage 2): zfs itself, no ``vm``;
3. with ``-r NEW``: ``mount`` (to find the dataset's path), ``zfs mount`` and ``mv`` of ``NAME.conf`` to
   ``NEW.conf``: no ``vm`` either;
4. ``vm start NAME`` if the guest was running.

So a hivectl host receives a vm-bhyve migration once ``vm`` answers 1 and 4 the way vm-bhyve does; the
guest lands in the vm_dir layout hivectl shares with vm-bhyve and is listed and started as any other. This
entry answers exactly those two words and refuses the rest, naming hivectl; it is installed only on a host
that does not run vm-bhyve itself (docs/migration.md: ``ln -s .../bin/vm /usr/local/sbin/vm``).
"""

from __future__ import annotations

import getopt
import sys
from collections.abc import Sequence

PROG = "vm"
_MIGRATE_OPTIONS = "cn12txr:d:i:"  # vm-bhyve's getopts string for 'vm migrate'


def _migrate(args: list[str]) -> int:
    try:
        opts, _rest = getopt.getopt(args, _MIGRATE_OPTIONS)
    except getopt.GetoptError as error:
        sys.stderr.write(f"{PROG}: migrate: {error}\n")
        return 1
    flags = dict(opts)
    if "-c" not in flags:
        sys.stderr.write(f"{PROG}: this host runs hivectl: send a guest from here with 'hivectl migrate "
                         "NAME REMOTE --to-vm-bhyve' (only the receiving side's 'vm migrate -c' is answered)\n")
        return 1
    from hivectl.context import Context
    from hivectl.errors import HivectlError

    try:
        datastore = Context().store.datastore(flags.get("-d", "default"))
    except HivectlError:
        return 1  # vm-bhyve's __check_config: 'exit 1' with nothing printed
    if datastore.dataset is None:
        return 1
    sys.stdout.write(f"{datastore.dataset}\n")
    return 0


def _start(args: list[str]) -> int:
    from hivectl.cli.main import main as hivectl

    if len(args) != 1:
        sys.stderr.write(f"{PROG}: usage: vm start NAME (hivectl's vm entry starts one guest)\n")
        return 1
    return hivectl(["start", *args])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "migrate":
        return _migrate(args[1:])
    if args and args[0] == "start":
        return _start(args[1:])
    sys.stderr.write(f"{PROG}: this is hivectl's vm-bhyve compatibility entry; it answers only 'vm migrate -c' "
                     "and 'vm start NAME' (use hivectl for the rest)\n")
    return 1
