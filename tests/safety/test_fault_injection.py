"""Kill hivectl before every file-system and process step of a command; the host must stay consistent.

Issue 10's first "done means": a step counter in the test harness (``tests/safety/faultpoint``: an audit
hook loaded into the hivectl process, see its docstring), not a random sleep. For each command: one run
without a kill counts its steps (N); then for each chosen k in 1..N the command runs on a fresh copy of the
state and SIGKILLs itself just before step k. After each kill the test checks that every guest is complete
or absent (its config and every disk it names exist, or nothing of it is visible), that no dataset is left
without its guest; then it runs the command again, which must succeed (or, if the kill came after the
command had published its result, be refused only because the work is done), and checks that nothing is
left over: no staging or tombstone entry, no temp file, no tap or ``/dev/vmm`` node without a running
guest. ``restore`` (a ZFS chain, full then incremental, and a directory datastore) also compares the
restored disk byte for byte with the original's.

``start`` is killed at each of its own steps and, separately, its supervisor at each of its steps (set-up,
then the tear-down that ``stop`` triggers), with a guest that has a tap on a switch, an nmdm console and a
ZFS volume: after each kill the guest runs (hypervisor alive, recorded, Running, its tap, VM and console
there) or nothing of the run is left (no tap, ``/dev/vmm`` or nmdm node, lock, state file or live
process); then ``start`` (after ``stop`` if it ran) succeeds and ``stop`` leaves the host clean.

Which k: with ``HIVECTL_FAULT_FULL=1`` every step (the exhaustive run, for the figures in
docs/reliability.md). By default, to keep the suite's time sane, every process step (a command run or
spawned: each changes the host) and the first step of every other kind (event and file name, temp-file
randomness left out), so every kind of step is still killed at least once; ``HIVECTL_FAULT_POINTS=5,21``
re-runs chosen points. The simulated FreeBSD host (tests/simhost) plays bhyve, bhyveload, zfs and
ifconfig, with a ZFS vm_dir (``zfs:zroot/vm``) plus a plain-directory datastore, so both kinds of guest
storage are exercised. ``HIVECTL_FAULT_REPORT=FILE`` writes one line per case: steps, kill points, seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hivectl.rcfile import read_values
from tests.cli_helpers import HIVECTL, Outcome

FAULTPOINT = Path(__file__).resolve().parent / "faultpoint"
REPO = Path(__file__).resolve().parent.parent.parent


@dataclass
class Bed:
    """One simulated host with a ZFS vm_dir, and how to run hivectl (optionally with a kill point) on it."""

    sim: Any
    root: Path  # vm_dir's mountpoint
    store2: Path  # a plain-directory datastore "plain"
    env: dict[str, str]
    fault_dir: Path
    values: dict[str, str] = field(default_factory=dict)  # ``{key}`` in a case's command (set by its setup)

    def run(self, *args: str, kill_at: str = "", clear: bool = True) -> Outcome:
        """Run hivectl; the step logs of earlier runs are removed first unless ``clear`` is False."""
        for entry in self.fault_dir.iterdir() if clear else ():
            entry.unlink()
        env = {**self.env, "HIVECTL_FAULT_AT": kill_at}
        done = subprocess.run([*HIVECTL, *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        return Outcome(done.returncode, done.stdout, done.stderr)

    def steps(self, role: str = "cli") -> list[str]:
        lines: list[str] = []
        for log in sorted(self.fault_dir.glob(f"{role}.*")):
            lines += log.read_text().splitlines()
        return lines

    def datastores(self) -> list[tuple[Path, str | None]]:
        return [(self.root, "zroot/vm"), (self.store2, None)]


def make_bed(simhost: Any, tmp_path: Path) -> Bed:
    fault_dir = tmp_path / "faults"
    fault_dir.mkdir()
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_dir="zfs:zroot/vm"\n')
    env = {k: v for k, v in os.environ.items() if k != "HIVECTL_VM_DIR"}
    env.update({
        "HIVECTL_RC_CONF": str(rc), "HIVECTL_FAULT_DIR": str(fault_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(FAULTPOINT)]),
        "PYTHONWARNINGS": "ignore::hivectl_faultpoint.Unused",
    })
    assert simhost.run(["zfs", "create", "zroot/vm"]).returncode == 0
    out = simhost.run(["zfs", "get", "-H", "-o", "value", "mountpoint", "zroot/vm"]).stdout.strip()
    store2 = tmp_path / "plain"
    store2.mkdir()
    bed = Bed(simhost, Path(out), store2, env, fault_dir)
    for args in (["init"], ["datastore", "add", "plain", str(store2)], ["switch", "create", "public"]):
        result = bed.run(*args)
        assert result.status == 0, result.err
    return bed


# -- what must hold ------------------------------------------------------------------------------------
def guest_problems(bed: Bed) -> list[str]:
    """Every guest complete or absent; nothing that blocks a name without being a guest."""
    problems: list[str] = []
    datasets = bed.sim.datasets()
    for root, parent in bed.datastores():
        for entry in sorted(os.listdir(root)):
            if entry.startswith("."):
                continue
            path = root / entry
            conf = path / f"{entry}.conf"
            if not path.is_dir() or not conf.is_file():
                problems.append(f"{path}: in the datastore but not a guest (no {conf.name})")
                continue
            values = read_values(conf)
            for key, name in values.items():
                if not (key.startswith("disk") and key.endswith("_name")):
                    continue
                dev = values.get(key.replace("_name", "_dev"), "file") or "file"
                if dev == "file" and not (path / name).is_file():
                    problems.append(f"{entry}: {key}={name} does not exist")
                if dev in ("zvol", "sparse-zvol") and f"{parent}/{entry}/{name}" not in datasets:
                    problems.append(f"{entry}: zvol {parent}/{entry}/{name} does not exist")
        if parent:
            for name in datasets:
                rest = name[len(parent) + 1:] if name.startswith(parent + "/") else ""
                visible = rest and "/" not in rest and "@" not in rest and not rest.startswith(".")
                if visible and not (root / rest / f"{rest}.conf").is_file():
                    problems.append(f"dataset {name} has no guest config")
    return problems


def leftover_problems(bed: Bed) -> list[str]:
    """After a successful re-run: no staging/tombstone entries or datasets, no temp files, no orphans."""
    problems: list[str] = []
    for root, _ in bed.datastores():
        problems += [f"{root / e}: left over" for e in os.listdir(root) if e.startswith(".hivectl-")]
        for path in root.rglob("*.tmp"):
            problems.append(f"{path}: temp file left over")
    problems += [f"dataset {d}: left over" for d in bed.sim.datasets() if "/.hivectl-" in d]
    running = set(bed.sim.running())
    for node in sorted(os.listdir(bed.sim.root / "dev" / "vmm")):
        if node not in running:
            problems.append(f"/dev/vmm/{node} without a running guest")
    if not running:
        problems += [f"{tap}: a tap without a running guest" for tap in bed.sim.interfaces() if tap.startswith("tap")]
    return problems


@dataclass
class Case:
    """One command under fault injection: how to prepare, what to run, how to tell it is done and undo it."""

    name: str
    command: list[str]
    prepare: list[list[str]] = field(default_factory=list)
    done: Callable[[Bed], bool] = lambda bed: True
    reset: list[list[str]] = field(default_factory=list)  # back to the state before the command
    setup: Callable[[Bed], None] | None = None  # after ``prepare``, before the state is saved
    check: Callable[[Bed], list[str]] = lambda bed: []  # more problems to look for after each re-run

    def argv(self, bed: Bed) -> list[str]:
        return [word.format(**bed.values) for word in self.command]


def guest(bed: Bed, name: str, root: Path | None = None) -> bool:
    return ((root or bed.root) / name / f"{name}.conf").is_file()


def conf(bed: Bed, name: str) -> dict[str, str]:
    return read_values(bed.root / name / f"{name}.conf")


def system(bed: Bed, key: str) -> list[str]:
    return read_values(bed.root / ".config" / "system.conf").get(key, "").split()


def vm_list(bed: Bed) -> list[str]:
    return read_values(Path(bed.env["HIVECTL_RC_CONF"])).get("vm_list", "").split()


def disk_bytes(bed: Bed, name: str, plain: bool) -> bytes:
    """The contents of a restore case's guest disk: ``disk0.img`` in the directory datastore, else the zvol."""
    if plain:
        return (bed.store2 / name / "disk0.img").read_bytes()
    return bed.sim.path(f"/dev/zvol/zroot/vm/{name}/disk0").read_bytes()


def fill_disk(bed: Bed, name: str, plain: bool, seed: int) -> None:
    """Write a few recognisable blocks into the disk (what a guest would), holes left between them."""
    path = bed.store2 / name / "disk0.img" if plain else bed.sim.path(f"/dev/zvol/zroot/vm/{name}/disk0")
    with open(path, "r+b") as disk:
        for block in (0, 7, 300):
            disk.seek(block * 65536 + seed)
            disk.write(bytes([seed + 1]) * 4096 + f"{name} block {block} seed {seed}".encode())


def backup_chain(plain: bool) -> Callable[[Bed], None]:
    """Back ``orig`` up twice into ``backups/`` (on ZFS the second one is incremental to the first), with the
    disk changed in between; ``{backup}`` becomes the newest file."""
    def setup(bed: Bed) -> None:
        target = bed.store2.parent / "backups"  # outside the saved state: it stays between kill points
        target.mkdir(exist_ok=True)
        for seed in (1, 2):
            fill_disk(bed, "orig", plain, seed)
            made = bed.run("backup", "--to", str(target), "orig")
            assert made.status == 0, made.err
            bed.values["backup"] = made.out.strip()
        header = subprocess.run(["tar", "-xOzf", bed.values["backup"], "hivectl-backup.json"], capture_output=True,
                                text=True, check=True).stdout
        assert plain or '"parent"' in header, "the second ZFS backup is not incremental"
    return setup


def restored_equal(plain: bool) -> Callable[[Bed], list[str]]:
    def check(bed: Bed) -> list[str]:
        if not guest(bed, "copy", bed.store2 if plain else None):
            return []
        if disk_bytes(bed, "copy", plain) != disk_bytes(bed, "orig", plain):
            return ["the restored disk differs from the original's"]
        return []
    return check


CASES = [
    Case("create", ["create", "-s", "64M", "-t", "freebsd-zvol", "new"], done=lambda b: guest(b, "new"),
         reset=[["destroy", "-f", "new"]]),
    Case("create-plain", ["create", "-s", "64M", "-d", "plain", "new"], done=lambda b: guest(b, "new", b.store2),
         reset=[["destroy", "-f", "new"]]),
    Case("clone", ["clone", "src", "copy"], prepare=[["create", "-s", "64M", "-t", "freebsd-zvol", "src"]],
         done=lambda b: guest(b, "copy"), reset=[["destroy", "-f", "copy"]]),
    Case("clone-plain", ["clone", "src", "copy"], prepare=[["create", "-s", "64M", "-d", "plain", "src"]],
         done=lambda b: guest(b, "copy", b.store2), reset=[["destroy", "-f", "copy"]]),
    Case("rename", ["rename", "old", "new"], prepare=[["create", "-s", "64M", "-t", "freebsd-zvol", "old"]],
         done=lambda b: guest(b, "new") and not guest(b, "old"), reset=[["rename", "new", "old"]]),
    Case("destroy", ["destroy", "-f", "gone"], prepare=[["create", "-s", "64M", "gone"]],
         done=lambda b: not guest(b, "gone"), reset=[["create", "-s", "64M", "gone"]]),
    Case("destroy-plain", ["destroy", "-f", "gone"], prepare=[["create", "-s", "64M", "-d", "plain", "gone"]],
         done=lambda b: not guest(b, "gone", b.store2), reset=[["create", "-s", "64M", "-d", "plain", "gone"]]),
    Case("add-disk", ["add", "-d", "disk", "-s", "1G", "g"], prepare=[["create", "-s", "64M", "g"]],
         done=lambda b: "disk1_name" in conf(b, "g")),
    Case("add-network", ["add", "-d", "network", "-s", "public", "g"], prepare=[["create", "-s", "64M", "g"]],
         done=lambda b: "network1_switch" in conf(b, "g")),
    Case("switch-create", ["switch", "create", "lan"], done=lambda b: "lan" in system(b, "switch_list"),
         reset=[["switch", "destroy", "lan"]]),
    Case("switch-destroy", ["switch", "destroy", "lan"], prepare=[["switch", "create", "lan"]],
         done=lambda b: "lan" not in system(b, "switch_list"), reset=[["switch", "create", "lan"]]),
    Case("datastore-add", ["datastore", "add", "more", "/tmp"], done=lambda b: "more" in system(b, "datastore_list"),
         reset=[["datastore", "remove", "more"]]),
    Case("datastore-remove", ["datastore", "remove", "plain"],
         done=lambda b: "plain" not in system(b, "datastore_list"), reset=[["datastore", "add", "plain", "/tmp"]]),
    Case("autostart-add", ["autostart", "add", "g"], prepare=[["create", "-s", "64M", "g"]],
         done=lambda b: "g" in vm_list(b),
         reset=[["autostart", "remove", "g"]]),
    Case("autostart-remove", ["autostart", "remove", "g"],
         prepare=[["create", "-s", "64M", "g"], ["autostart", "add", "g"]],
         done=lambda b: "g" not in vm_list(b), reset=[["autostart", "add", "g"]]),
    Case("restore", ["restore", "{backup}", "copy"], prepare=[["create", "-s", "64M", "-t", "freebsd-zvol", "orig"]],
         setup=backup_chain(False), done=lambda b: guest(b, "copy"), reset=[["destroy", "-f", "copy"]],
         check=restored_equal(False)),
    Case("restore-plain", ["restore", "-d", "plain", "{backup}", "copy"],
         prepare=[["create", "-s", "64M", "-d", "plain", "orig"]], setup=backup_chain(True),
         done=lambda b: guest(b, "copy", b.store2), reset=[["destroy", "-f", "copy"]], check=restored_equal(True)),
]


def test_every_kill_point_leaves_a_consistent_host(simhost: Any, tmp_path: Path, case: Case,
                                                   record: list[str]) -> None:
    """Kill before each step of ``case``; after each kill and after the re-run, check the invariants."""
    started = time.monotonic()
    bed = make_bed(simhost, tmp_path)
    for args in case.prepare:
        result = bed.run(*args)
        assert result.status == 0, f"{args}: {result.err}"
    if case.setup is not None:
        case.setup(bed)
    command = case.argv(bed)
    snapshot = tmp_path / "snapshot"
    save(bed, snapshot)
    first = bed.run(*command)
    assert first.status == 0, first.err
    failures: list[str] = [f"{case.name}: after the run without a kill: {p}" for p in case.check(bed)]
    steps = bed.steps()
    assert steps, "the step counter saw no step: the audit hook is not loaded"
    points = kill_points(steps)
    for k in points:
        restore(bed, snapshot)
        killed = bed.run(*command, kill_at=f"cli:{k}")
        where = f"{case.name}: killed before step {k} ({steps[k - 1]})"
        if killed.status != -9:
            failures.append(f"{where}: expected SIGKILL, exit status {killed.status}: {killed.err.strip()}")
            continue
        failures += [f"{where}: {p}" for p in guest_problems(bed)]
        again = bed.run(*command)
        if again.status != 0 and not case.done(bed):
            failures.append(f"{where}: the re-run failed: {again.err.strip()}")
        if not case.done(bed):
            failures.append(f"{where}: the re-run did not finish the command")
        problems = guest_problems(bed) + leftover_problems(bed) + case.check(bed)
        failures += [f"{where}, then re-run: {p}" for p in problems]
    for args in case.reset:  # after the last kill and re-run: the name is usable again
        result = bed.run(*args)
        if result.status != 0:
            failures.append(f"{case.name}: after the last re-run, {args} failed: {result.err.strip()}")
    record.append(f"{case.name}\t{len(steps)}\t{len(points)}\t{time.monotonic() - started:.1f}")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:200])


# -- fresh state for every kill point ---------------------------------------------------------------------
def save(bed: Bed, snapshot: Path) -> None:
    """Copy the whole simulated host (its state file, pools, datastores) to ``snapshot``, holes kept."""
    snapshot.mkdir()
    for live, name in ((bed.sim.root, "host"), (bed.store2, "plain")):
        subprocess.run(["cp", "-a", "--sparse=always", str(live), str(snapshot / name)], check=True)
    shutil.copy2(Path(bed.env["HIVECTL_RC_CONF"]), snapshot / "rc.conf")


def restore(bed: Bed, snapshot: Path) -> None:
    for live, name in ((bed.sim.root, "host"), (bed.store2, "plain")):
        shutil.rmtree(live)
        subprocess.run(["cp", "-a", "--sparse=always", str(snapshot / name), str(live)], check=True)
    shutil.copy2(snapshot / "rc.conf", Path(bed.env["HIVECTL_RC_CONF"]))


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def record() -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    out = os.environ.get("HIVECTL_FAULT_REPORT")
    if out:
        Path(out).write_text("".join(f"{line}\n" for line in lines))


# -- start: kill the command, or its supervisor, at each step --------------------------------------------
# The guest has what a run sets up on the host: a tap on switch "public" (network0), an nmdm console
# (com1, /dev/nmdm-g.1A/B) and a ZFS volume disk, and boots through bhyveload then bhyve.
START = ["create", "-s", "64M", "-t", "freebsd-zvol", "g"]
SETTLE = 30.0  # seconds a run left by a killed command may take to finish starting or stopping


def run_problems(bed: Bed, name: str = "g") -> tuple[bool, list[str]]:
    """Either the guest runs (hypervisor alive, recorded, shown Running, its tap and VM there) or nothing of
    a run is left (no tap, /dev/vmm node, nmdm node, lock, state file, live supervisor or hypervisor).
    Returns (running, problems)."""
    from hivectl.runtime import guest_state

    directory = bed.root / name
    state = guest_state(directory, name)
    alive = name in bed.sim.running()
    taps = sorted(t for t in bed.sim.interfaces() if t.startswith("tap"))
    vmm = (bed.sim.root / "dev" / "vmm" / name).exists()
    nmdm = sorted(p.name for p in (bed.sim.root / "dev").glob(f"nmdm-{name}.*"))
    if state.running or alive:
        problems = [] if alive else [f"listed {state.label()} but no hypervisor runs"]
        if state.state != "Running":
            problems.append(f"a hypervisor runs but the guest is listed {state.label()}")
        if not taps or not vmm or not nmdm:
            problems.append(f"running without its tap/VM/console: taps {taps}, /dev/vmm/{name} {vmm}, nmdm {nmdm}")
        return True, problems
    problems = [f"{tap}: left over (the guest is {state.label()})" for tap in taps]
    problems += [f"/dev/vmm/{name}: left over"] if vmm else []
    problems += [f"/dev/{node}: left over" for node in nmdm]
    problems += [f"{directory / f}: left over" for f in ("run.lock", "hivectl.state", "console")
                 if (directory / f).exists()]
    problems += [f"{role} {pid} still alive" for role, pid in live_processes(bed)]
    return False, problems


def live_processes(bed: Bed) -> list[tuple[str, int]]:
    """The supervisors the step counter saw that still run, and the live bhyve or bhyveload of any run."""
    found: list[tuple[str, int]] = []
    for log in sorted(bed.fault_dir.glob("supervisor.*")):
        pid = int(log.name.split(".")[1])
        with contextlib.suppress(OSError):
            if b"hivectl" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(("supervisor", pid))
    found += [("bhyve", int(rec["pid"])) for rec in bed.sim.running().values()]
    return found


def settle(bed: Bed, name: str = "g") -> None:
    """Wait until no supervisor of the guest is half-way through setting up or tearing down."""
    from hivectl.runtime import guest_state

    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        state = guest_state(bed.root / name, name)
        supervising = [pid for role, pid in live_processes(bed) if role == "supervisor"]
        # A hypervisor listed by its pid but not yet known to the simulated kernel is still starting: a
        # jailed guest's pid is jexec's until jexec (a Python stand-in here, not C) has exec'd bhyve.
        starting = state.state == "Running" and state.pid is not None and name not in bed.sim.running()
        if (state.state == "Running" and name in bed.sim.running()) or (not supervising and not starting):
            return
        time.sleep(0.2)


def reap(bed: Bed) -> None:
    """Kill whatever a failed kill point left running, before the next one restores the saved state."""
    for _role, pid in live_processes(bed):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while live_processes(bed) and time.monotonic() < deadline:
        time.sleep(0.1)


def kill_points(steps: list[str]) -> list[int]:
    """Which steps to kill before: all with HIVECTL_FAULT_FULL=1; by default every process step and the
    first step of every other kind (event and file name, temp-file randomness left out)."""
    only = os.environ.get("HIVECTL_FAULT_POINTS")  # e.g. "5,21": re-run chosen kill points of a failure
    if only:
        return [int(k) for k in only.split(",") if 0 < int(k) <= len(steps)]
    if os.environ.get("HIVECTL_FAULT_FULL") == "1":
        return list(range(1, len(steps) + 1))
    chosen, kinds = [], set()
    for k, line in enumerate(steps, 1):
        _, event, what = [*line.split("\t"), "", ""][:3]
        name = re.sub(r"\.\d+\.[a-z0-9_]+\.tmp$", ".tmp", Path(what).name)  # temp names: writer pid, random
        kind = (event, "FD" if name.isdigit() else name)
        if event in PROCESS_EVENTS or kind not in kinds:
            chosen.append(k)
        kinds.add(kind)
    return chosen


PROCESS_EVENTS = {"subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork"}


SUPERVISOR_SHARDS = 3  # the supervisor's kill points split over this many tests, so pytest-xdist spreads them


@pytest.mark.parametrize("role,shard", [("cli", 0)] + [("supervisor", n) for n in range(SUPERVISOR_SHARDS)])
def test_every_kill_point_of_start_leaves_the_guest_running_or_nothing(simhost: Any, tmp_path: Path, role: str,
                                                                       shard: int, record: list[str]) -> None:
    """Kill ``start`` (role cli) or the supervisor it launched (role supervisor, through the whole run: set-up,
    then the tear-down at ``stop``) before each step. After the kill: the guest runs or nothing of the run
    is left; then ``start`` (after ``stop`` if it runs) succeeds and ``stop`` leaves the host clean. The
    supervisor's points are dealt round-robin over ``SUPERVISOR_SHARDS`` tests (one was 5 minutes long)."""
    started = time.monotonic()
    bed = make_bed(simhost, tmp_path)
    result = bed.run(*START)
    assert result.status == 0, result.err
    snapshot = tmp_path / "snapshot"
    save(bed, snapshot)
    first = bed.run("start", "g")
    assert first.status == 0, first.err
    steps = bed.steps("cli")  # those of ``start`` only
    stopped = bed.run("stop", "g", clear=False)
    assert stopped.status == 0, stopped.err
    if role == "supervisor":
        steps = bed.steps("supervisor")  # set-up, then the tear-down after ``stop``
    assert steps, f"the step counter saw no {role} step"
    failures: list[str] = []
    if role == "supervisor":
        points = kill_points(steps)[shard::SUPERVISOR_SHARDS]
    else:
        points = list(range(1, len(steps) + 1))  # start: 4 steps
    for k in points:
        reap(bed)
        restore(bed, snapshot)
        where = f"start ({role}): killed before step {k} ({steps[k - 1]})"
        killed = bed.run("start", "g", kill_at=f"{role}:{k}")
        if role == "cli" and killed.status != -9:
            failures.append(f"{where}: expected SIGKILL, exit status {killed.status}: {killed.err.strip()}")
            continue
        if role == "supervisor" and killed.status == 0:
            bed.run("stop", "g", kill_at=f"{role}:{k}", clear=False)  # the kill point is in the tear-down
        seen = bed.steps(role)
        if len(seen) != k or not seen[-1].startswith(f"{k}\t"):
            failures.append(f"{where}: the {role} was not killed at step {k} (it logged {len(seen)} steps)")
        settle(bed)
        running, problems = run_problems(bed)
        failures += [f"{where}: {p}" for p in problems]
        if running:
            again = bed.run("stop", "g", clear=False)
            if again.status != 0:
                failures.append(f"{where}: stop of the guest left running failed: {again.err.strip()}")
        again = bed.run("start", "g", clear=False)
        if again.status != 0:
            failures.append(f"{where}: the next start failed: {again.err.strip()}")
        running, problems = run_problems(bed)
        if not running:
            problems.append("the next start did not leave the guest running")
        failures += [f"{where}, then start: {p}" for p in problems]
        done = bed.run("stop", "g", clear=False)
        if done.status != 0:
            failures.append(f"{where}: the final stop failed: {done.err.strip()}")
        settle(bed)
        running, problems = run_problems(bed)
        failures += [f"{where}, then start and stop: {p}" for p in problems + (["still running"] if running else [])]
    reap(bed)
    record.append(f"start-{role}{'' if role == 'cli' else shard}\t{len(steps)}\t{len(points)}"
                  f"\t{time.monotonic() - started:.1f}")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:200])


def test_a_startall_whose_supervisor_is_killed_during_set_up_leaves_nothing(simhost: Any, tmp_path: Path) -> None:
    """``startall`` launches supervisors as ``start`` does: one killed during its set-up (before its second
    ifconfig) must not leave its lock, state file or tap behind (before the fix: run.lock and hivectl.state)."""
    bed = make_bed(simhost, tmp_path)
    for args in (START, ["autostart", "add", "g"]):
        assert bed.run(*args).status == 0
    assert bed.run("startall").status == 0
    steps = bed.steps("supervisor")
    assert bed.run("stopall").status == 0
    ifconfigs = [k for k, line in enumerate(steps, 1) if line.split("\t")[1:3] == ["subprocess.Popen", "ifconfig"]]
    k = ifconfigs[1]
    killed = bed.run("startall", kill_at=f"supervisor:{k}")
    seen = bed.steps("supervisor")
    assert len(seen) == k, f"the supervisor was not killed at step {k}: {seen[-1:]}"
    assert killed.status != 0
    settle(bed)
    running, problems = run_problems(bed)
    assert not running and not problems, problems
    reap(bed)
