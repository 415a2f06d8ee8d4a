"""Benchmark: what ``hivectl start`` costs before QEMU runs, and boot-to-ready of the tiny guest (TCG).

Three numbers per run:
- ``overhead_s``: from invoking ``hivectl start`` to the moment the kernel started the QEMU process
  (its start time from /proc/PID/stat): CLI start-up, config, preflight, ports, planning, supervisor spawn;
- ``start_returns_s``: until ``hivectl start`` returned (it waits until QEMU survived its own checks);
- ``ready_s``: until the guest printed its ready line on the serial console (direct-kernel PVH boot).

    python3 benchmarks/bench_start.py [--runs 3]

Prints JSON. The guest has no NIC so that no network namespace is needed.
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


def process_start(pid: int) -> float:
    """When ``pid`` started, in seconds since boot (clock ticks, 10 ms resolution): comparable between
    processes without trusting the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import tinyguest
    from tinyguest.templates import hivectl_template

    art = tinyguest.build()
    with tempfile.TemporaryDirectory(prefix="hvbench.") as tmp:
        vm_dir = Path(tmp) / "vm"
        vm_dir.mkdir()
        rc = Path(tmp) / "rc.conf"
        rc.write_text("")
        env = {**os.environ, "HIVECTL_VM_DIR": str(vm_dir), "HIVECTL_RC_CONF": str(rc),
               "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg"}

        def hivectl(*argv: str) -> str:
            return subprocess.run([sys.executable, "-m", "hivectl", *argv], env=env, check=True,
                                  capture_output=True, text=True).stdout

        hivectl("init")
        (vm_dir / ".templates" / "bench.conf").write_text(hivectl_template(art, switch=None, disk_size="64M"))
        hivectl("create", "-t", "bench", "b1")
        runs = []
        for _ in range(args.runs):
            log = vm_dir / "b1" / "console.log"
            mark = log.stat().st_size if log.exists() else 0
            started = time.time()
            proc = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "b1"], env=env,
                                    stdout=subprocess.DEVNULL)
            cli_started = process_start(proc.pid)
            if proc.wait() != 0:
                raise SystemExit("hivectl start failed")
            returned = time.time()
            pid = json.loads(hivectl("list", "--json"))[0]["pid"]
            overhead = process_start(pid) - cli_started
            while b"HIVECTL-GUEST-READY" not in log.read_bytes()[mark:]:
                if time.time() - started > 120:
                    raise SystemExit("the guest did not become ready within 120 s")
                time.sleep(0.05)
            ready = time.time()
            hivectl("stop", "--timeout", "30", "b1")
            runs.append({"overhead_s": round(overhead, 3), "start_returns_s": round(returned - started, 3),
                         "ready_s": round(ready - started, 3)})
        plan_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            hivectl("start", "--dry-run", "b1")
            plan_times.append(time.perf_counter() - t0)
    result = {
        "accelerator": "tcg",
        "runs": runs,
        "median_overhead_s": statistics.median(r["overhead_s"] for r in runs),
        "median_ready_s": statistics.median(r["ready_s"] for r in runs),
        "dry_run_plan_median_s": round(statistics.median(plan_times), 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
