"""``acpidump -t`` (acpidump(8)): the headers of the firmware's ACPI tables, from the state.

hivectl (like vm-bhyve's ``util::check_bhyve_iommu``) looks for a ``DMAR`` table to tell whether an Intel
host has VT-d for passthru. The state lists the table signatures (``acpi_tables``; a test removes ``DMAR``
to describe a host without VT-d); each is printed as acpidump prints a table header, a C comment with
``  SIG: Length=..., Revision=..., Checksum=...,`` and the OEM lines. acpidump needs ``-t`` or ``-d``.
"""

from __future__ import annotations

import sys

from . import state
from .common import Getopt, GetoptError, run, warn

PROG = "acpidump"
DEFAULT_TABLES = ["FACP", "APIC", "HPET", "MCFG", "DMAR"]
_LENGTHS = {"FACP": 276, "APIC": 188, "HPET": 56, "MCFG": 60, "DMAR": 168, "SSDT": 1152}


def _usage() -> int:
    print("usage: acpidump [-d] [-t] [-h] [-v] [-f dsdt_input] [-o dsdt_file]", file=sys.stderr)
    print("\t-d\tDisassemble the DSDT into ASL using iasl(8)", file=sys.stderr)
    print("\t-t\tDump ACPI table headers", file=sys.stderr)
    return 1


def _header(index: int, signature: str) -> str:
    length = _LENGTHS.get(signature, 64)
    return ("/*\n"
            f"  {signature}: Length={length}, Revision=1, Checksum={(index * 37 + length) % 256},\n"
            "\tOEMID=SIMHST, OEM Table ID=SIMBOARD, OEM Revision=0x1,\n"
            "\tCreator ID=INTL, Creator Revision=0x20200925\n"
            " */")


def main(args: list[str]) -> int:
    """``acpidump -t``: the RSD PTR, the XSDT and one header per table of the state."""
    parser = Getopt(args, "dhtvf:o:")
    opts: set[str] = set()
    try:
        for opt, _val in parser:
            opts.add(opt)
    except GetoptError as exc:
        warn(PROG, str(exc))
        return _usage()
    if parser.operands or "h" in opts or not opts & {"d", "t"}:
        return _usage()
    if "d" in opts:
        warn(PROG, "iasl: No such file or directory")
        return 1
    tables = list(state.load().get("acpi_tables", DEFAULT_TABLES))
    print("/*\n  RSD PTR: OEM=SIMHST, ACPI_Rev=2.0x (2)\n\tXSDT=0x7bfea0e8, length=36, cksum=107\n */")
    entries = ", ".join(f"0x{0x7BFE0000 + 0x1000 * i:08x}" for i in range(len(tables)))
    print(f"/*\n  XSDT: Length={36 + 8 * len(tables)}, Revision=1, Checksum=229,\n"
          "\tOEMID=SIMHST, OEM Table ID=SIMBOARD, OEM Revision=0x1,\n"
          f"\tCreator ID=AMI, Creator Revision=0x10013\n\tEntries={{ {entries} }}\n */")
    for index, signature in enumerate(tables):
        print(_header(index, signature))
    return 0


def acpidump_main() -> int:
    """Entry point of ``bin/acpidump``."""
    return run(main)
