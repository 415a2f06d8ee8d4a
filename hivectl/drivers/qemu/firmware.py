"""Firmware: vm-bhyve's ``loader`` on QEMU.

| ``loader`` | QEMU |
|---|---|
| ``uefi``, ``uefi-devel`` | OVMF: ``OVMF_CODE_4M.fd`` read-only pflash + the guest's own vars store |
| ``uefi-custom`` | the code image ``<datastore>/.config/BHYVE_UEFI.fd`` (where vm-bhyve looks), same vars |
| ``uefi-csm`` | SeaBIOS (the CSM is legacy BIOS boot; Debian's OVMF has no CSM) |
| ``bhyveload``, ``grub`` | SeaBIOS booting the disk's own boot loader |

bhyveload and grub-bhyve are FreeBSD programs that load a kernel into a bhyve VM; there is nothing to
run on Linux, and a disk that boots under them normally carries its own boot blocks, so SeaBIOS boots it
from disk. ``qemu_kernel`` (a hivectl key) bypasses firmware boot with ``-kernel``.

OVMF needs a writable variable store, so every UEFI guest gets ``NAME/uefi-vars.fd``, copied once from
``OVMF_VARS_4M.fd`` by a prepare action that never overwrites it: boot entries an installer writes
survive reboots and restarts, as with vm-bhyve's ``uefi_vars=yes``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hivectl.drivers.qemu.options import props_text
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.plan import Action
from hivectl.records import field, record
from hivectl.safety import paths
from hivectl.store import GuestRef

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@record(frozen=True)
class Firmware:
    """What boots the guest: ``seabios`` (QEMU's default, no arguments) or ``ovmf`` with its two images."""

    kind: str
    code: Path | None = None
    vars_template: Path | None = None
    vars: Path | None = None

    def argv(self) -> list[str]:
        if self.kind != "ovmf" or self.code is None or self.vars is None:
            return []
        code = [("if", "pflash"), ("format", "raw"), ("unit", "0"), ("readonly", "on"), ("file", str(self.code))]
        store = [("if", "pflash"), ("format", "raw"), ("unit", "1"), ("file", str(self.vars))]
        return ["-drive", props_text(code), "-drive", props_text(store)]


def firmware_for(ref: GuestRef, config: GuestConfig, code: Path = OVMF_CODE,
                 vars_template: Path = OVMF_VARS) -> Firmware:
    loader = config.loader
    if not loader.startswith("uefi") or loader == "uefi-csm":
        return Firmware("seabios")
    if loader == "uefi-custom":
        code = ref.datastore.path / ".config" / "BHYVE_UEFI.fd"
    return Firmware("ovmf", code, vars_template, ref.layout.uefi_vars)


@record
class CopyOnce(Action):
    """Copy a template file into place unless the target already exists; never overwrites.

    The copy is made under a temporary name and linked into place, so a crash never leaves a half-written
    vars store and two concurrent starts cannot both create it.
    """

    source: Path
    target: Path
    mode: int = 0o600
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return ["cp", "-n", str(self.source), str(self.target)]

    def apply(self, host: Host) -> None:
        if paths.existing_file(self.target.parent, self.target):  # a planted symlink is refused, not written
            return
        import shutil  # only when the vars file is made: tempfile imports random, shutil bz2 and lzma
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", dir=self.target.parent)
        try:
            with os.fdopen(fd, "wb") as out, self.source.open("rb") as src:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fchmod(out.fileno(), self.mode)
                os.fsync(out.fileno())
            try:
                os.link(tmp, self.target)
                self._created = True
            except FileExistsError:
                pass  # someone else made it first: theirs is the one to keep
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def undo(self, host: Host) -> None:
        if self._created:
            self.target.unlink(missing_ok=True)
