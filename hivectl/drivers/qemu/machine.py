"""The machine part of the command line: name, UUID, vCPUs and topology, memory, clock.

Values are read with bhyve's rules so that one config means the same machine on both hypervisors:
``memory`` is parsed like ``bhyve -m`` (a bare number below 1048576 is MiB), and the CPU topology is
completed like ``bhyve -c`` (cores and threads default to 1, sockets to the vCPU count, and the product
must equal ``cpu``), so a topology bhyve refuses is refused here too, at planning time, naming the key.
"""

from __future__ import annotations

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig

MIB = 1 << 20


def memory_mib(config: GuestConfig) -> int:
    """Guest memory in MiB for ``-m``, rounded up to a whole MiB (bhyve accepts 4 KiB multiples)."""
    size = validate.memory(config.path, "memory", config.memory)
    return -(-size // MIB)


def smp(config: GuestConfig) -> str:
    """``cpus=N,sockets=S,cores=C,threads=T`` with bhyve's defaults and consistency rule."""
    cpus = validate.cpu_count(config.path, "cpu", config.cpu)
    given = {key: config.get(key) for key in ("cpu_sockets", "cpu_cores", "cpu_threads")}
    numbers = {key: validate.integer(config.path, key, value, 1, 65535) for key, value in given.items() if value}
    sockets = numbers.get("cpu_sockets", cpus)
    cores = numbers.get("cpu_cores", 1)
    threads = numbers.get("cpu_threads", 1)
    if sockets * cores * threads != cpus:
        key = next(iter(numbers), "cpu")
        raise ConfigError(config.path, key, config.get(key),
                          f"topology {sockets} sockets x {cores} cores x {threads} threads does not match "
                          f"cpu={cpus} (sockets default to cpu, cores and threads to 1, as in bhyve -c)")
    return f"cpus={cpus},sockets={sockets},cores={cores},threads={threads}"


def machine_args(config: GuestConfig, name: str) -> list[str]:
    """Everything about the machine that is not a device."""
    args = ["-name", f"{name},process=hivectl-{name}"]
    uuid = config.get("uuid")
    if uuid:
        args += ["-uuid", validate.uuid(config.path, "uuid", uuid)]
    args += ["-smp", smp(config), "-m", str(memory_mib(config))]
    if config.flag("wired_memory"):
        args += ["-overcommit", "mem-lock=on"]  # bhyve -S: guest memory wired (never swapped)
    args += ["-rtc", "base=utc" if config.flag("utctime") else "base=localtime"]
    return args
