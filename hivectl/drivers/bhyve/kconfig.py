"""The invocation as a bhyve_config(5) file for ``bhyve -k`` (usr.sbin/bhyve/config.c).

Why a file: bhyve has no other way to take a VNC password than the fbuf option string, and anything in
argv is readable by every local user through ``ps``. The file is written 0600 into the guest directory
and removed after the run. It holds the whole plan (not just the password) so that argv and file can
never disagree about a device; the file is also what ``bhyve -o config.dump=1`` would print for the
equivalent command line, which makes it easy to compare.

Each ``-s B:S:F,<emulation>,<conf>`` becomes ``pci.B.S.F.device=<canonical name>`` plus one key per option,
named the way each device's own option parser names them; flags become their documented keys
(``-H`` → ``x86.vmexit_on_hlt``). Values are escaped for bhyve's ``%(...)`` and ``\\`` expansion.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.model import Invocation, Opt, PciDevice
from hivectl.safety.values import bhyve_config_key, bhyve_config_value

Pairs = list[tuple[str, str]]


def _opt_pairs(prefix: str, opts: tuple[Opt, ...]) -> Pairs:
    return [(f"{prefix}.{o.name}", "true" if o.value is None else o.value) for o in opts]


def _generic(prefix: str, text: str) -> Pairs:
    """Options written ``a=b,c`` inside a head token (a NIC backend's ``type=tap``, netgraph's ``path=``)."""
    pairs: Pairs = []
    for item in text.split(","):
        name, sep, value = item.partition("=")
        pairs.append((f"{prefix}.{name}", value if sep else "true"))
    return pairs


def device_pairs(device: PciDevice) -> Pairs:
    """The ``pci.B.S.F.*`` keys of one device."""
    addr = device.placement.addr
    node = f"pci.{addr.bus}.{addr.slot}.{addr.func}"
    emulation = device.emulation
    head = device.head or ""
    if emulation == "amd_hostbridge":
        return [(f"{node}.device", "hostbridge"), (f"{node}.pcireg.vendor", "0x1022"),
                (f"{node}.pcireg.device", "0x7432")]
    if emulation in ("ahci-hd", "ahci-cd"):
        port = f"{node}.port.0"
        return [(f"{node}.device", "ahci"), (f"{port}.type", emulation[-2:]), (f"{port}.path", head),
                *_opt_pairs(port, device.opts)]
    pairs: Pairs = [(f"{node}.device", emulation)]
    if emulation == "ahci":
        for index, ahci_port in enumerate(device.ports):
            port = f"{node}.port.{index}"
            pairs += [(f"{port}.type", ahci_port.type), (f"{port}.path", ahci_port.path),
                      *_opt_pairs(port, ahci_port.opts)]
        return pairs
    if emulation == "virtio-console":
        for index, (name, path) in enumerate(device.named):
            pairs += [(f"{node}.port.{index}.name", name), (f"{node}.port.{index}.path", path)]
        return pairs
    if emulation in ("virtio-blk", "nvme"):
        pairs.append((f"{node}.path", head))
    elif emulation == "virtio-scsi":
        pairs.append((f"{node}.dev", head))
    elif emulation == "virtio-9p":
        share, _, path = head.partition("=")
        pairs += [(f"{node}.sharename", share), (f"{node}.path", path)]
    elif emulation in ("virtio-net", "e1000"):
        backend, _, rest = head.partition(",")
        pairs.append((f"{node}.backend", backend))
        if rest:
            pairs += _generic(node, rest)
    elif emulation == "passthru":
        bus, slot, func = head.split("/")
        pairs += [(f"{node}.bus", bus), (f"{node}.slot", slot), (f"{node}.func", func)]
    elif emulation == "xhci":
        pairs.append((f"{node}.slot.1.device", head))
    return pairs + _opt_pairs(node, device.opts)


def pairs(inv: Invocation) -> Pairs:
    """Every key of the invocation in command-line order."""
    result: Pairs = []
    for device in inv.devices:
        result += device_pairs(device)
    topo = inv.topology
    result.append(("cpus", topo.cpus))
    result += [(k, v) for k, v in (("sockets", topo.sockets), ("cores", topo.cores), ("threads", topo.threads)) if v]
    result += [("memory.size", inv.memory), ("x86.vmexit_on_hlt", "true"), ("x86.vmexit_on_pause", "true"),
               ("x86.strictmsr", "false")]
    if inv.bootrom:
        result.append(("lpc.bootrom", inv.bootrom))
        if inv.bootvars:
            result.append(("lpc.bootvars", inv.bootvars))
    if inv.fwcfg:
        result.append(("lpc.fwcfg", inv.fwcfg))
    if inv.tpm:
        result += [("tpm.type", inv.tpm[0]), ("tpm.path", inv.tpm[1])]
    if inv.wired:
        result.append(("memory.wired", "true"))
    if inv.uuid:
        result.append(("uuid", inv.uuid))
    if inv.utc:
        result.append(("rtc.use_localtime", "false"))
    cpusets: dict[int, list[str]] = {}
    for vcpu, host in inv.pins:
        cpusets.setdefault(vcpu, []).append(str(host))
    result += [(f"vcpu.{vcpu}.cpuset", ",".join(hosts)) for vcpu, hosts in cpusets.items()]
    if inv.no_mptable:
        result.append(("x86.mptable", "false"))
    if inv.install is not None:
        result += device_pairs(inv.install)
    result += [(f"lpc.{port}.path", path) for port, path in inv.com]
    result.append(("name", inv.name))
    return result


def text(inv: Invocation) -> str:
    """The file's content: a comment line, then ``key=value`` lines (bhyve trims nothing, so neither do we)."""
    lines = [f"# bhyve_config(5) for guest {inv.name}, generated by hivectl for one boot; edits are lost"]
    # One rule for the -k syntax (hivectl/safety/values.py): keys checked, values one line with \\ and %
    # escaped; a NIC backend's own options are split out above, so no value can add a key.
    lines += [f"{bhyve_config_key(key)}={bhyve_config_value(value)}" for key, value in pairs(inv)]
    return "\n".join(lines) + "\n"


def argv(inv: Invocation, path: str) -> list[str]:
    """``bhyve -k <file> [bhyve_options] NAME``: raw options cannot be expressed as keys, so they stay in argv,
    after the file, where (as in vm-bhyve's order) they can still override what hivectl set."""
    return ["bhyve", "-k", path, *inv.raw, inv.name]
