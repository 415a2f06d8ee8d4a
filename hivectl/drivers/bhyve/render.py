"""The invocation as a bhyve command line, in vm-bhyve 1.8's final order (vm-bhyve.md §3.2).

``bhyve <devices> -c … -m … -AHPw [-l bootrom,…] [-l tpm,…] [-o lpc.fwcfg=…] [bhyve_options] [-S]
[-U uuid] [-u] [-p v:h…] [-Y] [install device] -l comN,… NAME``

Devices come first because bhyve applies ``-o`` settings to device nodes that must already exist (-s before
-o for any one device, vm-bhyve's Dec 2025 change). ``bhyve_options`` sit where vm-bhyve puts them, after the
built-in flags, so a later built-in still wins where vm-bhyve's would. hivectl's additions (TPM, fwcfg for
non-UEFI, vCPU pinning) go next to the options they belong with.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.model import Invocation, PciDevice


def device_conf(device: PciDevice) -> str:
    """The text after ``<emulation>,`` in ``-s``; empty when the device has no configuration."""
    if device.emulation == "ahci":
        parts = []
        for port in device.ports:
            parts += [f"{port.type}:{port.path}", *(o.text() for o in port.opts)]
        return ",".join(parts)
    if device.emulation == "virtio-console":
        return ",".join(f"{name}={path}" for name, path in device.named)
    items = ([device.head] if device.head is not None else []) + [o.text() for o in device.opts]
    return ",".join(items)


def slot_arg(device: PciDevice) -> str:
    conf = device_conf(device)
    text = f"{device.placement.spelling},{device.emulation}"
    return f"{text},{conf}" if conf else text


def bootrom_arg(inv: Invocation) -> str:
    """``bootrom,<firmware>[,<vars>][,fwcfg=…]`` (a token with ``=`` after the ROM is an lpc option)."""
    parts = ["bootrom", inv.bootrom or ""]
    if inv.bootvars:
        parts.append(inv.bootvars)
    if inv.fwcfg:
        parts.append(f"fwcfg={inv.fwcfg}")
    return ",".join(parts)


def options(inv: Invocation) -> list[str]:
    """Everything between the devices and the install device."""
    argv = ["-c", inv.topology.text(), "-m", inv.memory, "-AHPw" + ("w" if inv.ignore_msr else "")]
    if inv.bootrom:
        argv += ["-l", bootrom_arg(inv)]
    if inv.tpm:
        argv += ["-l", f"tpm,{inv.tpm[0]},{inv.tpm[1]}"]
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
        result += ["-l", f"{port},{path}"]
    result.append(inv.name)
    return result
