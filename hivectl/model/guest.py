"""A guest's configuration (``NAME/NAME.conf``) as typed, validated values.

The file itself stays an ``RcFile`` so that unknown keys, comments and order survive every edit; the
classes here are read-only views computed from it. Devices are numbered keys (``disk0_*``,
``network0_*``); like vm-bhyve, a list stops at the first index whose defining key is missing.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError, ValidationErrors
from hivectl.model import backing, keys
from hivectl.model.devices import disk as disk_keys
from hivectl.rcfile import RcFile
from hivectl.records import record


@record(frozen=True)
class Disk:
    """One ``diskN_*`` group."""

    index: int
    type: str
    name: str
    dev: str = backing.DEFAULT
    opts: str = ""
    slot: str = ""

    @property
    def key(self) -> str:
        return f"disk{self.index}"

    @property
    def backing(self) -> backing.Backing:
        """What ``diskN_dev`` means for this disk's storage (hivectl/model/backing.py)."""
        return backing.of(self.dev)

    @property
    def is_cd(self) -> bool:
        """A CD drive (``ahci-cd``: an install ISO, the cloud-init seed), not a disk hivectl sizes or copies."""
        return disk_keys.is_cd(self.type)


@record(frozen=True)
class Nic:
    """One ``networkN_*`` group."""

    index: int
    type: str
    switch: str = ""
    device: str = ""
    name: str = ""
    mac: str = ""
    span: bool = False
    mtu: str = ""
    slot: str = ""

    @property
    def key(self) -> str:
        return f"network{self.index}"


def _indexed(values: dict[str, str], prefix: str, defining: str) -> list[int]:
    """Indices 0, 1, ... of a numbered group, stopping at the first gap (vm-bhyve's rule)."""
    found: list[int] = []
    index = 0
    while values.get(f"{prefix}{index}_{defining}", ""):
        found.append(index)
        index += 1
    return found


class GuestConfig:
    """Typed access to a guest's (or template's) keys, over an ``RcFile``."""

    def __init__(self, rc: RcFile, name: str) -> None:
        self.rc = rc
        self.name = name

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> GuestConfig:
        return cls(RcFile.load(path), name or path.stem)

    @property
    def path(self) -> Path:
        return self.rc.path

    @property
    def values(self) -> dict[str, str]:
        return self.rc.values

    def get(self, key: str, default: str | None = None) -> str:
        """A key's value, falling back to the documented default from the key table."""
        if key in self.rc.values:
            return self.rc.values[key]
        if default is not None:
            return default
        spec = keys.spec_for(key)
        return spec.default if spec is not None else ""

    def flag(self, key: str) -> bool:
        """A boolean key read the way vm-bhyve reads it (anything but no/false/off/0/empty is true)."""
        return validate.yesno(self.get(key))

    @property
    def loader(self) -> str:
        return self.get("loader")

    @property
    def is_uefi(self) -> bool:
        return self.loader.startswith("uefi")

    @property
    def cpu(self) -> str:
        return self.get("cpu")

    @property
    def memory(self) -> str:
        return self.get("memory")

    @property
    def disks(self) -> list[Disk]:
        values = self.rc.values
        result = []
        for i in _indexed(values, "disk", "name"):
            p = f"disk{i}_"
            result.append(Disk(i, values.get(p + "type", ""), values[p + "name"],
                               values.get(p + "dev", "") or backing.DEFAULT, values.get(p + "opts", ""),
                               values.get(p + "slot", "")))
        return result

    @property
    def nics(self) -> list[Nic]:
        values = self.rc.values
        result = []
        for i in _indexed(values, "network", "type"):
            p = f"network{i}_"
            result.append(Nic(i, values[p + "type"], values.get(p + "switch", ""), values.get(p + "device", ""),
                              values.get(p + "name", ""), values.get(p + "mac", ""),
                              validate.yesno(values.get(p + "span", "")), values.get(p + "mtu", ""),
                              values.get(p + "slot", "")))
        return result

    @property
    def tags(self) -> list[str]:
        return self.get("tags").split()

    def errors(self, template: bool = False) -> list[ConfigError]:
        """Every invalid value, each naming this file, the key and the value (all found at once)."""
        problems: list[ConfigError] = []
        for key, value in self.rc.values.items():
            try:
                keys.check(self.path, key, value)
            except ConfigError as error:
                problems.append(error)
        if not template:
            for key in ("loader", "cpu", "memory"):
                if not self.rc.values.get(key):
                    problems.append(ConfigError(self.path, key, "", "this key is required to start the guest"))
        for disk in self.disks:
            if not disk.type:
                problems.append(ConfigError(self.path, f"disk{disk.index}_type", "",
                                            "every disk needs an emulation type"))
        return problems

    def check(self, template: bool = False) -> None:
        """Raise ``ValidationErrors`` listing every problem, or return if the config is valid."""
        problems = self.errors(template)
        if len(problems) == 1:
            raise problems[0]  # one problem is one ConfigError (file, key and value), like every other check
        if problems:
            raise ValidationErrors(problems)

    def next_free(self, prefix: str, defining: str) -> int:
        """The first index not used by a group (``disk``/``name`` → 2 when disk0 and disk1 exist)."""
        return len(_indexed(self.rc.values, prefix, defining))
