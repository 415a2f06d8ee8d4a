"""Benchmark: what supervising running guests costs in memory, per guest, on the simulated FreeBSD host.

Starts ``--guests`` guests (default 50) with ``hivectl start`` on a fresh simulated host (tests/simhost:
the bhyve stand-in plays the running guest), waits until every supervisor is in its waiting phase (the
lean waiter, ``hivectl/host/waiter.py``, shown by its command line; docs/architecture.md, "Supervision
memory"), then reads ``/proc/PID/smaps_rollup`` of every supervisor (the ``pid=`` line of each guest's
``run.lock``): what supervision costs while the guests run, which is nearly all of their lives. PSS
(proportional set size) divides each shared page by the number of processes mapping it, so the sum of
the supervisors' PSS is what they cost together; RSS counts shared pages in full for each. vm-bhyve's
own figure (its ``vm _run`` background shell, measured the same way under bash): 3.5 MiB PSS per guest.

    python3 benchmarks/bench_supervise_memory.py [--guests 50] [--parallel 4]

Prints JSON. Everything is stopped and the host removed at the end.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 1024.0
VM_BHYVE_PSS_MIB = 3.5


def rollup(pid: int) -> dict[str, int]:
    """``Rss``/``Pss``/``Private_*`` of one process, in KiB (Linux ``/proc/PID/smaps_rollup``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        fields[key.strip()] = int(rest.split()[0])
    return fields


def supervisor_pid(guest_dir: Path) -> int:
    for line in (guest_dir / "run.lock").read_text().splitlines():
        if line.startswith("pid="):
            return int(line[4:])
    raise SystemExit(f"{guest_dir}/run.lock names no supervisor")


def waiting(pid: int) -> bool:
    """Whether supervisor ``pid`` is the lean waiter now (its command line runs hivectl/host/waiter.py)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 3 and argv[3].endswith(b"/hivectl/host/waiter.py")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=1, help="concurrent hivectl runs (1: see README)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.simhost.fixture import BIN_DIR, create_host

    with tempfile.TemporaryDirectory(prefix="hvmem.") as tmp:
        root = Path(tmp) / "simhost"
        create_host(root, ncpu=64)
        vm_dir = Path(tmp) / "vm"
        vm_dir.mkdir()
        rc = Path(tmp) / "rc.conf"
        rc.write_text("")
        env = {**os.environ, "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
               "SIMHOST_ROOT": str(root), "HIVECTL_HOST_ROOT": str(root), "HIVECTL_PLATFORM": "freebsd",
               "HIVECTL_DRIVER": "bhyve", "HIVECTL_VM_DIR": str(vm_dir), "HIVECTL_RC_CONF": str(rc),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

        def hivectl(*argv: str) -> str:
            done = subprocess.run([sys.executable, "-m", "hivectl", *argv], env=env, capture_output=True,
                                  text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"hivectl {' '.join(argv)}: {done.stderr.strip()}")
            return done.stdout

        hivectl("init")
        hivectl("switch", "create", "public")
        names = [f"m{i}" for i in range(args.guests)]
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(lambda n: hivectl("create", "-s", "64M", n), names))
            started = time.monotonic()
            list(pool.map(lambda n: hivectl("start", n), names))
            start_s = time.monotonic() - started
        try:
            pids = [supervisor_pid(vm_dir / n) for n in names]
            deadline = time.monotonic() + 60
            while sum(waiting(pid) for pid in pids) < len(pids) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # and settled there
            lean = sum(waiting(pid) for pid in pids)
            rows = [rollup(pid) for pid in pids]
        finally:
            with ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda n: hivectl("poweroff", "-f", n), names))
    pss = [r["Pss"] / MIB for r in rows]
    rss = [r["Rss"] / MIB for r in rows]
    private = [(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / MIB for r in rows]
    result = {
        "guests": args.guests,
        "supervisors_waiting_lean": lean,
        "pss_per_guest_mib": round(sum(pss) / len(pss), 2),
        "rss_per_guest_mib": round(statistics.mean(rss), 2),
        "private_per_guest_mib": round(statistics.mean(private), 2),
        "pss_total_mib": round(sum(pss), 1),
        "pss_max_mib": round(max(pss), 2),
        "vm_bhyve_pss_per_guest_mib": VM_BHYVE_PSS_MIB,
        "within_target": sum(pss) / len(pss) <= VM_BHYVE_PSS_MIB,
        "start_all_s": round(start_s, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
