"""A bhyve command line's keys (and its loader's line) as vm-bhyve guest keys, every device where it was.

Each ``pci.B.S.F`` device becomes the keys of its kind in ``hivectl/model/keys.py`` with its ``*_slot`` pin
(bus 0 written ``S:F``), so the guest keeps every PCI address it had; disks keep their paths
(``diskN_dev="custom"`` and the full path as ``diskN_name``, as vm-bhyve's custom disks) and are never copied
or moved; NICs keep their interfaces (``networkN_device``, which hivectl uses and does not destroy) and
their MAC address: when the line gives none, the one bhyve derived from the slot and the VM name
(``00:a0:98`` and the first three bytes of MD5("<slot>-<func>-<name>"), bhyve's net_utils.c) is written.

What has no key is refused with the word that carries it. Global settings hivectl has no key for (``-x``,
``-W``, ``-o x86.verbosemsr=true``, ``-G``, ``-f``...) go to ``bhyve_options``, vm-bhyve's documented place
for raw bhyve options, as the words that were given. What hivectl does differently on purpose (its own
console devices, the flags it always passes) is listed in ``Converted.notes`` and in docs/import.md.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.importer.loaders import Loader
from hivectl.importer.tree import FLAG_KEYS, Entry, Tree
from hivectl.importer.words import ImportRefused, Where
from hivectl.model import keys as key_table

FIRMWARE_DIR = "/usr/local/share/uefi-firmware"
EDK2_DIR = "/usr/local/share/edk2-bhyve"
# Firmware files and the loader that boots them (the edk2-bhyve package installs BHYVE_UEFI.fd as a copy of
# the CODE image, and uefi-firmware/ holds links to it, so these name one firmware).
FIRMWARE_LOADERS = {
    f"{FIRMWARE_DIR}/BHYVE_UEFI.fd": "uefi", f"{FIRMWARE_DIR}/BHYVE_UEFI_CODE.fd": "uefi",
    f"{EDK2_DIR}/BHYVE_UEFI.fd": "uefi", f"{EDK2_DIR}/BHYVE_UEFI_CODE.fd": "uefi",
    f"{FIRMWARE_DIR}/BHYVE_UEFI_CSM.fd": "uefi-csm", f"{FIRMWARE_DIR}/BHYVE_UEFI_CODE-devel.fd": "uefi-devel",
}
ALWAYS = {"x86.vmexit_on_hlt": "true", "x86.vmexit_on_pause": "true", "x86.strictmsr": "false"}  # -H -P -w
LOADER_DEFAULT_DELAY = "10"  # the FreeBSD loader's own autoboot_delay (loader.conf(5))
DISK_EMULATIONS = ("virtio-blk", "nvme", "ahci", "virtio-scsi", "virtio-9p")
FileReader = Callable[[str, Where], str]


@dataclass
class Converted:
    """The guest keys, and what the import did that a reader of the command line should know."""

    values: dict[str, str]
    notes: list[str] = field(default_factory=list)
    vars_file: str | None = None  # a UEFI variable store to copy to NAME/uefi-vars.fd
    added: dict[str, str] = field(default_factory=dict)  # keys hivectl's bhyve gets that the line left out
    install_media: str | None = None  # the ISO (or image) an install boot boots: not in the config


def default_mac(slot: int, func: int, vm_name: str) -> str:
    """The MAC bhyve gives a NIC without ``mac=``: 00:a0:98 + MD5("<slot>-<func>-<name>")[:3] (net_utils.c)."""
    digest = hashlib.md5(f"{slot}-{func}-{vm_name}".encode(), usedforsecurity=False).digest()
    return "00:a0:98:" + ":".join(f"{b:02x}" for b in digest[:3])


def pin_text(addr: tuple[int, int, int]) -> str:
    bus, slot, func = addr
    return f"{slot}:{func}" if bus == 0 else f"{bus}:{slot}:{func}"


def absolute(path: str, base: Path, where: Where, notes: list[str]) -> str:
    """A path as bhyve opens it: relative ones from bhyve's working directory (here: ``base``)."""
    if path.startswith("/"):
        return path
    if not path:
        raise ImportRefused(where, "an empty path")
    full = str(base / path)
    notes.append(f"{where}: the relative path {path!r} is {full} (relative to {base})")
    return full


@dataclass
class _Disk:
    addr: tuple[int, int, int]
    type: str
    name: str
    dev: str
    opts: list[str]
    where: Where
    shared: bool = False  # one port of a multi-port ahci controller


class Converter:
    """One conversion: the tree is consumed key by key; whatever is left over has no vm-bhyve key."""

    def __init__(self, tree: Tree, vm_name: str, guest: str, base: Path, custom_firmware: str,
                 read: FileReader, vale_switches: dict[str, str] | None = None) -> None:
        self.tree = tree
        self.vale_switches = vale_switches or {}  # md5(name)[:5] -> name of this host's vale switches
        self.vm_name = vm_name
        self.guest = guest
        self.base = base
        self.custom_firmware = custom_firmware
        self.read = read
        self.out = Converted({})
        self.used: set[str] = set()
        self.installing = False  # grub-bhyve boots (cd0): one boot of ``hivectl install``
        self.media_slot: int | None = None

    # -- helpers ---------------------------------------------------------------------------------------
    def take(self, key: str) -> Entry | None:
        entry = self.tree.keys.get(key)
        if entry is not None:
            self.used.add(key)
        return entry

    def put(self, key: str, value: str, where: Where) -> None:
        """One guest key, checked with the key table's rule (hivectl/model/keys.py) at the word it came from."""
        try:
            key_table.check(None, key, value)
        except ConfigError as error:
            raise ImportRefused(where, f"as {key}: {error.why}") from None
        self.out.values[key] = value

    def note(self, text: str) -> None:
        self.out.notes.append(text)

    # -- the whole line --------------------------------------------------------------------------------
    def convert(self, loader: Loader | None) -> Converted:
        rom = self.take("lpc.bootrom") or self.take("bootrom")
        vars_entry = self.take("lpc.bootvars") or self.take("bootvars")
        devices = self.tree.devices()
        disks, devs = self._split_disks(devices)
        if rom is not None:
            if loader is not None:
                raise ImportRefused(loader.where, "the bhyve line boots firmware (-l bootrom); a loader line before "
                                                  "it is not used by such a guest")
            self._firmware(rom, vars_entry)
        elif loader is None:
            self.put("loader", "bhyveload", Where(0, "bhyve"))
            self.note("no boot ROM and no loader line: loader=bhyveload (vm-bhyve's default template), booting disk0")
        elif loader.kind == "bhyveload":
            disks = self._bhyveload(loader, disks)
        else:
            disks = self._grub(loader, disks)
        self._identity()
        self._cpu()
        self._memory(loader)
        self._bridges(devs)
        self._serial()
        self._disks(disks)
        self._nics(devs)
        self._simple_devices(devs)
        self._tpm()
        self._install_slot()
        self._leftovers(devices)
        return self.out

    # -- firmware and loaders --------------------------------------------------------------------------
    def _firmware(self, rom: Entry, vars_entry: Entry | None) -> None:
        path = absolute(rom.value, self.base, rom.where, self.out.notes)
        loader = FIRMWARE_LOADERS.get(path)
        if path == self.custom_firmware:
            loader = "uefi-custom"
        if loader is None:
            raise ImportRefused(rom.where, f"hivectl boots the packaged firmware ({FIRMWARE_DIR}/BHYVE_UEFI.fd, "
                                           f"_CSM, _CODE-devel) or {self.custom_firmware} (loader=uefi-custom); "
                                           f"copy {path} there")
        if path not in (self.custom_firmware, *(p for p, name in FIRMWARE_LOADERS.items()
                                                if name == loader and p.endswith(f"/{Path(path).name}"))):
            self.note(f"{rom.where}: {path} is the firmware hivectl names {FIRMWARE_DIR}/BHYVE_UEFI.fd")
        self.put("loader", loader, rom.where)
        if vars_entry is not None:
            self.put("uefi_vars", "yes", vars_entry.where)
            self.out.vars_file = absolute(vars_entry.value, self.base, vars_entry.where, self.out.notes)

    def _boot_disk_first(self, disks: list[_Disk], path: str, where: Where) -> list[_Disk]:
        for disk in disks:
            if disk.name == path or disk.name.endswith("=" + path):
                return [disk, *(d for d in disks if d is not disk)]
        raise ImportRefused(where, f"{path} is not a disk of the bhyve line: hivectl's loader boots the guest's disk0")

    def _same_memory(self, loader: Loader) -> None:
        memory = self.tree.get("memory.size") or "256M"
        if loader.memory is None:
            if validate.memory(None, "-m", memory) != 256 << 20:
                raise ImportRefused(loader.where, f"the loader uses its default 256M but bhyve gets {memory}")
            return
        text, where = loader.memory
        try:
            same = validate.memory(None, "-m", text) == validate.memory(None, "-m", memory)
        except ConfigError as error:
            raise ImportRefused(where, error.why) from None
        if not same:
            raise ImportRefused(where, f"the loader's memory must be bhyve's ({memory}); hivectl gives both one value")

    def _loader_common(self, loader: Loader) -> None:
        if loader.name != self.vm_name:
            raise ImportRefused(loader.where, f"the loader prepares VM {loader.name!r} but bhyve runs {self.vm_name!r}")
        self._same_memory(loader)
        if loader.wired and not self.tree.get("memory.wired"):
            self.tree.set("memory.wired", "true", loader.where)
            self.note(f"{loader.where}: the loader wires memory (-S), so bhyve gets -S too (wired_memory=yes)")
        if loader.console is not None:
            self.note(f"{loader.console[1]}: the loader's console is hivectl's (the first COM port's nmdm device)")

    def _bhyveload(self, loader: Loader, disks: list[_Disk]) -> list[_Disk]:
        self._loader_common(loader)
        self.put("loader", "bhyveload", loader.where)
        if loader.loader is not None:
            self.put("bhyveload_loader", loader.loader[0], loader.loader[1])
        args: list[str] = []
        share: str | None = None
        for text, where in loader.env:
            name, _, value = text.partition("=")
            if name == "autoboot_delay":
                self.put("loader_timeout", value, where)
            elif name == "smbios.system.uuid":
                uuid = self.tree.get("uuid")
                if uuid is None or uuid.lower() != value.lower():
                    raise ImportRefused(where, "the loader's SMBIOS UUID must be bhyve's -U (hivectl passes uuid to "
                                               "both)")
            elif name == "bhyve_vm_name":
                if value != self.vm_name:
                    raise ImportRefused(where, f"bhyve_vm_name must be the VM name {self.vm_name!r}")
            elif name == "vfs.root.mountfrom" and value.startswith("p9fs:") and loader.host_dir is not None:
                share = value[len("p9fs:"):]
            else:
                args += ["-e", text]
        if "loader_timeout" not in self.out.values:
            self.put("loader_timeout", LOADER_DEFAULT_DELAY, loader.where)
            self.note(f"{loader.where}: no autoboot_delay: hivectl passes the loader's own default, "
                      f"-e autoboot_delay={LOADER_DEFAULT_DELAY}")
        if loader.core is not None:
            args.append("-C")
        if args:
            self.put("bhyveload_args", shlex.join(args), loader.where)
        if loader.host_dir is not None:
            directory, where = loader.host_dir
            if share is None or loader.disks:
                raise ImportRefused(where, "hivectl's bhyveload reads a host directory only as a 9p root: -h DIR with "
                                           "-e vfs.root.mountfrom=p9fs:SHARE and the share as a virtio-9p device")
            return self._boot_disk_first(disks, f"{share}={absolute(directory, self.base, where, self.out.notes)}",
                                         where)
        if not loader.disks:
            raise ImportRefused(loader.where, "bhyveload without -d: hivectl's bhyveload boots disk0")
        if len(loader.disks) > 1:
            raise ImportRefused(loader.disks[1][1], "hivectl's bhyveload gets one disk (disk0)")
        path, where = loader.disks[0]
        return self._boot_disk_first(disks, absolute(path, self.base, where, self.out.notes), where)

    def _grub(self, loader: Loader, disks: list[_Disk]) -> list[_Disk]:
        self._loader_common(loader)
        self.put("loader", "grub", loader.where)
        root, root_where = loader.root or ("host", loader.where)
        if root == "host":
            return self._grub_cfg(loader, disks, root_where)
        match = re.fullmatch(r"hd0(?:,(.+))?", root)
        if root == "cd0":
            # hivectl's own install boot without grub_installN: grub-bhyve reads the medium's grub.cfg
            # (hivectl/drivers/bhyve/loaders.py), with no -d or -g
            extra = loader.directory or loader.cfg_file
            if extra is not None:
                raise ImportRefused(extra[1], "hivectl's install boot (-r cd0) passes no -d or -g")
            self.installing = True
            return self._device_map(loader, disks)
        if not match:
            raise ImportRefused(root_where, "hivectl's grub-bhyve boots (hd0) (disk0), (cd0) to install, or a "
                                            "grub.cfg of its own (-r host)")
        if match.group(1):
            self.put("grub_run_partition", match.group(1), root_where)
        else:
            self.put("grub_run_no_partition", "yes", root_where)
        if loader.directory is not None:
            self.put("grub_run_dir", loader.directory[0], loader.directory[1])
        if loader.cfg_file is not None:
            self.put("grub_run_file", loader.cfg_file[0], loader.cfg_file[1])
        return self._device_map(loader, disks)

    def _device_map(self, loader: Loader, disks: list[_Disk]) -> list[_Disk]:
        """Disks numbered as grub-bhyve's device map numbers them: (hdN) is diskN."""
        if loader.device_map is None:
            raise ImportRefused(loader.where, "grub-bhyve without -m: its device map decides which disk is (hd0)")
        path, where = loader.device_map
        text = self.read(absolute(path, self.base, where, self.out.notes), where)
        mapped: dict[int, _Disk] = {}
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            match = re.fullmatch(r"\((hd|cd)([0-9]+)\)", words[0])
            if not match or len(words) != 2:
                raise ImportRefused(where, f"device map line {number} {line!r} is not '(hdN) /path'")
            if match.group(1) == "cd":
                self._install_medium(disks, words, number, where)
                continue
            found = [d for d in disks if d.name == words[1] and d not in mapped.values()]
            if not found or int(match.group(2)) in mapped:
                raise ImportRefused(where, f"device map line {number}: {words[1]} is not a disk of the bhyve line "
                                           "(or its number is used twice)")
            mapped[int(match.group(2))] = found[0]
        if 0 not in mapped:
            raise ImportRefused(where, "the device map has no (hd0)")
        if self.installing and self.out.install_media is None:
            raise ImportRefused(where, "the loader boots (cd0) but the device map names no (cd0) install medium")
        disks = [d for d in disks if d.name != self.out.install_media or d.addr[2] or d.addr[0]
                 or d.addr[1] != self.media_slot]
        # hivectl writes (hdN) for diskN and leaves 9p shares out (grub cannot read them): a number the map
        # skips is a share's; the disks the map does not name come after.
        shares = [d for d in disks if d.type == "virtio-9p"]
        ordered: list[_Disk] = []
        for number in range(max(mapped) + 1):
            if number in mapped:
                ordered.append(mapped[number])
            elif shares:
                ordered.append(shares.pop(0))
            else:
                raise ImportRefused(where, f"the device map has no (hd{number}): hivectl's (hdN) is diskN")
        return [*ordered, *(d for d in disks if d not in ordered)]

    def _install_medium(self, disks: list[_Disk], words: list[str], number: int, where: Where) -> None:
        """The device map's ``(cd0)``: the medium ``hivectl install NAME ISO`` attaches at ``install_slot``.

        hivectl writes ``(cd0) ISO`` first in an install boot's map and attaches the medium as the only
        device of its slot (hivectl/drivers/bhyve/loaders.py); the guest's config keeps nothing of it, as an
        installed guest's config keeps nothing of the ISO it was installed from: the slot is ``install_slot``.
        """
        if not self.installing:
            raise ImportRefused(where, f"device map line {number}: (cd0) is an install medium, but the loader "
                                       "boots the guest's disk")
        if words[0] != "(cd0)" or self.out.install_media is not None:
            raise ImportRefused(where, f"device map line {number}: hivectl's install boot has one medium, (cd0)")
        found = [d for d in disks if d.name == words[1] and d.type in ("ahci-cd", "ahci-hd")
                 and d.addr[0] == 0 and d.addr[2] == 0 and not d.shared]
        if not found:
            raise ImportRefused(where, f"device map line {number}: {words[1]} is not the only device of a slot of "
                                       "bus 0 (an ahci-cd, or ahci-hd image), where hivectl attaches install media")
        self.out.install_media = words[1]
        self.media_slot = found[0].addr[1]

    def _grub_cfg(self, loader: Loader, disks: list[_Disk], where: Where) -> list[_Disk]:
        """``-r host -d DIR``: a grub.cfg with one menu entry, whose commands become ``grub_runN``."""
        directory = loader.directory[0] if loader.directory else "/boot/grub"
        name = loader.cfg_file[0] if loader.cfg_file else "grub.cfg"
        cfg_where = loader.directory[1] if loader.directory else where
        text = self.read(absolute(f"{directory}/{name}", self.base, cfg_where, self.out.notes), cfg_where)
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        entries = [i for i, line in enumerate(lines) if line.startswith("menuentry ")]
        if len(entries) != 1 or lines[-1] != "}":
            raise ImportRefused(cfg_where, "hivectl keeps a grub.cfg with one menuentry (its commands become "
                                           "grub_runN); this one has " + str(len(entries)))
        for line in lines[:entries[0]]:
            key, _, value = line.partition("=")
            if key == "timeout":
                self.put("loader_timeout", value, cfg_where)
            else:
                raise ImportRefused(cfg_where, f"grub.cfg line {line!r} outside the menu entry has no key")
        body = lines[entries[0] + 1:-1]
        if not body or not body[0].startswith("root="):
            raise ImportRefused(cfg_where, "the menu entry must start with root=(hd0...) as hivectl writes it")
        root = body[0][len("root="):]
        if root in ("cd0", "(cd0)"):  # an install boot: its commands are the guest's grub_installN
            self.installing = True
            for index, command in enumerate(body[1:]):
                self.put(f"grub_install{index}", command, cfg_where)
            if "loader_timeout" not in self.out.values:
                self.put("loader_timeout", "3", cfg_where)
            return self._device_map(loader, disks)
        match = re.fullmatch(r"\(?hd0(?:,([^)]+))?\)?", root)
        if not match:
            raise ImportRefused(cfg_where, f"root={root}: hivectl's grub.cfg boots (hd0)")
        if match.group(1) and match.group(1) != "1":
            self.put("grub_run_partition", match.group(1), cfg_where)
        elif not match.group(1):
            self.put("grub_run_no_partition", "yes", cfg_where)
        for index, command in enumerate(body[1:]):
            self.put(f"grub_run{index}", command, cfg_where)
        if "loader_timeout" not in self.out.values:
            self.put("loader_timeout", "3", cfg_where)
        return self._device_map(loader, disks)

    # -- global settings -------------------------------------------------------------------------------
    def _identity(self) -> None:
        name = self.take("name")
        if self.guest != self.vm_name:
            assert name is not None
            self.note(f"{name.where}: the guest is named {self.guest}; NICs keep the MAC bhyve gave them as "
                      f"{self.vm_name}")
        uuid = self.take("uuid")
        if uuid is not None:
            self.put("uuid", uuid.value, uuid.where)

    def _cpu(self) -> None:
        given = {k: self.take(k) for k in ("cpus", "sockets", "cores", "threads")}
        numbers: dict[str, int] = {}
        for key, entry in given.items():
            if entry is not None:
                numbers[key] = int(entry.value) if entry.value.isdigit() else -1
                if not 1 <= numbers[key] <= 65535:
                    raise ImportRefused(entry.where, f"{key}={entry.value!r} is not 1-65535 (bhyve: Invalid value)")
        product = numbers.get("sockets", numbers.get("cpus", 1)) * numbers.get("cores", 1) * numbers.get("threads", 1)
        cpus = numbers.get("cpus", product)
        if cpus != product:
            entry = next(e for e in given.values() if e is not None)
            raise ImportRefused(entry.where, f"sockets×cores×threads = {product} but cpus = {cpus} (bhyve: Topology "
                                             "does not match)")
        where = next((e.where for e in given.values() if e is not None), Where(0, "bhyve"))
        self.put("cpu", str(cpus), where)
        for key in ("sockets", "cores", "threads"):
            entry = given[key]
            if entry is not None:
                self.put(f"cpu_{key}", str(numbers[key]), entry.where)
        pins: list[str] = []
        pin_where: Where | None = None
        for key in list(self.tree.keys):
            match = re.fullmatch(r"vcpu\.([0-9]+)\.cpuset", key)
            entry = self.take(key) if match else None
            if match is None or entry is None:
                continue
            for part in entry.value.split(","):
                low, _, high = part.partition("-")
                if not low.isdigit() or (high and not high.isdigit()):
                    raise ImportRefused(entry.where, f"cpuset {entry.value!r} is not a list of CPUs and ranges")
                pins += [f"{int(match.group(1))}:{host}" for host in range(int(low), int(high or low) + 1)]
            if int(match.group(1)) >= cpus:
                raise ImportRefused(entry.where, f"vCPU {match.group(1)} does not exist (bhyve ignores the pin "
                                                 f"silently; hivectl refuses it): the guest has {cpus}")
            pin_where = pin_where or entry.where
        if pins and pin_where is not None:
            self.put("cpu_pin", " ".join(pins), pin_where)

    def _memory(self, loader: Loader | None) -> None:
        entry = self.take("memory.size")
        if entry is None:
            self.put("memory", "256M", Where(0, "bhyve"))
            self.note("no -m: memory=256M (bhyve's default)")
        else:
            self.put("memory", entry.value, entry.where)
        wired = self.take("memory.wired")
        if wired is not None and wired.value == "true":
            self.put("wired_memory", "yes", wired.where)
        utc = self.take("rtc.use_localtime")
        self.put("utctime", "yes" if utc is not None and utc.value == "false" else "no",
                 utc.where if utc else Where(0, "bhyve"))
        for key, value in ALWAYS.items():
            entry = self.tree.keys.get(key)
            if entry is None or entry.value == value:
                self.used.add(key)
        fwcfg = self.take("lpc.fwcfg")
        if fwcfg is not None:
            self.put("fwcfg", fwcfg.value, fwcfg.where)

    def _bridges(self, devs: dict[tuple[int, int, int], dict[str, Entry]]) -> None:
        hostbridge = [a for a, keys in devs.items() if keys["device"].value == "hostbridge"]
        if not hostbridge:
            self.put("hostbridge", "none", Where(0, "bhyve"))
        for addr in hostbridge:
            keys = devs.pop(addr)
            where = keys["device"].where
            if addr != (0, 0, 0):
                raise ImportRefused(where, "hivectl keeps the host bridge at 0:0:0")
            ids = {k: e.value for k, e in keys.items() if k != "device"}
            self._used_node(addr, keys)
            if ids == {"pcireg.vendor": "0x1022", "pcireg.device": "0x7432"}:
                self.put("hostbridge", "amd", where)
            elif ids:
                raise ImportRefused(where, f"host bridge options {sorted(ids)} have no key (only amd_hostbridge's IDs)")
        lpc = [a for a, keys in devs.items() if keys["device"].value == "lpc"]
        if not lpc:
            self.note("no lpc device: hivectl always has the LPC bridge at 0:31:0 (it carries the COM ports)")
        for addr in lpc:
            keys = devs.pop(addr)
            where = keys["device"].where
            if len(keys) > 1:
                raise ImportRefused(where, "LPC bridge options have no key")
            if addr[0] != 0 or addr[1] == 0:
                raise ImportRefused(where, "bhyve's LPC bridge is on bus 0 (not at slot 0)")
            self._used_node(addr, keys)
            if addr != (0, 31, 0):
                self.put("lpc_slot", pin_text(addr), where)

    def _serial(self) -> None:
        ports: list[tuple[str, Entry]] = []
        for key in list(self.tree.keys):
            match = re.fullmatch(r"lpc\.(com[1-4])\.path", key)
            entry = self.take(key) if match else None
            if match and entry is not None:
                ports.append((match.group(1), entry))
        for _port, entry in ports:
            if entry.value != "stdio" and not re.fullmatch(r"/dev/nmdm.+[AB]", entry.value):
                raise ImportRefused(entry.where, "hivectl gives COM ports its own nmdm pairs ('hivectl console'); a "
                                                 f"COM port on {entry.value} cannot be kept")
        if ports:
            self.put("comports", " ".join(p for p, _ in ports), ports[0][1].where)
            self.note(f"COM ports {', '.join(p for p, _ in ports)}: on hivectl's nmdm pairs /dev/nmdm-{self.guest}.NA "
                      f"('hivectl console {self.guest}'; 'start -f' puts the first on stdio)")
        else:
            self.note("no COM port: hivectl gives com1 an nmdm pair (comports=com1)")

    # -- disks -----------------------------------------------------------------------------------------
    def _split_disks(self, devices: dict[tuple[int, int, int], dict[str, Entry]]
                     ) -> tuple[list[_Disk], dict[tuple[int, int, int], dict[str, Entry]]]:
        disks: list[_Disk] = []
        others: dict[tuple[int, int, int], dict[str, Entry]] = {}
        for addr, keys in devices.items():
            emulation = keys["device"].value
            if emulation not in DISK_EMULATIONS:
                others[addr] = keys
                continue
            self._used_node(addr, keys)
            where = keys["device"].where
            if emulation == "ahci":
                count = len({k.split(".")[1] for k in keys if k.startswith("port.")})
                for index in range(count):
                    prefix = f"port.{index}."
                    port = {k[len(prefix):]: e for k, e in keys.items() if k.startswith(prefix)}
                    kind = port.pop("type").value
                    disks.append(self._disk(addr, f"ahci-{kind}", port, where, count > 1))
                continue
            rest = {k: e for k, e in keys.items() if k != "device"}
            disks.append(self._disk(addr, emulation, rest, where))
        return disks, others

    def _disk(self, addr: tuple[int, int, int], emulation: str, keys: dict[str, Entry], where: Where,
              shared: bool = False) -> _Disk:
        if emulation == "virtio-9p":
            share, path = keys.pop("sharename").value, keys.pop("path").value
            name, dev = f"{share}={absolute(path, self.base, where, self.out.notes)}", "9p"
        elif emulation == "virtio-scsi":
            entry = keys.pop("dev", None)
            name, dev = (entry.value if entry else "/dev/cam/ctl"), "custom"
        else:
            entry = keys.pop("path", None)
            if entry is None:
                raise ImportRefused(where, "a disk without a path")
            if emulation == "nvme" and entry.value.startswith("ram="):
                raise ImportRefused(where, "an nvme RAM disk (ram=) has no key: hivectl's disks are files and devices")
            name, dev = absolute(entry.value, self.base, where, self.out.notes), "custom"
        opts = [e.token or f"{k}={e.value}" for k, e in keys.items()]
        return _Disk(addr, emulation, name, dev, opts, where, shared)

    def _disks(self, disks: list[_Disk]) -> None:
        for index, disk in enumerate(disks):
            key = f"disk{index}"
            self.put(f"{key}_type", disk.type, disk.where)
            self.put(f"{key}_name", disk.name, disk.where)
            self.put(f"{key}_dev", disk.dev, disk.where)
            if disk.opts:
                self.put(f"{key}_opts", ",".join(disk.opts), disk.where)
            self.put(f"{key}_slot", pin_text(disk.addr), disk.where)

    # -- NICs and the other devices --------------------------------------------------------------------
    def _nics(self, devs: dict[tuple[int, int, int], dict[str, Entry]]) -> None:
        nics = [a for a, keys in devs.items() if keys["device"].value in ("virtio-net", "e1000")]
        for index, addr in enumerate(nics):
            keys = dict(devs.pop(addr))
            self._used_node(addr, keys)
            device = keys.pop("device")
            key, where = f"network{index}", device.where
            backend = keys.pop("backend", None)
            if backend is None:
                raise ImportRefused(where, "a NIC without a backend: hivectl's NICs always have a host interface")
            kind = keys.pop("type", None)
            name = backend.value
            if kind is not None and kind.value != "tap":
                raise ImportRefused(where, f"type={kind.value}: hivectl keeps tap interfaces only")
            vale = re.fullmatch(r"vale([0-9a-f]{5}):([0-9a-f]{5})", name) if kind is None else None
            if not (name.startswith(("tap", "vmnet")) or kind is not None or vale):
                raise ImportRefused(where, f"backend {name!r}: hivectl imports tap and vmnet interfaces "
                                           "(networkN_device); a VALE, netmap or netgraph port needs a switch of that "
                                           "type and networkN_switch")
            self.put(f"{key}_type", device.value, where)
            mac = keys.pop("mac", None)
            if vale:
                self.put(f"{key}_switch", self._vale_switch(vale, mac, where), where)
            else:
                self.put(f"{key}_device", name, where)
            if mac is not None:
                self.put(f"{key}_mac", mac.value.lower(), where)
            else:
                generated = default_mac(addr[1], addr[2], self.vm_name)
                self.put(f"{key}_mac", generated, where)
                self.out.added[f"pci.{addr[0]}.{addr[1]}.{addr[2]}.mac"] = generated
                self.note(f"{where}: no mac=: networkN_mac={generated}, the address bhyve gave this NIC")
            mtu = keys.pop("mtu", None)
            if mtu is not None and device.value == "virtio-net":
                self.put(f"{key}_mtu", mtu.value, where)
            elif mtu is not None:
                self.note(f"{where}: mtu= is ignored by bhyve's e1000 and left out")
            if keys:
                raise ImportRefused(where, f"NIC option(s) {', '.join(sorted(keys))} have no key")
            self.put(f"{key}_slot", pin_text(addr), where)

    def _vale_switch(self, port: re.Match[str], mac: Entry | None, where: Where) -> str:
        """The vale switch that gives this NIC the port ``vale<md5(switch)[:5]>:<md5(MAC)[:5]>``.

        vm-bhyve's ``switch::vale::id`` (lib/vm-switch-vale) names the port from the switch's name and the
        NIC's MAC, so the port plans back only from a vale switch of this host with that name, and with the
        MAC the line pins (docs/import.md).
        """
        switch = self.vale_switches.get(port.group(1))
        if switch is None:
            raise ImportRefused(where, f"VALE port {port.group(0)}: no vale switch of this host has a name whose "
                                       f"md5 begins {port.group(1)} (vm-bhyve's vale<md5(switch)[:5]>:<md5(MAC)[:5]>)")
        if mac is None:
            raise ImportRefused(where, f"VALE port {port.group(0)} without mac=: the port half is md5 of the MAC")
        digest = hashlib.md5(mac.value.encode(), usedforsecurity=False).hexdigest()[:5]
        if digest != port.group(2):
            raise ImportRefused(where, f"VALE port {port.group(0)}: switch {switch} gives this NIC vale"
                                       f"{port.group(1)}:{digest} (md5 of {mac.value}), not {port.group(0)}")
        return switch

    def _simple_devices(self, devs: dict[tuple[int, int, int], dict[str, Entry]]) -> None:
        passthru = 0
        consoles = 0
        for addr, keys in list(devs.items()):
            keys = dict(keys)
            device = keys.pop("device")
            where, emulation = device.where, device.value
            self._used_node(addr, keys | {"device": device})
            pin = pin_text(addr)
            if emulation == "virtio-rnd" and not keys:
                self.put("virt_random", "yes", where)
                self.put("virt_random_slot", pin, where)
            elif emulation == "passthru":
                self._passthru(passthru, addr, keys, where)
                passthru += 1
            elif emulation == "fbuf":
                self._fbuf(keys, where)
                self.put("graphics_slot", pin, where)
            elif emulation == "xhci":
                if {k: e.value for k, e in keys.items()} != {"slot.1.device": "tablet"}:
                    raise ImportRefused(where, "hivectl's USB controller has one tablet (xhci,tablet): xhci_mouse")
                self.put("xhci_mouse", "yes", where)
                self.put("xhci_slot", pin, where)
            elif emulation == "hda":
                play, rec = keys.pop("play", None), keys.pop("rec", None)
                if play is None or keys:
                    raise ImportRefused(where, "hivectl's hda has play= (sound_play) and optionally rec= (sound_rec)")
                self.put("sound", "yes", where)
                self.put("sound_play", play.value, where)
                if rec is not None:
                    self.put("sound_rec", rec.value, where)
                self.put("sound_slot", pin, where)
            elif emulation == "virtio-console":
                if consoles:
                    raise ImportRefused(where, "hivectl has one virtio-console device (virt_console0-15 are its ports)")
                consoles += 1
                self._console(keys, where)
                self.put("virt_console_slot", pin, where)
            else:
                raise ImportRefused(where, f"hivectl has no key for a {emulation} device")
            del devs[addr]

    def _passthru(self, index: int, addr: tuple[int, int, int], keys: dict[str, Entry], where: Where) -> None:
        if "pptdev" in keys:
            raise ImportRefused(where, "name the host device as bus/slot/func (pciconf -l shows pptN's address): "
                                       "passthruN is B/S/F")
        host = "/".join(keys.pop(k).value for k in ("bus", "slot", "func"))
        if addr[0] != 0 or addr[1] in (0, 31):
            raise ImportRefused(where, "hivectl places passthru devices on bus 0, slots 1-30 (passthruN=B/S/F=S:F)")
        self.put(f"passthru{index}", f"{host}={addr[1]}:{addr[2]}", where)
        if keys:
            self.put(f"passthru{index}_options", ",".join(e.token or f"{k}={e.value}" for k, e in keys.items()), where)
        if self.tree.get("memory.wired") != "true":
            self.tree.set("memory.wired", "true", where)
            self.note(f"{where}: passthru needs wired memory: bhyve gets -S (bhyve refuses passthru without)")

    def _fbuf(self, keys: dict[str, Entry], where: Where) -> None:
        if not self.out.values.get("loader", "").startswith("uefi"):
            raise ImportRefused(where, "a frame buffer needs UEFI firmware (-l bootrom); hivectl ignores graphics "
                                       "otherwise")
        self.put("graphics", "yes", where)
        address = keys.pop("rfb", None) or keys.pop("tcp", None)
        keys.pop("tcp", None)
        text = address.value if address is not None else "5900"
        match = re.fullmatch(r"(?:\[([^\]]+)\]:|([^:\[\]]+):)?([0-9]+)", text)
        if not match:
            raise ImportRefused(where, f"VNC address {text!r} is not port, ip:port or [ipv6]:port")
        listen = match.group(1) or match.group(2) or "127.0.0.1"
        self.put("graphics_listen", listen, where)
        self.put("graphics_port", match.group(3), where)
        width, height = keys.pop("w", None), keys.pop("h", None)
        if (width is None) != (height is None):
            raise ImportRefused(where, "give both w= and h= (graphics_res is WxH)")
        if width is not None and height is not None:
            self.put("graphics_res", f"{width.value}x{height.value}", where)
        vga = keys.pop("vga", None)
        if vga is not None:
            self.put("graphics_vga", vga.value, where)
        wait = keys.pop("wait", None)
        self.put("graphics_wait", "yes" if wait is not None and validate.yesno(wait.value) else "no", where)
        password = keys.pop("password", None)
        if password is not None:
            self.put("vnc_password", password.value, where)
        if keys:
            raise ImportRefused(where, f"frame buffer option(s) {', '.join(sorted(keys))} have no key")

    def _console(self, keys: dict[str, Entry], where: Where) -> None:
        count = len({k.split(".")[1] for k in keys if k.startswith("port.")})
        for index in range(count):
            name = keys[f"port.{index}.name"].value
            self.put(f"virt_console{index}", "yes" if name == str(index) else name, where)
        self.note(f"{where}: virtio-console sockets are {self.guest}'s vtcon.<port> in its directory")

    def _tpm(self) -> None:
        kind, path = self.take("tpm.type"), self.take("tpm.path")
        version = self.take("tpm.version")
        if version is not None and version.value != "2.0":
            raise ImportRefused(version.where, "hivectl's TPM is version 2.0")
        if kind is None or path is None:
            return
        self.put("tpm", kind.value, kind.where)
        self.put("tpm_path", path.value, path.where)

    def _install_slot(self) -> None:
        """Install media go to ``install_slot``, which no pin may use: the default 3, or the first free slot."""
        taken = {int(v.split(":")[0]) for k, v in self.out.values.items()
                 if k.endswith("_slot") and v.count(":") < 2}
        if self.media_slot is not None:  # where this install boot had its medium
            if self.media_slot != 3:
                self.out.values["install_slot"] = str(self.media_slot)
            return
        if 3 in taken:
            free = [s for s in range(1, 31) if s not in taken]
            if not free:
                raise ImportRefused(None, "every slot of bus 0 is used: no install_slot is left for install media")
            self.out.values["install_slot"] = str(free[0])

    # -- what is left ----------------------------------------------------------------------------------
    def _used_node(self, addr: tuple[int, int, int], keys: dict[str, Entry]) -> None:
        node = f"pci.{addr[0]}.{addr[1]}.{addr[2]}"
        self.used.update(f"{node}.{k}" for k in keys)

    def _leftovers(self, devices: dict[tuple[int, int, int], dict[str, Entry]]) -> None:
        """Keys nothing took: bhyve options without a vm-bhyve key, kept as ``bhyve_options``."""
        if any(addr[0] for addr in devices) and self.tree.get("x86.mptable") == "false":
            self.used.add("x86.mptable")  # hivectl passes -Y itself when a device sits past bus 0
        left = [(k, e) for k, e in self.tree.keys.items() if k not in self.used]
        for key, entry in left:
            if key.startswith("pci."):
                raise ImportRefused(entry.where, f"{key} has no vm-bhyve key")
        words: list[str] = []
        flags = {v: k for k, v in FLAG_KEYS.items()}
        for key, entry in left:
            letter = flags.get((key, entry.value))
            words += [f"-{letter}"] if letter else ["-o", f"{key}={entry.value}"]
        for text, _where in self.tree.fwcfg:
            option, _, value = text.partition(" ")
            words += [option, value]
        if words:
            self.put("bhyve_options", shlex.join(words), left[0][1].where if left else self.tree.fwcfg[0][1])
            self.note(f"bhyve_options={shlex.join(words)!r}: options without a vm-bhyve key, passed as given")


def convert(tree: Tree, vm_name: str, guest: str, loader: Loader | None, base: Path, custom_firmware: str,
            read: FileReader, vale_switches: dict[str, str] | None = None) -> Converted:
    """The guest keys for this command line (see the module docstring)."""
    return Converter(tree, vm_name, guest, base, custom_firmware, read, vale_switches).convert(loader)
