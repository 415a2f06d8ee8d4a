"""The TPM (``tpm``, ``tpm_path``): not a PCI device but an LPC one, ``-l tpm,<type>,<path>`` in bhyve(8).

``swtpm`` talks to a software TPM someone keeps listening on a socket in the guest directory;
``passthru`` hands the host's ``/dev/tpm0`` (or ``tpm_path``) over. bhyve_config(5) names the same two
settings ``tpm.type`` and ``tpm.path``.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import Pairs
from hivectl.drivers.bhyve.model import check_text
from hivectl.model.guest import GuestConfig
from hivectl.safety.values import bhyve_token
from hivectl.store import GuestRef

Tpm = tuple[str, str]  # (type, path)


def of(config: GuestConfig, ref: GuestRef) -> Tpm | None:
    """``-l tpm,swtpm,<socket>`` (a software TPM someone keeps listening) or ``-l tpm,passthru,/dev/tpm0``."""
    kind = config.get("tpm")
    if kind in ("", "none"):
        return None
    default = str(ref.layout.swtpm_socket) if kind == "swtpm" else "/dev/tpm0"
    path = config.get("tpm_path") or default
    return kind, check_text(config.path, "tpm_path", path)


def is_software(tpm: Tpm | None) -> bool:
    """A software TPM: hivectl starts swtpm listening on ``tpm[1]`` before bhyve (hivectl/drivers/swtpm.py)."""
    return tpm is not None and tpm[0] == "swtpm"


def needs_host_device(tpm: Tpm | None) -> bool:
    """A passed-through TPM needs its device node on the host."""
    return tpm is not None and tpm[0] == "passthru"


def argv(tpm: Tpm) -> list[str]:
    return ["-l", f"tpm,{bhyve_token(tpm[0])},{bhyve_token(tpm[1])}"]


def keys(tpm: Tpm) -> Pairs:
    return [("tpm.type", tpm[0]), ("tpm.path", tpm[1])]
