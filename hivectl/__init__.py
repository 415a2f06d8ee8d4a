"""hivectl: manage bhyve virtual machines, drop-in for vm-bhyve; the same model drives QEMU on Linux."""

__version__ = "0.1.0"
