"""The invocation as a bhyve command line, in vm-bhyve 1.8's final order (``lib/vm-run``).

``bhyve <devices> -c … -m … -AHPw [-l bootrom,…] [-l tpm,…] [-o lpc.fwcfg=…] [bhyve_options] [-S]
[-U uuid] [-u] [-p v:h…] [-Y] [install device] -l comN,… NAME``

Devices come first because bhyve applies ``-o`` settings to device nodes that must already exist (-s before
-o for any one device, vm-bhyve's Dec 2025 change). ``bhyve_options`` sit where vm-bhyve puts them, after the
built-in flags, so a later built-in still wins where vm-bhyve's would. hivectl's additions (TPM, fwcfg for
non-UEFI, vCPU pinning) go next to the options they belong with.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices import tpm
from hivectl.drivers.bhyve.devices.registry import kind_of
from hivectl.drivers.bhyve.model import Invocation, PciDevice
from hivectl.safety.values import bhyve_token


def device_conf(device: PciDevice) -> str:
    """The text after ``<emulation>,`` in ``-s``, as the device's kind spells it (hivectl/drivers/bhyve/devices/)."""
    return kind_of(device).conf(device)


def slot_arg(device: PciDevice) -> str:
    conf = device_conf(device)
    text = f"{device.placement.spelling},{device.emulation}"
    return f"{text},{conf}" if conf else text


def bootrom_arg(inv: Invocation) -> str:
    """``bootrom,<firmware>[,<vars>][,fwcfg=…]`` (a token with ``=`` after the ROM is an lpc option)."""
    parts = ["bootrom", bhyve_token(inv.bootrom or "")]
    if inv.bootvars:
        parts.append(bhyve_token(inv.bootvars))
    if inv.fwcfg:
        parts.append(f"fwcfg={bhyve_token(inv.fwcfg)}")
    return ",".join(parts)


def options(inv: Invocation) -> list[str]:
    """Everything between the devices and the install device."""
    argv = ["-c", inv.topology.text(), "-m", inv.memory, "-AHPw" + ("w" if inv.ignore_msr else "")]
    if inv.bootrom:
        argv += ["-l", bootrom_arg(inv)]
    if inv.tpm:
        argv += tpm.argv(inv.tpm)
    if inv.fwcfg and not inv.bootrom:
        argv += ["-o", f"lpc.fwcfg={inv.fwcfg}"]
    argv += inv.raw
    if inv.wired:
        argv.append("-S")
    if inv.uuid:
        argv += ["-U", inv.uuid]
    if inv.utc:
        argv.append("-u")
    for vcpu, host in inv.pins:
        argv += ["-p", f"{vcpu}:{host}"]
    if inv.no_mptable:
        argv.append("-Y")
    return argv


def argv(inv: Invocation) -> list[str]:
    """The full command line; refuses to print a secret (the caller must use a ``-k`` file then)."""
    if inv.has_secret:
        raise ValueError("this invocation carries a secret and must be given to bhyve as a -k file")
    result = ["bhyve"]
    for device in inv.devices:
        result += ["-s", slot_arg(device)]
    result += options(inv)
    if inv.install is not None:
        result += ["-s", slot_arg(inv.install)]
    for port, path in inv.com:
        result += ["-l", f"{bhyve_token(port)},{bhyve_token(path)}"]
    result.append(inv.name)
    return result
