"""Benchmark: ``hivectl list`` over a vm_dir of 1,000 (and 500) stopped guests, interpreter start-up included.

Targets (issue 9.7): 1,000 guests in under 0.06 s on an idle machine, and 500 guests at least 100 times
faster than vm-bhyve's ``vm list`` (5.6 s for 500 measured for issue 9: it forks ~10 processes per guest).
Two ways of starting hivectl are timed side by side: ``bin/hivectl`` (the launcher, ``python3 -S``: no
``site``/.pth processing) and ``python3 -m hivectl`` (what the pip console script costs: ``site`` runs every
installed package's .pth file first). Bytecode is compiled first so that no run pays for compiling. Run:

    python3 benchmarks/bench_list.py [--guests 1000] [--runs 7]

Prints a JSON object with the timings; exits 1 if the launcher's median misses the target. Next to the
wall-clock times it prints the work, which does not depend on the machine's load: CPU time (user + system
of the child, from its rusage), the number of modules imported (``-X importtime``) and, when strace(1) is
installed, the system calls made (``strace -f -c``) and how many of them were stat/open/read calls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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


REPO = Path(__file__).resolve().parents[1]
VM_BHYVE_LIST_500_S = 5.6  # vm-bhyve's ``vm list`` over 500 guests (issue 9.7)


def median_time(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, int, float]:
    """(median, min) wall-clock seconds of ``argv``, its last output's line count, and its median CPU seconds.

    CPU time (user + system, from the children's rusage) is printed too because it moves far less than
    wall-clock time when other work shares the machine; the targets are wall-clock on an idle machine.
    """
    times = []
    cpu = []
    lines = 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        lines = done.stdout.count(b"\n")
    return round(statistics.median(times), 4), round(min(times), 4), lines, round(statistics.median(cpu), 4)


def imports(argv: list[str], env: dict[str, str]) -> int:
    """Modules ``argv`` imports (lines of the interpreter's import log)."""
    done = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
                          check=True)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("import time:"))


def syscalls(argv: list[str], env: dict[str, str]) -> dict[str, int] | None:
    """System calls ``argv`` makes, in total and per kind of interest (None without strace)."""
    if shutil.which("strace") is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, *argv], env=env, capture_output=True, check=True)
        counts: dict[str, int] = {}
        for line in out.read().splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():  # ... calls [errors] name
                counts[fields[-1]] = int(fields[3])
    kinds = ("openat", "read", "newfstatat", "access", "getdents64", "close", "mmap", "brk")
    return {"total": counts.get("total", sum(counts.values())), **{k: counts.get(k, 0) for k in kinds}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.06)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "hivectl")], check=True,
                   stdout=subprocess.DEVNULL)
    launcher = [sys.executable, "-S", str(REPO / "bin" / "hivectl")]
    console = [sys.executable, "-m", "hivectl"]
    results: dict[str, object] = {"load_average": os.getloadavg()[0]}
    for count in sorted({args.guests, 500}, reverse=True):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "vm"
            populate(root, count)
            rc = Path(tmp) / "rc.conf"
            rc.write_text('vm_list="guest0001 guest0400"\n')
            env = {**os.environ, "HIVECTL_VM_DIR": str(root), "HIVECTL_RC_CONF": str(rc),
                   "HIVECTL_PLATFORM": "linux", "PYTHONPATH": str(REPO)}
            for label, argv in (("bin/hivectl list", [*launcher, "list"]),
                                ("bin/hivectl list --json", [*launcher, "list", "--json"]),
                                ("python3 -m hivectl list", [*console, "list"])):
                median, least, lines, cpu = median_time(argv, env, args.runs)
                results[f"{count} guests: {label}"] = {"median_s": median, "min_s": least, "cpu_s": cpu,
                                                        "output_lines": lines}
            results[f"{count} guests: bin/hivectl list, modules imported"] = imports([*launcher, "list"], env)
            results[f"{count} guests: bin/hivectl list, system calls"] = syscalls([*launcher, "list"], env)
    for label, argv in (("python3 -S -c pass", [sys.executable, "-S", "-c", "pass"]),
                        ("python3 -c pass", [sys.executable, "-c", "pass"])):
        median, _, _, cpu = median_time(argv, dict(os.environ), args.runs)
        results[f"{label} (median s)"] = median
        results[f"{label} (cpu s)"] = cpu
    fast = results[f"{args.guests} guests: bin/hivectl list"]
    fast_500 = results["500 guests: bin/hivectl list"]
    assert isinstance(fast, dict) and isinstance(fast_500, dict)
    results["vm-bhyve vm list, 500 guests (s, recorded)"] = VM_BHYVE_LIST_500_S
    results["times faster than vm-bhyve at 500"] = round(VM_BHYVE_LIST_500_S / fast_500["median_s"], 1)
    # On a loaded machine the CPU time is the better estimate of the idle wall-clock time (list waits on
    # nothing but the file system); vm-bhyve's figure is wall-clock on an idle machine.
    results["times faster than vm-bhyve at 500, by CPU time"] = round(VM_BHYVE_LIST_500_S / fast_500["cpu_s"], 1)
    verdict = {"guests": args.guests, "target_s": args.target, "met": fast["median_s"] <= args.target, **results}
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
