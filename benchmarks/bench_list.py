"""Benchmark: ``hivectl list`` over a vm_dir of 1,000 stopped guests.

Target (README, issue 2): well under a second; our own goal is 0.15 s including interpreter start-up.
vm-bhyve needs about 6 s for 500 guests because it forks ~10 processes per guest. Run:

    python3 benchmarks/bench_list.py [--guests 1000] [--runs 7]

Prints a JSON object with the timings; exits 1 if the median misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = """\
loader="bhyveload"
cpu={cpu}
memory=1G
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:0{a:x}:{b:02x}:{c:02x}"
disk0_type="virtio-blk"
disk0_name="disk0.img"
uuid="00000000-0000-4000-8000-{n:012d}"
"""


def populate(root: Path, count: int) -> None:
    (root / ".config").mkdir(parents=True)
    (root / ".config" / "system.conf").write_text("")
    for n in range(count):
        name = f"guest{n:04d}"
        (root / name).mkdir()
        (root / name / f"{name}.conf").write_text(
            TEMPLATE.format(cpu=1 + n % 4, a=n >> 16 & 0xF, b=n >> 8 & 0xFF, c=n & 0xFF, n=n))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "vm"
        populate(root, args.guests)
        rc = Path(tmp) / "rc.conf"
        rc.write_text('vm_list="guest0001 guest0500"\n')
        env = {**os.environ, "HIVECTL_VM_DIR": str(root), "HIVECTL_RC_CONF": str(rc), "HIVECTL_PLATFORM": "linux"}
        results = {}
        for mode in (["list"], ["list", "--json"]):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "hivectl", *mode], env=env, capture_output=True,
                                      check=True)
                times.append(time.perf_counter() - start)
            lines = done.stdout.count(b"\n")
            results[" ".join(mode)] = {"median_s": round(statistics.median(times), 4),
                                       "min_s": round(min(times), 4), "output_lines": lines}
        startup = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            startup.append(time.perf_counter() - start)
        results["python_startup_median_s"] = round(statistics.median(startup), 4)  # type: ignore[assignment]
    median = results["list"]["median_s"]
    verdict = {"guests": args.guests, "target_s": args.target, "met": median <= args.target, **results}
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
