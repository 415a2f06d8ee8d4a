"""The target's half of the preflight: can this host run the guest the sender describes?

The sender sends the guest's config text, the name it will have here and the datastore it should land in
(``hivectl _stream migrate-facts``); this host answers with every difference it finds, one line each, before
a byte of disk moves (issue 12: "every difference is listed"):

- the datastore exists and holds guests, and no guest here has the name;
- the config reads as a guest config here;
- every switch the guest's NICs use exists in this host's ``system.conf``;
- the driver's own start preflight on this host (``Driver.preflight``: the hypervisor and firmware files,
  vm-bhyve's host checks including memory against the host's RAM, IOMMU for passthru, swtpm), minus the
  complaints about the guest's own files, which are what the migration brings;
- enough CPUs (``hw.ncpu`` on FreeBSD, the CPUs Linux gives this process) and, on Linux, memory available
  now (``MemAvailable``) for the guest's ``memory``;
- every ``passthruN`` device present and ready for passthrough.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hivectl.errors import HivectlError, NotFound
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import config_name
from hivectl.rcfile import RcFile
from hivectl.store import GuestRef, Store


def host_cpus(host: Host) -> int | None:
    if host.platform == "freebsd":
        out = host.run(["sysctl", "-n", "hw.ncpu"], check=False).stdout.strip()
        return int(out) if out.isdigit() else None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _mem_available(host: Host) -> int | None:
    if host.platform == "freebsd":
        return None  # hw.physmem is the driver's host check; FreeBSD has no one "available" figure
    try:
        text = (host.root / "proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+([0-9]+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def _cpus_wanted(value: str) -> int | None:
    """``cpu=N`` or vm-bhyve's topology form ``cpu=N,sockets=S,cores=C,threads=T``: the N."""
    head = value.split(",", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _bytes(value: str) -> int | None:
    found = re.fullmatch(r"([0-9]+)([KMGT]?)B?", value.strip().upper())
    if not found:
        return None
    return int(found.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[found.group(2)]


def target_problems(store: Store, host: Host, driver: Any, name: str, datastore: str, text: str) -> list[str]:
    """Every reason this host cannot take guest ``name`` with config ``text`` into ``datastore``."""
    problems: list[str] = []
    try:
        ds = store.datastore(datastore)
    except (NotFound, HivectlError) as error:
        return [f"datastore {datastore}: {error}"]
    if not ds.holds_guests:
        problems.append(f"datastore {datastore} ({ds.spec}) does not hold guests")
    other = store.find(name)
    if other is not None:
        problems.append(f"a guest named {name} already exists here (datastore {other.datastore.name})")
    ref = GuestRef(name, ds)
    config = GuestConfig(RcFile(ref.directory / config_name(name), text), name)
    problems += [str(error) for error in config.errors()]
    switches = set(store.system().get("switch_list").split())
    for nic in config.nics:
        if nic.switch and nic.switch not in switches:
            problems.append(f"{nic.key}_switch={nic.switch}: there is no such switch here "
                            f"(switches: {' '.join(sorted(switches)) or 'none'})")
    own = str(ref.directory)
    try:
        problems += [p for p in driver.preflight(ref, config) if own not in p]
    except HivectlError as error:
        problems.append(str(error))
    wanted = _cpus_wanted(config.cpu)
    have = host_cpus(host)
    if wanted is not None and have is not None and wanted > have:
        problems.append(f"cpu={config.cpu}: this host has {have} CPUs")
    memory = _bytes(config.memory)
    available = _mem_available(host)
    if memory is not None and available is not None and memory > available:
        problems.append(f"memory={config.memory}: this host has {available >> 20} MiB available now")
    problems += _passthru_problems(host, config)
    return problems


def _passthru_problems(host: Host, config: GuestConfig) -> list[str]:
    wanted = {key: value for key, value in config.values.items() if re.fullmatch(r"passthru[0-9]+", key) and value}
    if not wanted:
        return []
    from hivectl.ops.passthru import host_devices

    devices = host_devices(host)
    ready = {d.bhyve for d in devices if d.ready} | {d.device for d in devices if d.ready}
    return [f"{key}={value}: no such device ready for passthrough here" for key, value in sorted(wanted.items())
            if value not in ready]


def facts(store: Store, host: Host, driver: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to a sender's ``migrate-facts`` request (a JSON object with name, datastore, config)."""
    name, datastore, text = request.get("name"), request.get("datastore"), request.get("config")
    if not all(isinstance(v, str) for v in (name, datastore, text)):
        raise HivectlError("migrate-facts: the request needs name, datastore and config as strings")
    assert isinstance(name, str) and isinstance(datastore, str) and isinstance(text, str)
    from hivectl import validate

    validate.guest_name(None, "NAME", name, new=True)
    return {"ok": True, "platform": host.platform, "driver": getattr(driver, "name", ""),
            "cpus": host_cpus(host), "problems": target_problems(store, host, driver, name, datastore, text),
            "vm_dir": str(store.root), "datastore_path": _datastore_path(store, datastore),
            "zfs_dataset": _zfs_dataset(store, name, datastore)}


def _zfs_dataset(store: Store, name: str, datastore: str) -> str | None:
    """Where a ``zfs send`` of the guest would land here (``migrate-zfs``), None when it cannot."""
    from hivectl.migrate.zfsrecv import target_dataset

    try:
        return target_dataset(store, datastore, name)
    except HivectlError:
        return None


def _datastore_path(store: Store, datastore: str) -> str | None:
    try:
        return str(Path(store.datastore(datastore).path))
    except HivectlError:
        return None
