"""When two bhyve command lines run the same guest: their keys compared after the documented normalisations.

Both lines are read into bhyve_config(5) keys (``tree``), so the order of ``-s`` options, the order of the
options inside one ``-s``, ``ahci-hd,P`` against ``ahci,hd:P``, ``-c 4`` against ``-c cpus=4`` and flags
grouped or not make no difference, as they make none to bhyve. What hivectl does differently on purpose
is normalised on both sides before comparing; each rule is one line of docs/import.md:

1. hivectl always passes ``-H -P -w`` (vm-bhyve's ``lib/vm-run``): the imported line gets them too;
2. the CPU topology is compared as bhyve computes it (``-c 4`` is 4 sockets of 1 core of 1 thread);
3. COM ports are compared by name only: hivectl puts them on its own nmdm pairs;
4. virtio-console sockets and the UEFI variable store live in the guest's directory;
5. the packaged UEFI firmware has several names (uefi-firmware/ and edk2-bhyve/, BHYVE_UEFI.fd and
   BHYVE_UEFI_CODE.fd): they are one file;
6. ``rfb=`` and ``tcp=`` of the frame buffer are one setting, a bare port listens on 127.0.0.1, none on
   127.0.0.1:5900 (pci_fbuf.c's defaults);
7. keys the import adds on purpose (``Converted.added``: a generated uuid, the MAC bhyve derived) are added
   to the imported line, and so are ``-Y`` when a device sits past bus 0, ``-S`` with passthru, an LPC
   bridge at 0:31:0 when there was none, and com1 when no COM port was given;
8. relative paths are made absolute (bhyve opens them from its working directory);
9. ``mtu=`` on an e1000 NIC and ``tpm.version=2.0`` are dropped (bhyve ignores the one, defaults the other);
10. the VM name is the guest's name.
"""

from __future__ import annotations

import re
from pathlib import Path

from hivectl.importer.convert import ALWAYS, FIRMWARE_DIR, FIRMWARE_LOADERS

MASKED = "(hivectl's own)"
_PATHS = re.compile(r"pci\.[0-9]+\.[0-9]+\.[0-9]+\.(?:path|dev|port\.[0-9]+\.path)")


def _topology(values: dict[str, str]) -> None:
    numbers = {k: int(values.pop(k)) for k in ("cpus", "sockets", "cores", "threads")
               if k in values and values[k].isdigit()}
    cores, threads = numbers.get("cores", 1), numbers.get("threads", 1)
    sockets = numbers.get("sockets", numbers.get("cpus", 1) if "cpus" in numbers else 1)
    cpus = numbers.get("cpus", sockets * cores * threads)
    values.update(cpus=str(cpus), sockets=str(sockets), cores=str(cores), threads=str(threads))


def _device_of(values: dict[str, str], key: str) -> str:
    node = ".".join(key.split(".")[:4])
    return values.get(f"{node}.device", "")


def canonical(values: dict[str, str], base: Path | None = None) -> dict[str, str]:
    """``values`` (one command line's keys) with the rules of the module docstring applied."""
    out = dict(values)
    for key in ("bootrom", "bootvars"):  # bhyve 15's names for the 14.x lpc.* keys (bhyve(8))
        if key in out:
            out[f"lpc.{key}"] = out.pop(key)
    if base is not None:
        for key, value in list(out.items()):
            if (_PATHS.fullmatch(key) or key == "lpc.bootrom") and value and not value.startswith("/") \
                    and _device_of(out, key) != "virtio-console":
                out[key] = str(base / value)
    _topology(out)
    for key in list(out):
        device = _device_of(out, key) if key.startswith("pci.") else ""
        if re.fullmatch(r"lpc\.com[1-4]\.path", key) or key == "lpc.bootvars" or \
                (device == "virtio-console" and key.endswith(".path")):
            out[key] = MASKED
        elif device == "e1000" and key.endswith(".mtu"):
            del out[key]
        elif device == "fbuf" and key.endswith(".rfb"):
            out[key[:-len("rfb")] + "tcp"] = out.pop(key)
    for node in {".".join(k.split(".")[:4]) for k in out if k.startswith("pci.")}:
        if out.get(f"{node}.device") == "fbuf":
            address = out.get(f"{node}.tcp", "5900")
            out[f"{node}.tcp"] = f"127.0.0.1:{address}" if address.isdigit() else address
    if out.get("lpc.bootrom") in FIRMWARE_LOADERS:
        loader = FIRMWARE_LOADERS[out["lpc.bootrom"]]
        out["lpc.bootrom"] = next(p for p, name in FIRMWARE_LOADERS.items() if name == loader
                                  and p.startswith(FIRMWARE_DIR))
    if out.get("tpm.version") == "2.0":
        del out["tpm.version"]
    return out


def imported(values: dict[str, str], added: dict[str, str], guest: str, base: Path) -> dict[str, str]:
    """The imported line's keys as hivectl will run them (rules 1, 7, 8 and 10 of the module docstring)."""
    out = dict(values)
    for key, value in ALWAYS.items():
        out.setdefault(key, value)
    out.update(added)
    out["name"] = guest
    devices = {".".join(k.split(".")[:4]): v for k, v in out.items() if k.startswith("pci.") and k.endswith(".device")}
    if any(node.split(".")[1] != "0" for node in devices):
        out["x86.mptable"] = "false"
    if "passthru" in devices.values():
        out["memory.wired"] = "true"
    if "lpc" not in devices.values():
        out["pci.0.31.0.device"] = "lpc"
    if not any(re.fullmatch(r"lpc\.com[1-4]\.path", k) for k in out):
        out["lpc.com1.path"] = MASKED
    return canonical(out, base)


def differences(wanted: dict[str, str], planned: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(key, the imported line's value, hivectl's value) for every key where they differ, sorted."""
    return [(k, wanted.get(k), planned.get(k)) for k in sorted(set(wanted) | set(planned))
            if wanted.get(k) != planned.get(k)]
