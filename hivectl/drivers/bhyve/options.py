"""The non-device parts of a bhyve run: CPU topology and pinning, serial ports, raw options.

Each helper checks its values the way bhyve will, so a bad topology or pinning is reported with the
config key before anything starts (bhyve itself would exit 4 or 64 with a message about ``-c``/``-p``).
"""

from __future__ import annotations

import shlex

from hivectl import validate
from hivectl.drivers.bhyve.model import Topology
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import nmdm_base
from hivectl.records import field, record

MAX_VCPUS = 65535


def topology(config: GuestConfig) -> Topology:
    """``cpu`` and ``cpu_sockets/_cores/_threads`` checked with bhyve's rules (bhyve(8), bhyverun.c).

    bhyve defaults cores and threads to 1 and sockets to the vCPU count, then insists that
    sockets × cores × threads equals the vCPU count; so giving ``cpu_cores`` alone is an error there too.
    """
    source = config.path
    cpus = validate.cpu_count(source, "cpu", config.cpu)
    given = {k: config.get(f"cpu_{k}") for k in ("sockets", "cores", "threads")}
    numbers = {k: validate.integer(source, f"cpu_{k}", v, 1, MAX_VCPUS) for k, v in given.items() if v}
    sockets = numbers.get("sockets", cpus)
    product = sockets * numbers.get("cores", 1) * numbers.get("threads", 1)
    if product != cpus:
        key = next((f"cpu_{k}" for k in ("sockets", "cores", "threads") if k in numbers), "cpu")
        raise ConfigError(source, key, given.get(key[4:], config.cpu),
                          f"cpu={cpus} but sockets×cores×threads = {sockets}×{numbers.get('cores', 1)}×"
                          f"{numbers.get('threads', 1)} = {product} (sockets defaults to cpu, cores and "
                          "threads to 1)")
    return Topology(str(cpus), given["sockets"], given["cores"], given["threads"])


def pins(config: GuestConfig, cpus: int) -> list[tuple[int, int]]:
    """``cpu_pin`` pairs; pinning a vCPU the guest does not have is an error (bhyve ignores it silently)."""
    value = config.get("cpu_pin")
    result = []
    for pair in value.split():
        vcpu, _, host = pair.partition(":")
        if int(vcpu) >= cpus:
            raise ConfigError(config.path, "cpu_pin", value, f"vCPU {vcpu} does not exist (cpu={cpus}: 0-{cpus - 1})")
        if (int(vcpu), int(host)) in result:
            raise ConfigError(config.path, "cpu_pin", value, f"{pair} is listed twice")
        result.append((int(vcpu), int(host)))
    return result


@record
class Serial:
    """COM ports: what bhyve gets, what the console file says, and the loader's console."""

    com: list[tuple[str, str]] = field(default_factory=list)
    console: dict[str, str] = field(default_factory=dict)
    loader_console: str | None = None


def serial(config: GuestConfig, name: str, foreground: bool) -> Serial:
    """nmdm pairs ``/dev/nmdm-NAME.<i>A`` (bhyve's side) / ``B`` (the user's), vm-bhyve's names (nmdm(4)).

    In the foreground the first port is bhyve's stdio and the loader talks to the terminal too.
    """
    result = Serial()
    for number, port in enumerate(config.get("comports").split(), 1):
        if number == 1 and foreground:
            result.com.append((port, "stdio"))
            continue
        base = nmdm_base(name, number)
        if number == 1:
            result.loader_console = base + "A"
        result.com.append((port, base + "A"))
        result.console[port] = base + "B"
    return result


def raw_options(config: GuestConfig, key: str) -> list[str]:
    """``bhyve_options`` / ``bhyveload_args``: split like a shell would split words, but never run by one."""
    value = config.get(key)
    try:
        return shlex.split(value)
    except ValueError as error:
        raise ConfigError(config.path, key, value, f"cannot be split into words: {error}") from None
