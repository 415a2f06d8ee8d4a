"""NICs: ``networkN_*`` on the taps the network layer already created.

The network layer (``hivectl/net``) creates each tap and attaches it to its bridge before the boot and
hands over a ``Port`` per NIC; QEMU only opens the tap by name (``script=no,downscript=no``: QEMU never
runs helper scripts as root). ``vhost=on`` is never used: hosts without ``/dev/vhost-net`` make QEMU abort.

A NIC without a port gets no device, as a bhyve guest whose tap could not be made. A port whose backend is
``user`` (and no tap) gives QEMU's user-mode network instead; tests use it to reach a guest without root
networking. The MAC is ``networkN_mac``; when it is missing (the supervisor normally generates and saves
one before the boot) a stable one is derived from the guest name and NIC index in bhyve's OUI 58:9c:fc,
so a guest never changes MAC between boots. NIC option ROMs are left out (``romfile=``): bhyve has no PXE
ROM either, and without it firmware does not try network boot before the disks.
"""

from __future__ import annotations

from hivectl import validate
from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import Props, join
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig, Nic
from hivectl.net.ports import Port

MODELS = {"virtio-net": "virtio-net-pci", "e1000": "e1000"}
USER_BACKEND = "user"


def derived_mac(guest: str, index: int) -> str:
    """A stable MAC in bhyve's OUI for a NIC that has none configured."""
    import hashlib  # with OpenSSL's module: only for a guest with such a NIC

    digest = hashlib.sha256(f"{guest}/network{index}".encode()).digest()
    return "58:9c:fc:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x0F, digest[1], digest[2]))


def nic_devices(config: GuestConfig, ports: list[Port], problems: list[ConfigError]) -> list[PciDevice]:
    by_index = {port.index: port for port in ports}
    devices: list[PciDevice] = []
    for nic in config.nics:
        port = by_index.get(nic.index)
        if port is None:
            continue
        try:
            devices.append(_nic(config, nic, port))
        except ConfigError as error:
            problems.append(error)
    return devices


def _nic(config: GuestConfig, nic: Nic, port: Port) -> PciDevice:
    source = config.path
    model = MODELS.get(nic.type)
    if model is None:
        raise ConfigError(source, f"{nic.key}_type", nic.type, "expected virtio-net or e1000")
    netdev = f"net{nic.index}"
    if port.backend == USER_BACKEND and not port.ifname:
        backend = join("user", [("id", netdev)])
    else:
        backend = join("tap", [("id", netdev), ("ifname", port.ifname), ("script", "no"), ("downscript", "no")])
    mac = validate.mac(source, f"{nic.key}_mac", nic.mac) if nic.mac else derived_mac(config.name, nic.index)
    props: Props = [("netdev", netdev), ("mac", mac)]
    mtu = port.mtu or (validate.mtu(source, f"{nic.key}_mtu", nic.mtu) if nic.mtu else None)
    if mtu and model == "virtio-net-pci":
        props.append(("host_mtu", str(mtu)))
    props.append(("romfile", ""))
    return PciDevice(nic.key, model, props, nic.slot, f"{nic.key}_slot", before=["-netdev", backend])


class Nics(QemuDeviceKind):
    name = "nic"
    slot_order = 20

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        return nic_devices(ctx.request.config, ctx.request.ports, ctx.problems)


KIND = Nics()
