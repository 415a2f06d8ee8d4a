"""``passthruN`` (``bus/slot/function[=S:F]``): ``vfio-pci,host=0000:BB:SS.F`` (the device must be bound to
vfio-pci); ``passthruN_options`` knows ``rom=FILE`` and ``bootindex=N``."""

from __future__ import annotations

from hivectl import validate
from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import Props
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.patterns import Pattern

_PASSTHRU = Pattern(r"([0-9]{1,3})/([0-9]{1,2})/([0-7])(?:=([0-9]{1,2}(?::[0-7])?))?")


class Passthru(QemuDeviceKind):
    name = "passthru"
    slot_order = 40

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        config, problems = ctx.request.config, ctx.problems
        devices: list[PciDevice] = []
        index = 0
        while value := config.get(f"passthru{index}"):
            key = f"passthru{index}"
            match = _PASSTHRU.fullmatch(value)
            if not match:
                problems.append(ConfigError(config.path, key, value, "expected bus/slot/function like 2/0/0[=S:F]"))
                index += 1
                continue
            bus, slot, function, pin = int(match[1]), int(match[2]), int(match[3]), match[4] or ""
            props: Props = [("host", f"0000:{bus:02x}:{slot:02x}.{function:x}")]
            options = config.get(f"{key}_options")
            for item in filter(None, options.split(",")):
                name, _, text = item.partition("=")
                if name == "rom" and text:
                    props.append(("romfile", text))
                elif name == "bootindex" and text:
                    props.append(("bootindex", str(validate.integer(config.path, f"{key}_options", text, 0, 65535))))
                else:
                    problems.append(ConfigError(config.path, f"{key}_options", options,
                                                f"unknown passthru option {item!r} (known: rom=FILE, bootindex=N)"))
            devices.append(PciDevice(key, "vfio-pci", props, pin, key))
            index += 1
        return devices


KIND = Passthru()
