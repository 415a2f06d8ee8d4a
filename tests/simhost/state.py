"""The simulated host's shared state: one JSON document guarded by a lock file.

Every stand-in is a separate short-lived process, and tests run many of them at once (hivectl starts
guests in the background while a test inspects the host), so state is read and written under
``fcntl.flock`` on ``$SIMHOST_ROOT/state.lock`` and replaced atomically (write, fsync, rename). Readers
take a shared lock; a tool that changes anything takes the exclusive lock for its whole run, which
makes each command atomic, as the real kernel makes each ioctl atomic.

Kernel objects whose existence hivectl checks on the file system are files, not JSON: a VM is the
regular file ``$SIMHOST_ROOT/dev/vmm/NAME``, a zvol is ``dev/zvol/POOL/...``, a console pair is
``dev/nmdm<X>A``/``B``. The JSON holds everything else (interfaces, modules, sysctls, datasets, PCI
devices, running bhyve processes, loader runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import ToolExit
from .paths import root

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
GIB = 1 << 30

State = dict[str, Any]


@contextlib.contextmanager
def _lock(exclusive: bool, base: Path | None = None) -> Iterator[None]:
    fd = os.open((base or root()) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _read(base: Path | None = None) -> State:
    path = (base or root()) / STATE_FILE
    try:
        with open(path, encoding="utf-8") as fh:
            data: State = json.load(fh)
    except FileNotFoundError:
        import sys

        print(f"simhost: {path} is missing; create the host with the simhost fixture", file=sys.stderr)
        raise SystemExit(70) from None
    return data


def write_json(path: Path, data: object) -> None:
    """Replace ``path`` atomically so a reader never sees half a document."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(base: Path | None = None) -> State:
    """A consistent read-only copy of the state (of ``base``, default ``$SIMHOST_ROOT``)."""
    with _lock(False, base):
        return _read(base)


@contextlib.contextmanager
def transaction(base: Path | None = None) -> Iterator[State]:
    """Exclusive access; the (possibly changed) state is written back when the block ends.

    A :class:`ToolExit` leaving the block still writes: like the real tools, the changes made before an
    error stay (``ifconfig bridge0 up addm nosuch`` leaves the bridge up).
    """
    where = base or root()
    with _lock(True, where):
        data = _read(where)
        try:
            yield data
        except ToolExit:
            write_json(where / STATE_FILE, data)
            raise
        write_json(where / STATE_FILE, data)


# ---------------------------------------------------------------------------------------------------------
# the default host


def default_interfaces() -> dict[str, Any]:
    """``lo0`` and one physical NIC ``em0`` on a documentation network (192.0.2.0/24)."""
    return {
        "lo0": {
            "name": "lo0", "kind": "lo", "index": 2, "cloner": "lo", "unit": 0,
            "flags": ["UP", "LOOPBACK", "RUNNING", "MULTICAST"], "mtu": 16384, "max_mtu": 65535,
            "description": "", "groups": ["lo"], "ether": None,
            "inet": [{"addr": "127.0.0.1", "prefixlen": 8}],
            "inet6": [{"addr": "::1", "prefixlen": 128}, {"addr": "fe80::1", "prefixlen": 64}],
        },
        "em0": {
            "name": "em0", "kind": "ether", "index": 1, "cloner": None, "unit": 0,
            "flags": ["UP", "BROADCAST", "RUNNING", "SIMPLEX", "MULTICAST"], "mtu": 1500, "max_mtu": 9216,
            "description": "", "groups": [], "ether": "00:0c:29:5a:10:01",
            "inet": [{"addr": "192.0.2.10", "prefixlen": 24}], "inet6": [], "auto_linklocal": True,
        },
    }


def default_pci() -> list[dict[str, Any]]:
    """A small PCI tree: host bridge, VGA, the em0 NIC, one device reserved for passthrough (ppt0)."""
    return [
        {"driver": "hostb", "unit": 0, "domain": 0, "bus": 0, "slot": 0, "func": 0, "class": 0x060000,
         "rev": 0x07, "hdr": 0, "vendor": 0x8086, "device": 0x3e30, "subvendor": 0x1028, "subdevice": 0x0869,
         "vendor_name": "Intel Corporation",
         "device_name": "8th Gen Core Processor Host Bridge/DRAM Registers",
         "class_name": "bridge", "subclass": "HOST-PCI"},
        {"driver": "vgapci", "unit": 0, "domain": 0, "bus": 0, "slot": 2, "func": 0, "class": 0x030000,
         "rev": 0x00, "hdr": 0, "vendor": 0x8086, "device": 0x3e92, "subvendor": 0x1028, "subdevice": 0x0869,
         "vendor_name": "Intel Corporation", "device_name": "CoffeeLake-S GT2 [UHD Graphics 630]",
         "class_name": "display", "subclass": "VGA"},
        {"driver": "em", "unit": 0, "domain": 0, "bus": 0, "slot": 31, "func": 6, "class": 0x020000,
         "rev": 0x10, "hdr": 0, "vendor": 0x8086, "device": 0x15bc, "subvendor": 0x1028, "subdevice": 0x0869,
         "vendor_name": "Intel Corporation", "device_name": "Ethernet Connection (7) I219-V",
         "class_name": "network", "subclass": "ethernet"},
        {"driver": "ppt", "unit": 0, "domain": 0, "bus": 2, "slot": 0, "func": 0, "class": 0x020000,
         "rev": 0x01, "hdr": 0, "vendor": 0x8086, "device": 0x10fb, "subvendor": 0x8086, "subdevice": 0x0003,
         "vendor_name": "Intel Corporation", "device_name": "82599ES 10-Gigabit SFI/SFP+ Network Connection",
         "class_name": "network", "subclass": "ethernet"},
        {"driver": "none", "unit": 0, "domain": 0, "bus": 3, "slot": 0, "func": 0, "class": 0x0c0330,
         "rev": 0x02, "hdr": 0, "vendor": 0x1912, "device": 0x0014, "subvendor": 0x1912, "subdevice": 0x0014,
         "vendor_name": "Renesas Technology Corp.", "device_name": "uPD720201 USB 3.0 Host Controller",
         "class_name": "serial bus", "subclass": "USB"},
    ]


def default_sysctls(ncpu: int = 4) -> tuple[dict[str, str], list[str]]:
    """Values and the writable subset. ``hw.vmm.*`` only shows while vmm.ko is loaded (see sysctl.py)."""
    values = {
        "kern.ostype": "FreeBSD",
        "kern.osrelease": "14.3-RELEASE",
        "kern.hostname": "simhost",
        "kern.vm_guest": "none",
        "kern.geom.conftxt": "0 DISK nda0 512110190592 512 hd 0 sc 0\n"
                             "1 PART nda0p1 272629760 512 i 1 o 20480 ty efi xs GPT xt "
                             "c12a7328-f81f-11d2-ba4b-00a0c93ec93b\n"
                             "1 PART nda0p2 511835103232 512 i 2 o 272650240 ty freebsd-zfs xs GPT xt "
                             "516e7cba-6ecf-11d6-8ff8-00022d09712b\n",
        # racct(9) on (a loader tunable, 0 on GENERIC): the host is set up for rctl limits, as vm-bhyve's are
        "kern.racct.enable": "1",
        "hw.machine": "amd64",
        "hw.model": "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
        "hw.ncpu": str(ncpu),
        "hw.physmem": str(16 * GIB),
        "hw.pagesize": "4096",
        # the limit on wired user memory (mlock(2), bhyve -S): four fifths of the free pages at boot
        # (vm_pageout.c sets vm_page_max_user_wired so when the tunable is 0); read-write on FreeBSD
        "vm.max_user_wired": str(16 * GIB // 4096 * 4 // 5),
        "hw.vmm.maxcpu": str(ncpu),
        "hw.vmm.create": "beavis",
        "hw.vmm.destroy": "beavis",
        "hw.vmm.halt_detection": "1",
        "hw.vmm.iommu.enable": "1",
        "hw.vmm.amdvi.enable": "0",
        "hw.vmm.ppt.devices": "1",
        "hw.vmm.trap_wbinvd": "0",
        "hw.vmm.vmx.initialized": "1",
        # svm.c's oids exist on Intel hosts too; features keeps its ~0 initial value there (svm_init never ran)
        "hw.vmm.svm.features": str(0xFFFFFFFF),
        "hw.vmm.svm.num_asids": "0",
        "hw.vmm.svm.disable_npf_assist": "0",
        "hw.vmm.iommu.initialized": "0",
        "hw.vmm.vmx.cap.unrestricted_guest": "1",
        "hw.vmm.vmx.cap.halt_exit": "1",
        "hw.vmm.vmx.cap.pause_exit": "1",
        "hw.vmm.vmx.cap.posted_interrupts": "1",
        "hw.vmm.topology.cores_per_package": "1",
        "hw.vmm.topology.threads_per_core": "1",
        "net.inet.ip.forwarding": "0",
        "net.inet6.ip6.forwarding": "0",
        "net.link.tap.up_on_open": "0",
        "net.link.tap.devfs_cloning": "1",
        "net.link.bridge.pfil_member": "1",
        "net.link.bridge.pfil_bridge": "0",
        "net.link.bridge.pfil_onlyip": "1",
        "net.link.bridge.ipfw": "0",
    }
    writable = [
        "kern.hostname", "hw.vmm.create", "hw.vmm.destroy", "hw.vmm.halt_detection", "hw.vmm.trap_wbinvd",
        "net.inet.ip.forwarding", "net.inet6.ip6.forwarding", "net.link.tap.up_on_open",
        "net.link.tap.devfs_cloning", "net.link.bridge.pfil_member", "net.link.bridge.pfil_bridge",
        "vm.max_user_wired", "hw.vmm.svm.disable_npf_assist",
        "net.link.bridge.pfil_onlyip", "net.link.bridge.ipfw",
    ]
    return values, writable


DEFAULT_MODULES = ["zfs", "vmm", "nmdm", "if_bridge", "if_tuntap"]


def default_state(base: Path, ncpu: int = 4, release: str = "14") -> State:
    """The state of a freshly booted bhyve host with the modules vm-bhyve wants already loaded."""
    values, writable = default_sysctls(ncpu)
    return {
        "release": release,
        "snapshot": False,  # bhyve built WITH_BHYVE_SNAPSHOT (fixture.set_snapshot_build)
        "sysctl": values,
        "sysctl_rw": writable,
        "kld": {"loaded": [{"id": 1, "file": "kernel", "modules": []}], "next_id": 2},
        "interfaces": default_interfaces(),
        "next_ifindex": 3,
        "pci": default_pci(),
        "pools": {},
        "datasets": {},
        "txg": 1,
        "running": {},
        "loader_runs": [],
        "nmdm": {},
        "acpi_tables": ["FACP", "APIC", "HPET", "MCFG", "DMAR"],  # acpidump -t; DMAR: the host has VT-d
        "created": time.time(),
        "root": str(base),
    }
