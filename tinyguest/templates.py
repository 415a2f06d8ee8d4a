"""hivectl templates for the tiny guest, shared by the tour, the end-to-end tests and the benchmarks."""

from __future__ import annotations

from tinyguest.builder import Artifacts


def hivectl_template(art: Artifacts | None = None, switch: str | None = "lan", disk_size: str = "128M") -> str:
    """A vm-bhyve-format template for the tiny guest.

    Without ``art`` the guest boots from disk0 with SeaBIOS (install it from ``art.installer_iso`` first);
    with ``art`` it boots the kernel and initramfs directly (PVH: the fastest boot under TCG). ``switch``
    None leaves out the NIC (no network namespace needed).
    """
    how = "its kernel and initramfs directly" if art else "disk0 (BIOS)"
    lines = [f"# The tiny test guest: boots {how}.", 'loader="grub"', "cpu=1", "memory=256M"]
    if switch:
        lines += ['network0_type="virtio-net"', f'network0_switch="{switch}"']
    lines += ['disk0_type="virtio-blk"', 'disk0_name="disk0.img"', f'disk0_size="{disk_size}"']
    if art is not None:
        lines += [f'qemu_kernel="{art.vmlinux}"', f'qemu_initrd="{art.initramfs}"',
                  'qemu_append="console=ttyS0,115200 quiet"']
    return "\n".join(lines) + "\n"
