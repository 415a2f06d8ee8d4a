"""Prepare actions the bhyve driver needs beyond those in ``hivectl.plan``.

Both are done in-process (no ``cp``/``rm`` process per boot) and shown as the FreeBSD command with the
same effect, as every action in a plan is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hivectl.host.base import Host
from hivectl.plan import Action
from hivectl.records import field, record
from hivectl.safety import paths


@record
class CopyIfMissing(Action):
    """``cp -n``: give a guest its own copy of a template file, and never overwrite an existing copy.

    Used for the UEFI variable store: the guest's copy holds its boot entries (and Secure Boot keys), so
    losing it makes an installed system unbootable. The copy is made under a temporary name and linked
    into place, so a crash never leaves a half-copied store that a later boot would keep.
    """

    source: str  # FreeBSD path, shown in argv
    local_source: Path  # where this host keeps it (under HIVECTL_HOST_ROOT)
    target: Path
    mode: int = 0o600
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return ["cp", "-n", self.source, str(self.target)]

    def apply(self, host: Host) -> None:
        if paths.existing_file(self.target.parent, self.target):  # a planted symlink is refused, not written
            return
        tmp = self.target.with_name(f".{self.target.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(self.local_source, tmp)
            os.chmod(tmp, self.mode)
            try:
                os.link(tmp, self.target)  # fails if another process made the copy meanwhile: keep theirs
                self._created = True
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)

    def undo(self, host: Host) -> None:
        if self._created:
            self.target.unlink(missing_ok=True)


@record
class RemoveFiles(Action):
    """``rm -f``: leftovers that would make the next step fail (stale sockets, an old secrets file)."""

    paths: list[Path]

    def argv(self) -> list[str]:
        return ["rm", "-f", *(str(p) for p in self.paths)]

    def apply(self, host: Host) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
