"""``tpm`` and ``tpm_path``: a TPM 2.0 device, a software TPM's socket or the host's own (bhyve(8) ``-l tpm``)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, choice, path

TYPES = ("swtpm", "passthru")

KEYS = (
    KeySpec("tpm", choice("none", *TYPES), "TPM 2.0 device: swtpm (a software TPM's socket) or "
            "passthru (the host TPM); UEFI guests only", "none", hivectl=True),
    KeySpec("tpm_path", path, "the swtpm socket (default NAME/swtpm.sock) or host TPM device (default /dev/tpm0)",
            hivectl=True),
)
