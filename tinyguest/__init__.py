"""The tiny real guest that hivectl's end-to-end tests boot.

Debian kernel + busybox initramfs, a BIOS+UEFI disk image and an installer ISO.

Built by the project itself (nothing but Debian packages is fetched, through apt), cached between runs.
In-process use::

    import tinyguest
    art = tinyguest.build()          # cached; first run ~20 s
    art.vmlinux, art.initramfs, art.disk_image, art.installer_iso

See README.md in this directory for the guest's serial-console contract (the ready line).
"""

from __future__ import annotations

from .builder import Artifacts, build, default_cache_dir
from .images import BASE_CMDLINE

READY_MARKER = "HIVECTL-GUEST-READY"
INSTALL_DONE_MARKER = "HIVECTL-INSTALL-DONE"

__all__ = ["BASE_CMDLINE", "INSTALL_DONE_MARKER", "READY_MARKER", "Artifacts", "build", "default_cache_dir"]
