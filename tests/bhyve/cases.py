"""The golden cases: every shipped template, and hand-written guests that together use every key.

``test_key_coverage`` fails when a key of the key table appears in no case, so a new key cannot land
without a golden file that shows what it does to the command line.
"""

from __future__ import annotations

from tests.bhyve.harness import TEMPLATES, Boot, Case, template_case

UUID = 'uuid="0b1c7f5e-6a53-11ef-8f0d-589cfc000001"'

HAND_WRITTEN: tuple[Case, ...] = (
    Case(
        "uefi-devices",
        "a UEFI guest on ZFS with every kind of PCI device, pinned slots, TPM, pinning and nulliso_fix",
        f"""
loader="uefi"
uefi_vars="yes"
{UUID}
cpu=4
cpu_sockets=2
cpu_cores=2
cpu_threads=1
cpu_pin="0:0 1:1 2:2 3:3 3:4"
memory=2G
wired_memory="yes"
hostbridge="amd"
fwcfg="qemu"
comports="com1 com2"
utctime="no"
bhyve_options="-W -o x86.verbosemsr=true"
ignore_msr="yes"
start_slot="5"
install_slot="2"
ahci_device_limit="3"
disk0_type="nvme"
disk0_name="disk0.img"
disk0_opts="sectorsize=4096,bootindex=2"
disk1_type="ahci-hd"
disk1_name="disk1"
disk1_dev="sparse-zvol"
disk2_type="ahci-cd"
disk2_name="@VM@/.iso/tools.iso"
disk2_dev="custom"
disk2_opts="ro"
disk3_type="ahci-hd"
disk3_name="disk3.img"
disk3_opts="nocache,direct"
disk4_type="virtio-blk"
disk4_name="disk4"
disk4_dev="zvol"
disk4_slot="20"
disk5_type="virtio-9p"
disk5_name="shared=@VM@/shared"
disk5_dev="9p"
disk5_opts="ro"
disk6_type="virtio-scsi"
disk6_name="/dev/cam/ctl"
disk6_dev="custom"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:01"
network0_mtu="9000"
network1_type="e1000"
network1_switch="lan"
network1_mac="58:9c:fc:00:00:02"
network1_slot="21:0"
virt_random="yes"
passthru0="2/0/0"
passthru0_options="rom=/boot/gpu.rom"
graphics="yes"
graphics_port="5905"
graphics_listen="0.0.0.0"
graphics_res="1920x1080"
graphics_wait="no"
graphics_vga="io"
xhci_mouse="yes"
sound="yes"
sound_play="/dev/dsp1"
sound_rec="/dev/dsp1"
virt_console0="yes"
virt_console1="org.qemu.guest_agent.0"
tpm="swtpm"
tpm_path="@ZFS@/guest/tpm.sock"
nulliso_fix="yes"
""",
        (Boot("run"), Boot("install", install=".iso/install.iso")),
        zfs=True,
    ),
    Case(
        "uefi-vnc-password",
        "a VNC password moves the whole invocation into a 0600 -k file; graphics_wait=auto waits only on the "
        "first install boot",
        f"""
loader="uefi"
{UUID}
cpu=2
memory=4G
graphics="yes"
graphics_res="1280x1024"
vnc_password="s3cr%t\\x"
xhci_mouse="yes"
disk0_type="ahci-hd"
disk0_name="disk0.img"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:05"
""",
        (Boot("run"), Boot("install", install=".iso/win.iso"),
         Boot("reboot during install", install=".iso/win.iso", first_boot=False)),
    ),
    Case(
        "bhyveload-everything",
        "bhyveload with its own loader and arguments, wired memory, two COM ports, no host bridge, and "
        "settings that do not apply without UEFI (warnings)",
        f"""
loader="bhyveload"
bhyveload_loader="/boot/userboot_lua.so"
bhyveload_args="-e machdep.hyperthreading_allowed=0 -e kern.hz=100"
loader_timeout="10"
{UUID}
cpu=2
memory=1024
wired_memory="yes"
hostbridge="none"
comports="com2 com1"
graphics="yes"
tpm="passthru"
disk0_type="virtio-blk"
disk0_name="disk0.img"
disk1_type="virtio-blk"
disk1_name="disk1.img"
network0_type="e1000"
network0_switch="public"
network0_mac="58:9c:fc:00:00:06"
network0_mtu="9000"
""",
        (Boot("run", vmm_exists=True), Boot("install", install=".iso/FreeBSD-14.3-RELEASE-amd64-disc1.iso"),
         Boot("install reboot", install=".iso/FreeBSD-14.3-RELEASE-amd64-disc1.iso", first_boot=False),
         Boot("foreground", foreground=True)),
    ),
    Case(
        "bhyveload-9p-root",
        "a FreeBSD guest whose root file system is a host directory shared over virtio-9p",
        f"""
loader="bhyveload"
{UUID}
cpu=1
memory=512M
disk0_type="virtio-9p"
disk0_name="rootfs=@VM@/roots/guest"
disk0_dev="9p"
network0_type="virtio-net"
network0_switch="public"
""",
    ),
    Case(
        "grub-commands",
        "grub-bhyve with generated grub.cfg for install and run, an image installer, extra disks in device.map",
        f"""
loader="grub"
loader_timeout="5"
{UUID}
cpu=1
memory=1G
disk0_type="virtio-blk"
disk0_name="disk0.img"
disk1_type="virtio-9p"
disk1_name="data=@VM@/data"
disk1_dev="9p"
disk2_type="ahci-hd"
disk2_name="disk2.img"
grub_install0="linux /boot/vmlinuz console=ttyS0"
grub_install1="initrd /boot/initrd.gz"
grub_install2="boot"
grub_run0="linux /vmlinuz root=/dev/vda2 console=ttyS0"
grub_run1="initrd /initrd.img"
grub_run_partition="gpt2"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:07"
""",
        (Boot("run"), Boot("install", install=".iso/debian.iso"), Boot("install from an image", install=".img/x.raw")),
    ),
    Case(
        "grub-no-partition",
        "grub-bhyve reading the guest's own grub.cfg from a disk without partitions (vm-bhyve never honours "
        "grub_run_no_partition)",
        f"""
loader="grub"
{UUID}
cpu=1
memory=512M
disk0_type="virtio-blk"
disk0_name="disk0.img"
grub_run_no_partition="yes"
grub_run_dir="/boot/grub2"
grub_run_file="custom.cfg"
""",
        (Boot("run"), Boot("install", install=".iso/cloud.iso")),
    ),
    Case(
        "uefi-csm",
        "the CSM firmware with VGA on, for guests that only boot from a BIOS",
        f"""
loader="uefi-csm"
{UUID}
cpu=1
memory=1G
graphics="yes"
graphics_vga="on"
graphics_wait="yes"
disk0_type="ahci-hd"
disk0_name="disk0.img"
nulliso_fix="yes"
""",
    ),
    Case(
        "uefi-devel",
        "the uefi-devel firmware, and VNC on an IPv6 address",
        f"""
loader="uefi-devel"
{UUID}
cpu=1
memory=1G
graphics="yes"
graphics_listen="::1"
disk0_type="virtio-blk"
disk0_name="disk0.img"
""",
    ),
    Case(
        "uefi-custom",
        "uefi-custom: the firmware in <datastore>/.config, here a ZFS datastore",
        f"""
loader="uefi-custom"
{UUID}
cpu=1
memory=1G
disk0_type="virtio-blk"
disk0_name="disk0"
disk0_dev="zvol"
""",
        zfs=True,
    ),
    Case(
        "pinned-slots",
        "pinned NIC and disk slots (one on bus 1: -Y), ahci packing and many disks around them, non-UEFI",
        f"""
loader="bhyveload"
{UUID}
cpu=1
memory=512M
ahci_device_limit="2"
disk0_type="virtio-blk"
disk0_name="disk0.img"
disk1_type="ahci-hd"
disk1_name="disk1.img"
disk2_type="ahci-hd"
disk2_name="disk2.img"
disk3_type="ahci-cd"
disk3_name="disk3.iso"
disk4_type="virtio-blk"
disk4_name="disk4.img"
disk4_slot="1:0:0"
disk5_type="virtio-blk"
disk5_name="disk5.img"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:08"
network0_slot="4"
network1_type="virtio-net"
network1_switch="public"
network1_mac="58:9c:fc:00:00:09"
network1_slot="4:1"
network2_type="virtio-net"
network2_switch="public"
network2_mac="58:9c:fc:00:00:0a"
""",
    ),
    Case(
        "pinned-own-slots",
        "every device kind pinned where a hand-made guest had it (what 'hivectl import' writes): the LPC "
        "bridge at slot 1, two AHCI disks pinned to one address share a controller, bhyve(8)'s fbuf at 29 and "
        "xhci at 30, sound on bus 1 (-Y)",
        f"""
loader="uefi"
{UUID}
cpu=2
memory=2G
lpc_slot="1"
install_slot="4"
disk0_type="ahci-hd"
disk0_name="@VM@/images/win.img"
disk0_dev="custom"
disk0_slot="3:0"
disk1_type="ahci-cd"
disk1_name="@VM@/images/tools.iso"
disk1_dev="custom"
disk1_opts="ro"
disk1_slot="3:0"
disk2_type="virtio-blk"
disk2_name="disk2.img"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:10"
network0_slot="2:0"
virt_random="yes"
virt_random_slot="8"
graphics="yes"
graphics_port="5900"
graphics_slot="29"
xhci_mouse="yes"
xhci_slot="30"
sound="yes"
sound_slot="1:2:0"
virt_console0="yes"
virt_console_slot="7:0"
""",
    ),
    Case(
        "bus-wrap",
        "thirty UEFI disks: slots run out on bus 0 at 30 and continue on bus 1 (-Y)",
        f"""
loader="uefi"
{UUID}
cpu=1
memory=1G
"""
        + "".join(f'disk{i}_type="virtio-blk"\ndisk{i}_name="disk{i}.img"\n' for i in range(30))
        + 'network0_type="virtio-net"\nnetwork0_switch="public"\nnetwork0_mac="58:9c:fc:00:00:0b"\n',
    ),
    Case(
        "backends",
        "NIC backends the network planner hands over: a renamed tap, VALE and netgraph",
        f"""
loader="uefi"
{UUID}
cpu=1
memory=1G
disk0_type="virtio-blk"
disk0_name="disk0.img"
network0_type="virtio-net"
network0_switch="public"
network0_name="web1"
network0_mac="58:9c:fc:00:00:0c"
network1_type="virtio-net"
network1_switch="fast"
network1_mac="58:9c:fc:00:00:0d"
network2_type="e1000"
network2_switch="graph"
network2_mac="58:9c:fc:00:00:0e"
""",
        backends={0: "web1,type=tap", 1: "vale1a2b3:4c5d6", 2: "netgraph,path=graph:,peerhook=link2"},
    ),
    Case(
        "supervisor-keys",
        "keys that belong to the supervisor, the network planner or create: the bhyve plan is that of the "
        "default template",
        f"""
loader="bhyveload"
{UUID}
cpu=1
memory=256M
debug="yes"
ignore_bad_msr="yes"
prestart="prestart.sh"
priority="10"
jail="auto"
limit_pcpu="50"
limit_rbps="10M"
limit_wbps="10M"
limit_riops="1000"
limit_wiops="1000"
limit_memory="1G"
on_restart="stop"
on_fault="restart"
fault_limit="3"
fault_backoff="10"
tags="web prod"
owner="alice"
group="tenant1"
zfs_dataset_opts="compression=lz4"
zfs_zvol_opts="volblocksize=16k"
disk0_type="virtio-blk"
disk0_name="disk0.img"
disk0_size="10G"
network0_type="virtio-net"
network0_switch="public"
network0_device="tap7"
network0_span="yes"
network0_mac="58:9c:fc:00:00:0f"
""",
        backends={0: "tap7"},
    ),
)


def all_cases() -> list[Case]:
    templates = [template_case(p.stem) for p in sorted(TEMPLATES.glob("*.conf"))]
    return [*templates, *HAND_WRITTEN]
