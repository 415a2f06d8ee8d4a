"""The invocation as a bhyve command line, in vm-bhyve 1.8's final order (``lib/vm-run``).

``bhyve <devices> -c … -m … -AHPw [-l bootrom,…] [-l tpm,…] [-o lpc.fwcfg=…] [bhyve_options] [-S]
[-U uuid] [-u] [-p v:h…] [-Y] [install device] -l comN,… NAME``

Devices come first because bhyve applies ``-o`` settings to device nodes that must already exist (-s before
-o for any one device, vm-bhyve's Dec 2025 change). ``bhyve_options`` sit where vm-bhyve puts them, after the
built-in flags, so a later built-in still wins where vm-bhyve's would. hivectl's additions (TPM, fwcfg for
non-UEFI, vCPU pinning) go next to the options they belong with.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.model import Invocation, Opt, PciDevice
from hivectl.safety.values import bhyve_option_name, bhyve_token

NIC_EMULATIONS = ("virtio-net", "e1000")


def _opt(opt: Opt) -> str:
    """One ``name[=value]`` item, checked so that no value can split into a second option (hivectl/safety)."""
    bhyve_option_name(opt.name)
    return opt.name if opt.value is None else f"{opt.name}={bhyve_token(opt.value)}"


def _head(device: PciDevice, head: str) -> str:
    """The positional first token; only a NIC backend carries its own ``,type=tap`` option (built here)."""
    if device.emulation in NIC_EMULATIONS:
        for part in head.split(","):
            bhyve_token(part)
        return head
    return bhyve_token(head)


def device_conf(device: PciDevice) -> str:
    """The text after ``<emulation>,`` in ``-s``; empty when the device has no configuration.

    Every item goes through ``hivectl.safety.values``' bhyve rule here, where the string is built, so a
    value that slipped past the config checks still cannot add an option.
    """
    if device.emulation == "ahci":
        parts = []
        for port in device.ports:
            parts += [f"{port.type}:{bhyve_token(port.path)}", *(_opt(o) for o in port.opts)]
        return ",".join(parts)
    if device.emulation == "virtio-console":
        return ",".join(f"{bhyve_token(name)}={bhyve_token(path)}" for name, path in device.named)
    items = ([_head(device, device.head)] if device.head is not None else []) + [_opt(o) for o in device.opts]
    return ",".join(items)


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
        argv += ["-l", f"tpm,{bhyve_token(inv.tpm[0])},{bhyve_token(inv.tpm[1])}"]
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
