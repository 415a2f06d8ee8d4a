"""A jailed guest's supervisor killed at each jail step leaves the guest running or nothing behind.

The step counter of tests/safety/test_fault_injection.py (an audit hook in the supervisor) kills the
supervisor before each of its steps that makes or removes a piece of the jail (``mkdir`` of the root, each
``devfs`` run, ``jail -c``, the ``jexec`` spawns, and at ``stop`` ``jail -r``, ``rmdir``; the first step of
each kind, as the fault-injection test's default, and both jexec spawns). After
each kill: the guest runs in its jail, or no jail, ruleset or jail root is left (and nothing else of the run,
as the fault-injection test checks); then start and stop work and leave nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivectl.rcfile import RcFile
from tests.safety.test_fault_injection import START, make_bed, reap, restore, run_problems, save, settle

JAIL_STEP = ("jail", "devfs", "jexec", "rmdir", ".jails")


def jail_problems(bed: Any, running: bool) -> list[str]:
    jails = {rec["name"] for rec in bed.sim.state().get("jails", {}).values()}
    sets = bed.sim.call(["devfs", "rule", "showsets"]).stdout.split()
    root = bed.root / ".jails" / "g"
    if running:
        return [] if jails == {"hivectl-g"} and len(sets) == 1 else [f"running with jails {jails}, rulesets {sets}"]
    found = [f"jail {name} left over" for name in sorted(jails)]
    found += [f"devfs ruleset {number} left over" for number in sets]
    found += [f"{root} left over"] if root.exists() else []
    return found


def test_every_jail_step_of_the_supervisor_leaves_the_guest_running_or_nothing(simhost: Any,
                                                                                tmp_path: Path) -> None:
    bed = make_bed(simhost, tmp_path)
    assert bed.run(*START).status == 0
    conf = RcFile.load(bed.root / "g" / "g.conf")
    conf.set("jail", "auto")
    conf.save()
    snapshot = tmp_path / "snapshot"
    save(bed, snapshot)
    first = bed.run("start", "g")
    assert first.status == 0, first.err
    assert bed.sim.running()["g"]["jail"] == "hivectl-g"
    assert bed.run("stop", "g", clear=False).status == 0
    steps = bed.steps("supervisor")
    points, kinds = [], set()
    for k, line in enumerate(steps, 1):  # the first step of each kind: the mkdir, each tool, the jexec spawns
        _, event, what = [*line.split("\t"), "", ""][:3]
        kind = (event, Path(what).name if event != "os.mkdir" else ".jails")
        # the tool's name or the jail root (not the whole path: pytest's directory is named after this test)
        if (Path(what).name in JAIL_STEP or "/.jails" in what) and (kind not in kinds or Path(what).name == "jexec"):
            points.append(k)
            kinds.add(kind)
    assert len(points) >= 5, steps  # mkdir, devfs, jail, jexec (loader, bhyve), rmdir
    failures: list[str] = []
    for k in points:
        reap(bed)
        restore(bed, snapshot)
        where = f"supervisor killed before step {k} ({steps[k - 1]})"
        killed = bed.run("start", "g", kill_at=f"supervisor:{k}")
        if killed.status == 0:
            bed.run("stop", "g", kill_at=f"supervisor:{k}", clear=False)  # the kill point is in the tear-down
        settle(bed)
        running, problems = run_problems(bed)
        if not running:
            bed.run("stop", "g", clear=False)  # a stale run is cleared by the next stop (or start)
        failures += [f"{where}: {p}" for p in problems + jail_problems(bed, running)]
        if running:
            bed.run("stop", "g", clear=False)
        again = bed.run("start", "g", clear=False)
        if again.status != 0:
            failures.append(f"{where}: the next start failed: {again.err.strip()}")
        failures += [f"{where}, then start: {p}" for p in jail_problems(bed, True)]
        bed.run("stop", "g", clear=False)
        settle(bed)
        running, problems = run_problems(bed)
        failures += [f"{where}, then start and stop: {p}" for p in problems + jail_problems(bed, False)]
    reap(bed)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:100])


def test_a_kill_between_bhyves_jexec_spawn_and_its_first_event_leaves_it_running(simhost: Any,
                                                                                  tmp_path: Path) -> None:
    """The narrow case of a HIVECTL_FAULT_FULL=1 finding (docs/reliability.md): the supervisor killed after
    it spawned ``jexec hivectl-g bhyve ...``, at the state file's record of the pid (its rename) and at the
    first event-log write after it (the ``started`` event's lock and log). The guest must run on: listed
    Running, its bhyve alive in the jail with its nmdm console and VM; then stop leaves nothing.

    At the first point the state file still says ``spawning``, and ``start`` (whose supervisor died without
    answering) looks for the run's hypervisor at once, while the process is still the jexec stand-in or the
    bhyve stand-in's interpreter before its title: on an idle machine that lookup found nothing, took the
    run for stale and tore the jail down with the guest in it (``identity.runs``, docs/reliability.md)."""
    bed = make_bed(simhost, tmp_path)
    assert bed.run(*START).status == 0
    conf = RcFile.load(bed.root / "g" / "g.conf")
    conf.set("jail", "auto")
    conf.save()
    snapshot = tmp_path / "snapshot"
    save(bed, snapshot)
    assert bed.run("start", "g").status == 0
    assert bed.run("stop", "g", clear=False).status == 0
    steps = bed.steps("supervisor")
    spawn = [k for k, line in enumerate(steps, 1) if line.split("\t")[1:3] == ["subprocess.Popen", "jexec"]][-1]
    points = [k for k, line in enumerate(steps, 1) if k > spawn and (line.split("\t")[1] == "os.rename"
              or Path(line.split("\t")[-1]).name in (".events.jsonl.lock", "events.jsonl"))][:3]
    assert len(points) == 3, steps[spawn - 1:spawn + 12]
    failures: list[str] = []
    for k in points:
        reap(bed)
        restore(bed, snapshot)
        where = f"supervisor killed before step {k} ({steps[k - 1]})"
        bed.run("start", "g", kill_at=f"supervisor:{k}")
        settle(bed)
        running, problems = run_problems(bed)
        failures += [f"{where}: {p}" for p in problems + ([] if running else ["the guest does not run"])]
        failures += [f"{where}: {p}" for p in jail_problems(bed, True)]
        bed.run("stop", "g", clear=False)
        settle(bed)
        running, problems = run_problems(bed)
        failures += [f"{where}, then stop: {p}" for p in problems + jail_problems(bed, False)]
    reap(bed)
    assert not failures, "\n".join(failures)
