#!/usr/bin/env python3
"""Launch -> ready-line time of the tiny guest under QEMU/TCG: PVH direct boot and disk (SeaBIOS) boot.

A plain script, not a test: boot times depend on the machine and its load, so they are reported, not
asserted. Also reports how long the ACPI power button takes to make QEMU exit.

    python3 benchmarks/bench_tinyguest_boot.py [--runs 3] [--cache DIR]

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyguest
from tinyguest.qemu import QEMU, Guest, base_args

NIC = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]


def one_boot(args: list[str], workdir: Path, name: str) -> tuple[float, float]:
    """Return (launch -> ready line, power button -> qemu exit) in seconds."""
    with Guest(args, log_dir=workdir, name=name) as g:
        ready = g.wait_ready(180)
        assert g.qmp is not None
        t0 = time.monotonic()
        g.qmp.execute("system_powerdown")
        g.wait_exit(30)
        return ready.seconds, time.monotonic() - t0


def summary(samples: list[tuple[float, float]]) -> dict[str, object]:
    ready = [round(s[0], 2) for s in samples]
    off = [round(s[1], 2) for s in samples]
    return {
        "ready_s": ready,
        "ready_median_s": round(statistics.median(ready), 2),
        "powerdown_s": off,
        "powerdown_median_s": round(statistics.median(off), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=None, help="tinyguest cache directory")
    opts = ap.parse_args()

    t0 = time.monotonic()
    art = tinyguest.build(opts.cache)
    build_s = time.monotonic() - t0
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        work = Path(tmp)
        pvh = [*base_args(), "-kernel", str(art.vmlinux), "-initrd", str(art.initramfs),
               "-append", f"{tinyguest.BASE_CMDLINE} hivectl.ip=10.0.2.15/24", *NIC]  # fmt: skip
        samples = []
        for i in range(opts.runs):
            samples.append(one_boot(pvh, work, f"pvh{i}"))
            print(f"pvh run {i + 1}: ready {samples[-1][0]:.2f} s", file=sys.stderr)
        results["pvh_direct"] = summary(samples)

        samples = []
        for i in range(opts.runs):
            overlay = work / f"disk{i}.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(art.disk_image), "-F", "raw",
                            str(overlay)], check=True)  # fmt: skip
            disk = [*base_args(), "-drive", f"file={overlay},format=qcow2,if=none,id=d0",
                    "-device", "virtio-blk-pci,drive=d0,bootindex=0", *NIC]  # fmt: skip
            samples.append(one_boot(disk, work, f"disk{i}"))
            print(f"disk (BIOS) run {i + 1}: ready {samples[-1][0]:.2f} s", file=sys.stderr)
        results["disk_bios"] = summary(samples)

    qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(json.dumps({
        "host": platform.node(),
        "qemu": qemu_version,
        "accel": "tcg",
        "memory_mib": 256,
        "kernel": art.kernel_package + " " + art.kernel_version,
        "build_or_cache_s": round(build_s, 2),
        "runs": opts.runs,
        "results": results,
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
