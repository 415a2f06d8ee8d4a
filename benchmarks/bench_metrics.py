"""Benchmark: one scrape of 500 running guests (issue 11: ≤ 250 ms), as the daemon makes it for /metrics.

The guests are made to look running to hivectl without 500 QEMUs: each has a real process standing in for
its supervisor and hypervisor (``sh`` blocked in ``read``, its command line ending in the guest's name, as
QEMU's ``-name NAME`` does), recorded in ``run.lock`` and ``hivectl.state`` with its start time, so the
identity checks, ``/proc/PID/stat`` and ``/proc/PID/status`` reads are the real ones. Each guest's
``qmp-ctl.sock`` is served by one stand-in process that speaks QMP (greeting, ``qmp_capabilities``,
``query-blockstats`` with one ``disk0``), so every scrape makes 500 real QMP connections. Each guest's
port is recorded on ``lo`` (NIC counters come from one ``/proc/net/dev`` read per scrape whatever the
taps are called). Run:

    python3 benchmarks/bench_metrics.py [--guests 500] [--runs 7]

Measures the collection plus the rendering in this process (``scrape`` + ``render``, no cache: what a
cache miss of the daemon costs), wall-clock and this process's CPU time, and ``bin/hivectl metrics`` as a
command (interpreter start-up included). Prints JSON; exits 1 if the in-process median misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEMPLATE = """\
loader="grub"
cpu={cpu}
memory=1G
network0_type="virtio-net"
network0_switch="lan"
disk0_type="virtio-blk"
disk0_name="disk0.img"
"""

QMP_SERVER = r'''
import asyncio, json, os, sys

async def serve(reader, writer, n):
    writer.write(json.dumps({"QMP": {"version": {}, "capabilities": []}}).encode() + b"\r\n")
    await writer.drain()
    try:
        await session(reader, writer, n)
    except ConnectionError:  # the scraper closes its side as soon as it has its answer
        pass
    writer.close()

async def session(reader, writer, n):
    while line := await reader.readline():
        message = json.loads(line)
        reply = {"return": {}, "id": message.get("id")}
        if message.get("execute") == "query-blockstats":
            n[0] += 1
            stats = {"rd_bytes": 4096 * n[0], "rd_operations": n[0], "wr_bytes": 512 * n[0], "wr_operations": n[0]}
            reply["return"] = [{"device": "disk0", "qdev": "/machine/peripheral-anon/device[1]/virtio-backend",
                                "stats": stats}]
        writer.write(json.dumps(reply).encode() + b"\r\n")
        await writer.drain()

async def main(paths):
    servers = []
    for path in paths:
        n = [0]
        servers.append(await asyncio.start_unix_server(lambda r, w, n=n: serve(r, w, n), path=path))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1:]))
'''


def populate(root: Path, count: int) -> tuple[list[subprocess.Popen[bytes]], subprocess.Popen[str]]:
    """``count`` guests in ``root``, each with a live stand-in process; the QMP server for all of them."""
    from hivectl.host import identity

    (root / ".config").mkdir(parents=True)
    (root / ".config" / "system.conf").write_text("")
    stand_ins, sockets = [], []
    for n in range(count):
        name = f"g{n:04d}"
        directory = root / name
        directory.mkdir()
        (directory / f"{name}.conf").write_text(TEMPLATE.format(cpu=1 + n % 4))
        stand_ins.append(subprocess.Popen(["sh", "-c", "read x", "qemu", "-name", name], stdin=subprocess.PIPE))
        sockets.append(str(directory / "qmp-ctl.sock"))
    for n, proc in enumerate(stand_ins):
        name = f"g{n:04d}"
        me = None
        for _ in range(200):
            me = identity.identify(proc.pid)
            if me is not None and me.names(name):
                break
            time.sleep(0.01)
        assert me is not None and me.names(name), f"{name}: stand-in {proc.pid} not identified"
        directory = root / name
        (directory / "run.lock").write_text(f"{os.uname().nodename}\npid={me.pid}\nstart={me.start}\n")
        ports = [{"index": 0, "ifname": "lo", "switch": "lan", "backend": "tap", "mtu": 0, "created": True,
                  "bridge": None}]
        (directory / "hivectl.state").write_text(json.dumps({"state": "running", "pid": me.pid, "start": me.start,
                                                             "updated": time.time(), "ports": ports}) + "\n")
    server = subprocess.Popen([sys.executable, "-c", QMP_SERVER, *sockets], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return stand_ins, server


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.25)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one scrape to stderr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hvbm") as tmp:
        root = Path(tmp) / "vm"
        rc = Path(tmp) / "rc.conf"
        rc.write_text("")
        os.environ.update({"HIVECTL_VM_DIR": str(root), "HIVECTL_RC_CONF": str(rc), "HIVECTL_PLATFORM": "linux",
                           "HIVECTL_DRIVER": "qemu"})
        stand_ins, server = populate(root, args.guests)
        try:
            from hivectl.context import Context
            from hivectl.metrics.collect import scrape
            from hivectl.metrics.exposition import write
            from tests.metrics.promtext import samples, value

            walls, cpus, sizes, errors, renders = [], [], [], [], []
            text = ""
            for _ in range(args.runs):
                ctx = Context()
                began, cpu = time.perf_counter(), cpu_seconds()
                snapshot = scrape(ctx.store, ctx.host, ctx.driver)
                rendering = time.perf_counter()
                text = write(snapshot).decode()
                walls.append(time.perf_counter() - began)
                renders.append(time.perf_counter() - rendering)
                cpus.append(cpu_seconds() - cpu)
                sizes.append(len(text))
                errors.append(len(snapshot.errors))
            if args.profile:
                import cProfile
                import pstats

                ctx = Context()
                profile = cProfile.Profile()
                profile.runcall(lambda: write(scrape(ctx.store, ctx.host, ctx.driver)))
                order = os.environ.get("BENCH_SORT", "tottime")  # or cumulative
                pstats.Stats(profile, stream=sys.stderr).sort_stats(order).print_stats(25)
            got = samples(text)
            running = sum(1 for n in range(args.guests) if value(got, "hivectl_guest_running", guest=f"g{n:04d}") == 1)
            disks = sum(1 for n in range(args.guests)
                        if value(got, "hivectl_guest_disk_read_bytes_total", guest=f"g{n:04d}", device="disk0"))
            command = [sys.executable, "-S", str(REPO / "bin" / "hivectl"), "metrics"]
            command_walls = []
            for _ in range(3):
                began = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                command_walls.append(time.perf_counter() - began)
        finally:
            for proc in stand_ins:
                proc.kill()
            for proc in stand_ins:
                proc.wait()
            server.kill()
            server.wait()
    median = statistics.median(walls)
    result = {
        "guests": args.guests, "target_s": args.target, "met": median <= args.target,
        "load_average": os.getloadavg()[0],
        "scrape_and_render_median_s": round(median, 4), "scrape_and_render_min_s": round(min(walls), 4),
        "scrape_and_render_max_s": round(max(walls), 4),
        "cpu_median_s": round(statistics.median(cpus), 4),
        "of_which_render_median_s": round(statistics.median(renders), 4),
        "guests_running_in_output": running, "guests_with_disk_counters": disks,
        "source_errors_per_scrape": errors, "output_bytes": sizes[-1],
        "bin/hivectl metrics median_s": round(statistics.median(command_walls), 4),
    }
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
