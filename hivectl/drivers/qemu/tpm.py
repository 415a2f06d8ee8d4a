"""The TPM for QEMU (``tpm``, ``tpm_path``): a TPM 2.0 TIS device on the ISA bus, backed by swtpm or the host.

``swtpm``: ``-chardev socket,id=chrtpm,path=SOCKET -tpmdev emulator,id=tpm0,chardev=chrtpm -device
tpm-tis,tpmdev=tpm0`` (QEMU's docs/specs/tpm.rst, "The QEMU TPM emulator device"), the socket being swtpm's
control channel (hivectl/drivers/swtpm.py starts it before the boot). ``passthru``: ``-tpmdev
passthrough,id=tpm0,path=/dev/tpm0`` with the same ``tpm-tis`` device. QEMU describes the device in its ACPI
tables, so a Linux guest's tpm_tis driver finds it with any firmware.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.qemu.options import join
from hivectl.model.guest import GuestConfig
from hivectl.store import GuestRef

Tpm = tuple[str, Path]  # (type, socket or device)


def of(config: GuestConfig, ref: GuestRef) -> Tpm | None:
    kind = config.get("tpm")
    if kind not in ("swtpm", "passthru"):
        return None
    default = ref.layout.swtpm_socket if kind == "swtpm" else Path("/dev/tpm0")
    value = config.get("tpm_path")
    return kind, Path(value) if value else default


def argv(tpm: Tpm) -> list[str]:
    kind, path = tpm
    if kind == "swtpm":
        backend = ["-chardev", join("socket", [("id", "chrtpm"), ("path", str(path))]),
                   "-tpmdev", join("emulator", [("id", "tpm0"), ("chardev", "chrtpm")])]
    else:
        backend = ["-tpmdev", join("passthrough", [("id", "tpm0"), ("path", str(path))])]
    return [*backend, "-device", join("tpm-tis", [("tpmdev", "tpm0")])]
