"""``hivectl migrate --to-vm-bhyve``: send a guest to a host that runs vm-bhyve, in vm-bhyve's own words.

A vm-bhyve host has no ``hivectl _stream``; what it answers is what vm-bhyve's sender asks of it
(``lib/vm-migration``, ``migration::run``), so hivectl sends exactly that, over the same ssh:

1. ``vm migrate -cd DS``: the receiving datastore's dataset (RDS), or exit 1 when it is not ZFS;
2. stage 1: a recursive snapshot ``YYYYmmddHHMMSS-s1`` here, ``zfs send -R`` piped to ``zfs recv RDS/NEW``
   there; ``--warm`` adds vm-bhyve's stage 1b (``-t``: a second, incremental send while the guest runs);
3. the guest stopped here (if running), then stage 2: snapshot ``-s2``, ``zfs send -R -i`` of the changes;
4. with ``--rename``: ``mount`` there to find RDS's path, ``zfs mount RDS/NEW``, ``mv NAME.conf NEW.conf``;
5. ``vm start NEW`` there if it ran here; then the source is destroyed (or, with ``--keep-source``, only the
   migration's snapshots are, as vm-bhyve does without ``-x``).

Unlike vm-bhyve, every step's failure stops the migration (its error calls are misspelled in places and
carry on), the received dataset is destroyed there again and the guest is started here again if this
migration stopped it. It needs a ZFS datastore on both sides, as vm-bhyve does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from hivectl.errors import HivectlError
from hivectl.host.base import CommandFailed, Host, Result
from hivectl.host.pipes import duplex
from hivectl.storage import zfs
from hivectl.store import GuestRef

Say = Callable[[str], None]


class VmBhyveHost:
    """A host running vm-bhyve, reached by ``prefix`` (``ssh HOST``, or any command that runs argv there)."""

    def __init__(self, name: str, prefix: Sequence[str], host: Host) -> None:
        self.name = name
        self.prefix = list(prefix)
        self.host = host

    def run(self, argv: Sequence[str], check: bool = True) -> str:
        return self.host.run([*self.prefix, *argv], check=check).stdout

    def dataset(self, datastore: str) -> str:
        """vm-bhyve's ``vm migrate -cd DS`` answer: the dataset guests of DS live under."""
        result = self.host.run([*self.prefix, "vm", "migrate", "-cd", datastore], check=False)
        answer = result.stdout.strip()
        if result.status != 0 or not answer or len(answer.splitlines()) != 1:
            raise HivectlError(f"{self.name}: 'vm migrate -cd {datastore}' gave no dataset (exit status "
                               f"{result.status}): datastore {datastore} there is missing or not ZFS")
        zfs_name = answer.split("/")
        if any(not part or part in (".", "..") for part in zfs_name):
            raise HivectlError(f"{self.name}: 'vm migrate -cd {datastore}' answered {answer!r}, not a dataset")
        return answer

    def send(self, snapshot: str, since: str | None, target: str) -> None:
        """``zfs send -R [-i SINCE] SNAPSHOT | ssh HOST zfs recv TARGET``."""
        argv = ["zfs", "send", "-R", *(["-i", since] if since else []), snapshot]
        recv = [*self.prefix, "zfs", "recv", target]
        with self.host.reading(argv) as out, duplex(recv) as pipe:
            try:
                while True:
                    block = out.read(1 << 20)
                    if not block:
                        break
                    pipe.stdin.write(block)
            except BrokenPipeError:  # zfs recv there stopped reading: its own words say why
                status = pipe.finish()
                raise CommandFailed(Result(tuple(recv), status or 1, "", pipe.stderr())) from None

    def path_of(self, dataset: str) -> str | None:
        """Where ``dataset`` is mounted there: vm-bhyve's ``mount | grep "^DS " | cut -wf3``."""
        for line in self.run(["mount"]).splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == dataset and words[1] == "on":
                return words[2]
        return None


def stamp(stage: str) -> str:
    """vm-bhyve's migration snapshot names: ``date +'%Y%m%d%H%M%S-s1'``."""
    return time.strftime("%Y%m%d%H%M%S") + f"-{stage}"


def migrate(remote: VmBhyveHost, ref: GuestRef, new: str, datastore: str, running: bool, warm: bool,
            stop: Callable[[], None], say: Say) -> dict[str, Any]:
    """Stages 1, (1b,) 2, rename and start, as vm-bhyve's sender; returns the measured figures.

    ``stop`` stops the guest here. The snapshots are left for the caller to remove (after the start).
    """
    dataset = zfs.require_zfs(ref, "migration to a vm-bhyve host")
    rds = remote.dataset(datastore)
    target = f"{rds}/{new}"
    say(f"remote dataset {target}")
    snaps: list[str] = []
    figures: dict[str, Any] = {"snapshots": snaps, "target_dataset": target}
    received = False
    try:
        first = stamp("s1")
        host_snapshot(remote.host, dataset, first, snaps)
        say(f"stage 1: sending {dataset}@{first}")
        remote.send(f"{dataset}@{first}", None, target)
        received = True
        last = first
        if warm and running:
            second = stamp("s1b")
            host_snapshot(remote.host, dataset, second, snaps)
            say(f"stage 1b: sending {dataset}@{second} (incremental source {last})")
            remote.send(f"{dataset}@{second}", last, target)
            last = second
        stop_at = time.monotonic()
        if running:
            say(f"stage 2: stopping {ref.name}")
            stop()
            third = stamp("s2")
            host_snapshot(remote.host, dataset, third, snaps)
            say(f"stage 2: sending {dataset}@{third} (incremental source {last})")
            remote.send(f"{dataset}@{third}", last, target)
        if new != ref.name:
            path = remote.path_of(rds)
            if path is None:
                raise HivectlError(f"{remote.name}: {rds} is not in 'mount' there: the config cannot be renamed")
            remote.run(["zfs", "mount", target], check=False)  # vm-bhyve ignores this one's answer too
            remote.run(["mv", f"{path}/{new}/{ref.name}.conf", f"{path}/{new}/{new}.conf"])
        if running:
            say(f"starting {new} on {remote.name}")
            remote.run(["vm", "start", new])
            figures["downtime"] = time.monotonic() - stop_at
    except (HivectlError, CommandFailed, OSError):
        if received:
            remote.run(["zfs", "destroy", "-r", target], check=False)
        raise
    return figures


def host_snapshot(host: Host, dataset: str, name: str, taken: list[str]) -> None:
    host.run(["zfs", "snapshot", "-r", f"{dataset}@{name}"])
    taken.append(name)


def remove_snapshots(host: Host, dataset: str, names: list[str]) -> None:
    """vm-bhyve's last step without ``-x``: the migration snapshots go, the guest stays."""
    for name in names:
        host.run(["zfs", "destroy", "-r", f"{dataset}@{name}"], check=False)
