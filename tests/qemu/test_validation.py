"""Invalid configs are refused at planning time, every problem at once, each naming file, key and value."""

from __future__ import annotations

import pytest

from hivectl.errors import ConfigError, ValidationErrors
from hivectl.model import keys
from tests.qemu.guests import Scratch

BASE = 'loader="bhyveload"\ncpu=1\nmemory=256M\n'


def problems(scratch: Scratch, conf: str, files: dict[str, bytes | int | str] | None = None) -> list[ConfigError]:
    ref = scratch.guest("bad", conf, files)
    with pytest.raises(ValidationErrors) as caught:
        scratch.plan(ref)
    for error in caught.value.errors:
        assert error.source == str(ref.conf_path)
    return caught.value.errors


@pytest.mark.parametrize(("conf", "key", "why"), [
    ('loader="bhyveload"\ncpu=4\ncpu_cores=2\nmemory=256M\n', "cpu_cores", "does not match cpu=4"),
    ('loader="bhyveload"\ncpu=3\ncpu_sockets=2\nmemory=256M\n', "cpu_sockets", "does not match cpu=3"),
    ('loader="bhyveload"\ncpu=1\nmemory=lots\n', "memory", "expected a size"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_opts="sectorsize=1000"\n', "disk0_opts", "power of two"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_opts="sectorsize=4096/512"\n', "disk0_opts",
     "cannot exceed"),
    (BASE + 'disk0_type="ahci-hd"\ndisk0_name="d"\ndisk0_opts="sectorsize=4096"\n', "disk0_opts", "512-byte"),
    (BASE + 'disk0_type="ahci-cd"\ndisk0_name="d"\ndisk0_opts="sectorsize=4096"\n', "disk0_opts", "2048-byte"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_opts="turbo"\n', "disk0_opts", "unknown disk option"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_opts="ro=maybe"\n', "disk0_opts", "expected yes or no"),
    (BASE + 'disk0_type="nvme"\ndisk0_name="d"\ndisk0_opts="ser=this-serial-is-far-too-long"\n', "disk0_opts",
     "1-20"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_dev="zvol"\n', "disk0_dev", "ZFS datastore"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="iqn.x"\ndisk0_dev="iscsi"\n', "disk0_dev", "iSCSI"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="rel/path"\ndisk0_dev="custom"\n', "disk0_name", "full path"),
    (BASE + 'disk0_type="virtio-9p"\ndisk0_name="/no/tag"\n', "disk0_name", "sharename=/host/directory"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_slot="1:4:0"\n', "disk0_slot", "only PCI bus 0"),
    (BASE + 'disk0_type="virtio-blk"\ndisk0_name="d"\ndisk0_slot="7:1"\n', "disk0_slot", "no function 0"),
    (BASE + 'graphics="yes"\ngraphics_port="5000"\n', "graphics_port", "5900 and up"),
    (BASE + 'network0_type="virtio-net"\nnetwork0_mac="01:00:5e:00:00:01"\n', "network0_mac", "multicast"),
    (BASE + 'qemu_append="console=ttyS0"\n', "qemu_append", "only meaningful together with qemu_kernel"),
    (BASE + 'passthru0="2/0"\n', "passthru0", "bus/slot/function"),
    (BASE + 'virt_console0="bad name"\n', "virt_console0", "port name"),
    (BASE + 'start_slot="31"\n', "start_slot", "from 1 to 30"),
])
def test_refused_with_key_and_reason(scratch: Scratch, conf: str, key: str, why: str) -> None:
    if "network0" in conf:
        from hivectl.net.ports import Port

        ref = scratch.guest("bad", conf)
        with pytest.raises(ValidationErrors) as caught:
            scratch.plan(ref, [Port(0, "tap0")])
        errors = caught.value.errors
    else:
        errors = problems(scratch, conf)
    assert [e.key for e in errors] == [key], errors
    assert why in errors[0].why


def test_every_problem_reported_at_once(scratch: Scratch) -> None:
    errors = problems(scratch, 'loader="bhyveload"\ncpu=2\ncpu_threads=3\nmemory=256M\n'
                               'disk0_type="virtio-blk"\ndisk0_name="a"\ndisk0_opts="bootindex=3"\n'
                               'disk1_type="nvme"\ndisk1_name="b"\ndisk1_opts="bootindex=3"\n'
                               'disk2_type="virtio-blk"\ndisk2_name="c"\ndisk2_slot="4"\n'
                               'disk3_type="virtio-blk"\ndisk3_name="d"\ndisk3_slot="4"\n')
    assert sorted(e.key for e in errors) == ["cpu_threads", "disk1_opts", "disk3_slot"]
    assert "already used by disk0" in next(e for e in errors if e.key == "disk1_opts").why
    assert "already used by disk2" in next(e for e in errors if e.key == "disk3_slot").why


def test_pinned_disk_inside_a_shared_ahci_controller_is_refused(scratch: Scratch) -> None:
    errors = problems(scratch, BASE + 'ahci_device_limit="4"\ndisk0_type="ahci-hd"\ndisk0_name="a"\n'
                                      'disk1_type="ahci-hd"\ndisk1_name="b"\ndisk1_slot="9"\n')
    assert [e.key for e in errors] == ["disk1_slot"] and "pin disk0 instead" in errors[0].why


def test_running_out_of_slots(scratch: Scratch) -> None:
    disks = "".join(f'disk{i}_type="virtio-blk"\ndisk{i}_name="d{i}"\n' for i in range(28))
    errors = problems(scratch, BASE + disks)
    assert [e.key for e in errors] == ["start_slot"] and "no free PCI slot left for disk27" in errors[0].why


def test_direct_kernel_keys_are_hivectl_keys() -> None:
    for key in ("qemu_kernel", "qemu_initrd", "qemu_append"):
        spec = keys.spec_for(key)
        assert spec is not None and spec.hivectl
    with pytest.raises(ConfigError, match="qemu_kernel"):
        keys.check("g.conf", "qemu_kernel", "/boot/a,b")
    keys.check("g.conf", "qemu_append", "console=ttyS0 quiet root=/dev/vda1")


def test_memory_and_topology_follow_bhyve(scratch: Scratch) -> None:
    for memory, mib in (("512M", "512"), ("2G", "2048"), ("1024", "1024"), ("1536K", "2")):
        ref = scratch.guest(f"m{mib}", f'loader="bhyveload"\ncpu=6\ncpu_sockets=1\ncpu_cores=3\ncpu_threads=2\n'
                                        f'memory={memory}\n')
        argv = scratch.plan(ref).hypervisor
        assert argv[argv.index("-m") + 1] == mib
        assert argv[argv.index("-smp") + 1] == "cpus=6,sockets=1,cores=3,threads=2"
