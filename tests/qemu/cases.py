"""Representative guest configs rendered by the golden tests and started (paused) by the acceptance tests.

Between them they cover every disk emulation and option, both NIC models, every firmware mapping, an
install boot and the boot after it, direct kernel boot, foreground and multi-port serial, VNC on a socket
and on TCP with a password, and the extra devices; each case is one realistic guest, not one key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.qemu.guests import QCOW2, TINYGUEST

MIB = 1 << 20


@dataclass(frozen=True)
class Case:
    name: str
    conf: str  # @G@ stands for the guest's directory
    files: dict[str, bytes | int | str] = field(default_factory=dict)
    taps: tuple[int, ...] = ()  # NIC indices that get a tap port
    install: str = ""  # file under vm_dir/.iso attached as install media
    first_boot: bool = True
    foreground: bool = False
    needs_host_device: bool = False  # passthrough: QEMU cannot start it here


CASES = (
    Case("bhyveload-virtio", """\
loader="bhyveload"
cpu=1
memory=256M
uuid="0b1c7f5e-6a53-11ef-8f0d-589cfc000001"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:01"
disk0_type="virtio-blk"
disk0_name="disk0.img"
""", {"disk0.img": 64 * MIB}, taps=(0,)),
    Case("uefi-every-disk", """\
loader="uefi"
cpu=4
cpu_sockets=2
cpu_cores=2
memory=1G
utctime="no"
disk0_type="virtio-blk"
disk0_name="disk0.qcow2"
disk1_type="ahci-hd"
disk1_name="disk1.img"
disk1_opts="sectorsize=512/4096,nocache"
disk2_type="ahci-cd"
disk2_name="tools.iso"
disk3_type="nvme"
disk3_name="disk3.img"
disk3_opts="ser=SERIAL42,sectorsize=4096"
disk4_type="virtio-scsi"
disk4_name="disk4.img"
disk4_opts="ro,direct"
disk5_type="virtio-9p"
disk5_name="share=/tmp"
disk5_opts="ro"
disk6_type="nvme"
disk6_name="disk6.img"
disk6_opts="nocache,sync,nodelete,maxq=4"
network0_type="e1000"
network0_mac="58:9c:fc:00:00:02"
network1_type="virtio-net"
network1_mtu="1400"
network1_mac="58:9c:fc:00:00:03"
""", {"disk0.qcow2": QCOW2, "disk1.img": 8 * MIB, "tools.iso": 2 * MIB, "disk3.img": 8 * MIB,
      "disk4.img": 8 * MIB, "disk6.img": 8 * MIB}, taps=(0, 1)),
    Case("uefi-install-first-boot", """\
loader="uefi"
cpu=1
memory=512M
disk0_type="virtio-blk"
disk0_name="disk0.img"
graphics="yes"
""", {"disk0.img": 64 * MIB}, install="installer.iso"),
    Case("uefi-install-second-boot", """\
loader="uefi"
cpu=1
memory=512M
disk0_type="virtio-blk"
disk0_name="disk0.img"
graphics="yes"
""", {"disk0.img": 64 * MIB}, install="installer.iso", first_boot=False),
    Case("direct-kernel-two-com", """\
loader="bhyveload"
cpu=1
memory=256
comports="com1 com2"
qemu_kernel="vmlinux"
qemu_initrd="@G@/boot/initrd.img"
qemu_append="console=ttyS0 quiet hivectl.ip=10.9.0.2/24"
disk0_type="virtio-blk"
disk0_name="@G@/custom/shared.img"
disk0_dev="custom"
""", {"vmlinux": TINYGUEST + "vmlinux", "boot/initrd.img": TINYGUEST + "initramfs", "custom/shared.img": 8 * MIB}),
    Case("foreground", """\
loader="grub"
cpu=1
memory=128M
disk0_type="ahci-hd"
disk0_name="disk0.img"
""", {"disk0.img": 8 * MIB}, foreground=True),
    Case("graphics-tcp-password", """\
loader="uefi-csm"
cpu=2
memory=512M
graphics="yes"
graphics_port="5977"
graphics_res="1024x768"
graphics_wait="yes"
vnc_password="not-in-argv"
xhci_mouse="yes"
disk0_type="virtio-blk"
disk0_name="disk0.img"
""", {"disk0.img": 8 * MIB}),
    Case("extras-and-pinned-slots", """\
loader="uefi"
cpu=1
memory=64M
wired_memory="yes"
ahci_device_limit="3"
start_slot="6"
disk0_type="ahci-hd"
disk0_name="a.img"
disk0_slot="10"
disk1_type="ahci-cd"
disk1_name="b.iso"
disk2_type="ahci-hd"
disk2_name="c.img"
disk2_opts="bootindex=1"
disk3_type="virtio-blk"
disk3_name="d.img"
disk3_slot="12:1"
network0_type="virtio-net"
network0_slot="12:0"
network0_mac="58:9c:fc:00:00:04"
network1_type="virtio-net"
virt_random="yes"
sound="yes"
virt_console0="yes"
virt_console1="org.example.agent"
""", {"a.img": 8 * MIB, "b.iso": 2 * MIB, "c.img": 8 * MIB, "d.img": 8 * MIB}, taps=(0, 1)),
    Case("passthru-custom-firmware", """\
loader="uefi-custom"
cpu=1
memory=256M
passthru0="2/0/0"
passthru1="2/0/1=9:0"
passthru1_options="rom=/tmp/gpu.rom,bootindex=5"
""", needs_host_device=True),
)
