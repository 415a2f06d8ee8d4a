"""The bhyve planner's rules one by one: errors that name keys, secrets, prepare actions, preflight."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from hivectl.drivers.base import BootRequest, Outcome
from hivectl.drivers.bhyve import graphics
from hivectl.drivers.bhyve.actions import CopyIfMissing
from hivectl.drivers.bhyve.driver import BhyveDriver, Problem
from hivectl.drivers.bhyve.planner import Planned
from hivectl.errors import ConfigError, HivectlError
from hivectl.hostconf import HostSettings
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port
from hivectl.plan import Plan
from hivectl.store import Datastore, GuestRef, Store
from tests.bhyve.harness import RecordingHost

BASE = """loader="uefi"
uuid="0b1c7f5e-6a53-11ef-8f0d-589cfc000001"
cpu=2
memory=1G
disk0_type="virtio-blk"
disk0_name="disk0.img"
network0_type="virtio-net"
network0_switch="public"
"""


class Guest:
    """A guest in a real temporary vm_dir, planned by a driver over a recording host."""

    def __init__(self, tmp: Path, text: str, answers: dict[str, tuple[int, str]] | None = None,
                 tools: tuple[str, ...] = ("bhyve", "bhyvectl", "bhyveload", "grub-bhyve"),
                 name: str = "g") -> None:
        self.root = tmp / "hostroot"
        self.root.mkdir(exist_ok=True)
        self.vm = tmp / "vm"
        (self.vm / name).mkdir(parents=True, exist_ok=True)
        self.host = RecordingHost(self.root, answers, tools)
        self.store = Store(HostSettings(vm_dir=str(self.vm)), self.host)
        self.driver = BhyveDriver(self.host, self.store, vnc_ports=lambda listen: 5901)
        self.ref = GuestRef(name, self.store.default)
        self.ref.conf_path.write_text(text)
        self.config = GuestConfig.load(self.ref.conf_path, name)

    def plan(self, install: Path | None = None, first_boot: bool = True, foreground: bool = False,
             ports: list[Port] | None = None) -> Planned:
        if ports is None:
            ports = [Port(n.index, f"tap{n.index}", n.switch, f"tap{n.index}") for n in self.config.nics]
        return self.driver.plan(BootRequest(self.ref, self.config, ports, install, first_boot, foreground))

    def firmware(self, *names: str) -> None:
        for name in names:
            path = self.root / "usr/local/share/uefi-firmware" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"FW" * 100)


def error_of(guest: Guest, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        guest.plan(**kwargs)  # type: ignore[arg-type]
    return info.value


# -- errors that name the key ----------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "key", "words"), [
    ("cpu_cores=2\n", "cpu_cores", "sockets×cores×threads"),
    ("cpu_sockets=1\ncpu_threads=2\ncpu_cores=2\n", "cpu_sockets", "= 4"),
    ('cpu_pin="0:1 2:3"\n', "cpu_pin", "vCPU 2 does not exist"),
    ('cpu_pin="0:1 0:1"\n', "cpu_pin", "listed twice"),
    ('disk1_type="virtio-9p"\ndisk1_name="share=/x"\n', "disk1_dev", "go together"),
    ('disk1_type="virtio-blk"\ndisk1_name="d"\ndisk1_dev="zvol"\n', "disk1_dev", "ZFS datastore"),
    ('disk1_type="virtio-blk"\ndisk1_name="rel/x.img"\ndisk1_dev="custom"\n', "disk1_name", "full path"),
    ('disk1_type="virtio-blk"\ndisk1_name="../other/x.img"\n', "disk1_name", "inside the guest directory"),
    ('disk1_type="virtio-9p"\ndisk1_name="/no/share/name"\ndisk1_dev="9p"\n', "disk1_name", "sharename="),
    ('disk1_type="virtio-scsi"\ndisk1_name="x.img"\n', "disk1_name", "CTL port"),
    ('disk0_opts="a.b=1"\n', "disk0_opts", "not name or name=value"),
    ('disk0_opts="sectorsize="\n', "disk0_opts", "no value"),
    ('disk0_opts="bootindex=1"\ndisk1_type="nvme"\ndisk1_name="x"\ndisk1_opts="bootindex=1"\n', "disk1_opts",
     "also used by disk0_opts"),
    ('disk1_type="virtio-blk"\ndisk1_name="x%(name)"\n', "disk1_name", "expands"),
    ('virt_console0="../escape"\n', "virt_console0", "port name"),
    ('virt_console0="' + "p" * 100 + '"\n', "virt_console0", "longer than"),
    ('bhyve_options="-s \'unbalanced"\n', "bhyve_options", "cannot be split"),
    ('passthru0="2/0/0=0:0"\n', "passthru0", "1-30"),
    ('passthru0="2/0/0"\npassthru0_options="rom"\npassthru1="2/0/1"\npassthru1_options="x,,y"\n',
     "passthru1_options", "not name or name=value"),
    ('disk1_type="virtio-blk"\ndisk1_name="d1"\ndisk1_slot="5"\nnetwork0_slot="5"\n', "network0_slot", "disk1_slot"),
    ('disk1_type="virtio-blk"\ndisk1_name="d1"\ndisk1_dev="iscsi"\n', "disk1_dev", "not supported"),
])
def test_bad_values_are_reported_with_their_key(tmp_path: Path, extra: str, key: str, words: str) -> None:
    error = error_of(Guest(tmp_path, BASE + extra))
    assert error.key == key, str(error)
    assert words in str(error)
    assert str(tmp_path / "vm/g/g.conf") in str(error)


def test_loaders_need_disk0(tmp_path: Path) -> None:
    text = 'loader="bhyveload"\ncpu=1\nmemory=256M\n'
    assert error_of(Guest(tmp_path, text)).key == "disk0_name"


def test_install_media_with_a_comma_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="splits options"):
        Guest(tmp_path, BASE).plan(install=tmp_path / "a,b.iso")


def test_a_nic_without_a_port_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HivectlError, match="network0 has no host port"):
        Guest(tmp_path, BASE).plan(ports=[])


def test_invalid_values_are_all_reported_before_planning(tmp_path: Path) -> None:
    with pytest.raises(HivectlError) as info:
        Guest(tmp_path, BASE + 'cpu_pin="x"\nstart_slot="0"\n').plan()
    assert "cpu_pin" in str(info.value) and "start_slot" in str(info.value)


# -- what a boot looks like ---------------------------------------------------------------------------------


def test_a_renamed_tap_without_backend_text_gets_type_tap(tmp_path: Path) -> None:
    plan = Guest(tmp_path, BASE).plan(ports=[Port(0, "web1", "public")])
    assert "0:5:0,virtio-net,web1,type=tap" in ",".join(plan.boot.hypervisor)


def test_switch_mtu_reaches_virtio_net_unless_1500(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE)
    jumbo = guest.plan(ports=[Port(0, "tap0", "public", "tap0", mtu=9000)]).boot.hypervisor
    plain = guest.plan(ports=[Port(0, "tap0", "public", "tap0", mtu=1500)]).boot.hypervisor
    assert "-s" in jumbo and "0:5:0,virtio-net,tap0,mtu=9000" in jumbo
    assert "0:5:0,virtio-net,tap0" in plain


def test_install_media_takes_bootindex_0_when_a_disk_claims_1(tmp_path: Path) -> None:
    plan = Guest(tmp_path, BASE + 'disk0_opts="bootindex=1"\n').plan(install=tmp_path / "x.iso")
    assert f"3:0,ahci-cd,{tmp_path}/x.iso,ro,bootindex=0" in plan.boot.hypervisor


def test_the_vnc_port_comes_from_the_finder_unless_fixed(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'graphics="yes"\n')
    assert guest.plan().boot.console["vnc"] == "127.0.0.1:5901"
    fixed = Guest(tmp_path, BASE + 'graphics="yes"\ngraphics_port="6000"\n')
    assert fixed.plan().boot.console["vnc"] == "127.0.0.1:6000"


@pytest.mark.parametrize(("mode", "install", "first", "waits"), [
    ("auto", True, True, True), ("auto", True, False, False), ("auto", False, True, False),
    ("yes", False, False, True), ("no", True, True, False),
])
def test_graphics_wait(tmp_path: Path, mode: str, install: bool, first: bool, waits: bool) -> None:
    guest = Guest(tmp_path, BASE + f'graphics="yes"\ngraphics_wait="{mode}"\n')
    plan = guest.plan(install=tmp_path / "i.iso" if install else None, first_boot=first)
    fbuf = next(a for a in plan.boot.hypervisor if ",fbuf," in a)
    assert fbuf.endswith(",wait") is waits


# -- secrets ---------------------------------------------------------------------------------------------


def test_a_vnc_password_never_reaches_argv_and_lands_in_a_0600_file(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'graphics="yes"\nvnc_password="hunter2"\n')
    config_file = guest.ref.directory / "bhyve.config"
    config_file.write_text("old and readable\n")
    os.chmod(config_file, 0o644)
    plan = guest.plan()
    everything_shown = " ".join(plan.boot.hypervisor) + " ".join(" ".join(a.argv()) for a in plan.boot.prepare)
    assert "hunter2" not in everything_shown
    assert plan.boot.hypervisor == ["bhyve", "-k", str(config_file), "g"]
    assert plan.boot.secrets == [config_file]
    Plan(list(plan.boot.prepare)).apply(guest.host)
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert "pci.0.6.0.password=hunter2\n" in config_file.read_text()


def test_raw_bhyve_options_stay_in_argv_after_the_config_file(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'graphics="yes"\nvnc_password="pw"\nbhyve_options="-H -o a=b"\n')
    assert guest.plan().boot.hypervisor[3:] == ["-H", "-o", "a=b", "g"]


# -- prepare actions -------------------------------------------------------------------------------------


def test_uefi_vars_are_copied_once_and_never_overwritten(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'uefi_vars="yes"\n')
    guest.firmware("BHYVE_UEFI_VARS.fd")
    store = guest.ref.directory / "uefi-vars.fd"
    first = guest.plan()
    assert [a.argv()[0] for a in first.boot.prepare] == ["cp"]
    Plan(list(first.boot.prepare)).apply(guest.host)
    assert store.read_bytes() == b"FW" * 100 and stat.S_IMODE(store.stat().st_mode) == 0o600
    store.write_bytes(b"boot entries of an installed system")
    assert guest.plan().boot.prepare == []
    # Even an action planned before the copy appeared keeps the guest's copy.
    Plan(list(first.boot.prepare)).apply(guest.host)
    assert store.read_bytes() == b"boot entries of an installed system"


def test_copy_if_missing_leaves_no_partial_file_when_the_source_is_missing(tmp_path: Path) -> None:
    action = CopyIfMissing("/x", tmp_path / "missing", tmp_path / "target")
    with pytest.raises(FileNotFoundError):
        action.apply(RecordingHost(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_stale_console_sockets_are_removed_before_boot(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'virt_console0="yes"\n')
    stale = guest.ref.directory / "vtcon.0"
    stale.write_text("")
    Plan(list(guest.plan().boot.prepare)).apply(guest.host)
    assert not stale.exists()


def test_loader_guests_destroy_a_leftover_vm_first_uefi_guests_keep_it(tmp_path: Path) -> None:
    node = tmp_path / "hostroot/dev/vmm/g"
    node.parent.mkdir(parents=True)
    node.write_text("")
    loader = Guest(tmp_path, BASE.replace('"uefi"', '"bhyveload"'))
    assert loader.plan().boot.prepare[0].argv() == ["bhyvectl", "--vm=g", "--destroy"]
    assert Guest(tmp_path, BASE).plan().boot.prepare == []


def test_grub_files_are_written_by_prepare(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE.replace('"uefi"', '"grub"') + 'grub_run0="linux /vmlinuz"\n')
    Plan(list(guest.plan().boot.prepare)).apply(guest.host)
    assert (guest.ref.directory / "device.map").read_text() == f"(hd0) {guest.ref.directory}/disk0.img\n"
    assert "    linux /vmlinuz\n" in (guest.ref.directory / "grub.cfg").read_text()


# -- preflight -------------------------------------------------------------------------------------------

READY = {"kldstat -q -m vmm": (0, ""), "sysctl -n hw.vmm.maxcpu": (0, "8\n"),
         "pciconf -l": (0, "hostb0@pci0:0:0:0:\tclass=0x060000\nppt0@pci0:2:0:0:\tclass=0x020000\n"
                           "em0@pci0:0:31:6:\tclass=0x020000\n"),
         # an Intel host with EPT, unrestricted guest and VT-d that vmm uses (hivectl/drivers/hostchecks.py)
         "sysctl -n hw.model": (0, "Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz\n"),
         "sysctl -n hw.vmm.vmx.initialized": (0, "1\n"), "sysctl -n hw.vmm.vmx.cap.unrestricted_guest": (0, "1\n"),
         "sysctl -n hw.vmm.iommu.enable": (0, "1\n"), "acpidump -t": (0, "  DMAR: Length=80, Revision=1\n")}


def test_a_ready_host_has_no_problems(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'uefi_vars="yes"\npassthru0="2/0/0"\n', READY)
    guest.firmware("BHYVE_UEFI.fd", "BHYVE_UEFI_VARS.fd")
    assert guest.driver.preflight(guest.ref, guest.config) == []


def test_preflight_finds_every_missing_piece(tmp_path: Path) -> None:
    answers = {**READY, "kldstat -q -m vmm": (1, ""), "sysctl -n hw.vmm.maxcpu": (0, "1\n")}
    guest = Guest(tmp_path, BASE + 'uefi_vars="yes"\npassthru0="0/31/6"\npassthru1="9/0/0"\n', answers,
                  tools=("bhyvectl",))
    problems = guest.driver.preflight(guest.ref, guest.config)
    text = "\n".join(problems)
    for words in ("vmm kernel module", "bhyve is not installed", "BHYVE_UEFI.fd is missing",
                  "BHYVE_UEFI_VARS.fd is\nmissing".replace("\n", " "), "at most 1 vCPUs", "attached to em, not ppt",
                  "no PCI device 9/0/0"):
        assert words in text, words
    assert all(isinstance(p, Problem) and p.fatal for p in problems)


def test_loader_preflight(tmp_path: Path) -> None:
    grub = Guest(tmp_path, BASE.replace('"uefi"', '"grub"'), READY, tools=("bhyve", "bhyvectl"))
    assert any("grub-bhyve" in p for p in grub.driver.preflight(grub.ref, grub.config))
    diskless = Guest(tmp_path, 'loader="bhyveload"\ncpu=1\nmemory=1G\n', READY)
    assert any("no disk0" in p for p in diskless.driver.preflight(diskless.ref, diskless.config))


def test_config_errors_come_first_and_all_at_once(tmp_path: Path) -> None:
    guest = Guest(tmp_path, 'loader="uefi"\ncpu_pin="zz"\n', READY)
    problems = guest.driver.preflight(guest.ref, guest.config)
    assert any("cpu_pin" in p for p in problems) and any("'cpu'" in p or "cpu=" in p for p in problems)


def test_cross_key_problems_are_found_by_preflight(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'cpu_cores="2"\nnetwork0_slot="3"\n', READY)
    guest.firmware("BHYVE_UEFI.fd")
    problems = guest.driver.preflight(guest.ref, guest.config)
    assert any("cpu_cores" in p for p in problems)
    assert any("network0_slot" in p and "install_slot" in p for p in problems)


def test_graphics_without_uefi_is_only_a_warning(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE.replace('"uefi"', '"bhyveload"') + 'graphics="yes"\n', READY)
    problems = guest.driver.preflight(guest.ref, guest.config)
    assert len(problems) == 1 and isinstance(problems[0], Problem) and not problems[0].fatal
    assert problems[0].startswith("warning: graphics=yes is ignored with loader=bhyveload")
    assert not any(",fbuf," in a for a in guest.plan().boot.hypervisor)


def test_tpm_passthru_needs_the_device(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE + 'tpm="passthru"\n', READY)
    guest.firmware("BHYVE_UEFI.fd")
    assert any("/dev/tpm0 does not exist" in p for p in guest.driver.preflight(guest.ref, guest.config))


# -- exits, ports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "outcome"), [
    (0, Outcome.REBOOT), (1, Outcome.POWEROFF), (2, Outcome.HALT), (3, Outcome.FAULT), (4, Outcome.ERROR),
    (64, Outcome.ERROR), (71, Outcome.ERROR), (100, Outcome.ERROR), (134, Outcome.ERROR), (-15, Outcome.KILLED),
    (-9, Outcome.KILLED),
])
def test_exit_statuses(tmp_path: Path, status: int, outcome: Outcome) -> None:
    guest = Guest(tmp_path, BASE)
    assert guest.driver.classify(status, guest.ref) is outcome


SOCKSTAT = """USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS
root     sshd       812   4   tcp6   *:22                  *:*
root     sshd       812   5   tcp4   *:22                  *:*
root     bhyve      1200  9   tcp4   127.0.0.1:5900        *:*
root     bhyve      1300  9   tcp4   10.0.0.5:5901         *:*
root     bhyve      1400  9   tcp6   ::1:5902              *:*
root     nginx      99    6   tcp46  *:5903                *:*
"""


@pytest.mark.parametrize(("listen", "port"), [
    ("127.0.0.1", 5901), ("10.0.0.5", 5900), ("0.0.0.0", 5904), ("::1", 5900), ("192.0.2.1", 5900),
])
def test_the_first_free_vnc_port_depends_on_the_address(listen: str, port: int) -> None:
    assert graphics.first_free(graphics.listening(SOCKSTAT), listen) == port


def test_the_port_finder_asks_sockstat(tmp_path: Path) -> None:
    host = RecordingHost(tmp_path, {"sockstat -46l -P tcp": (0, SOCKSTAT)}, tools=("sockstat",))
    assert graphics.SockstatPorts(host)("0.0.0.0") == 5904


def test_no_free_port_is_an_error() -> None:
    busy = [("*", p) for p in range(5900, 6100)]
    with pytest.raises(HivectlError, match="set graphics_port"):
        graphics.first_free(busy, "127.0.0.1")


def test_zvol_paths_use_the_datastore_dataset(tmp_path: Path) -> None:
    guest = Guest(tmp_path, BASE.replace('disk0_name="disk0.img"', 'disk0_name="disk0"\ndisk0_dev="zvol"'))
    guest.ref = GuestRef("g", Datastore("tank", "zfs", "zfs:tank/vms", guest.vm, "tank/vms"))
    assert "0:4:0,virtio-blk,/dev/zvol/tank/vms/g/disk0" in guest.plan().boot.hypervisor


def test_without_sockstat_the_kernel_is_asked() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        found = graphics.probe_free("127.0.0.1", taken, 50)
        assert taken < found < taken + 50
        with socket.socket() as mine:
            mine.bind(("127.0.0.1", found))  # really free


def test_an_address_the_host_does_not_have_is_an_error() -> None:
    with pytest.raises(HivectlError, match=r"graphics_listen=192\.0\.2\.77"):
        graphics.probe_free("192.0.2.77")
