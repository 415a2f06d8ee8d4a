"""One start, planned: every step a start takes, in the order it takes them.

``hivectl start --dry-run`` prints this plan and the supervisor executes it, step by step and nothing
else (issue 9, "one plan"; docs/architecture.md, "Running a guest"). Once per start:

1. the guest's identity (``uuid``, ``networkN_mac``) written to its config when missing. The values are
   generated here, at plan time, and carried in the plan, so the config the later steps render (bhyve's
   ``-U``, each NIC's ``mac=``) is the config the first step writes;
2. its ports (taps, bridge memberships), as vm-bhyve's ``vm::run`` creates them before its boot loop;
3. with ``jail="auto"``, its jail: root, devfs ruleset, ``jail -c`` (``drivers/bhyve/jail.py``).

Then for every boot (vm-bhyve's ``_run`` loop, reboots included): the cloud-init seed rebuilt when stale,
the ``prestart`` hook, the driver's prepare actions (device.map, ``-k`` file, a stale ``/dev/vmm/NAME``
destroyed), the loader (bhyveload, grub-bhyve) and the hypervisor, then the limits put on it once it runs
(``rctl -a process:<pid>:...``; hivectl/runner/limits.py).

Planning touches nothing: it reads the config and asks the host read-only questions (free tap names, VNC
ports, whether ``/dev/vmm/NAME`` exists).
"""

from __future__ import annotations

import json
from pathlib import Path

from hivectl.drivers import checkpoint
from hivectl.drivers.base import BootPlan, BootRequest, Driver, Problem, is_fatal
from hivectl.drivers.bhyve import jail as jailing
from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.host.process import TimeoutExpired
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port, plan_ports
from hivectl.plan import Action
from hivectl.rcfile import RcFile
from hivectl.records import field, record
from hivectl.store import GuestRef, Store

PRESTART_TIMEOUT = 300.0


@record
class SetIdentity(Action):
    """Write generated identity keys into a guest's config (vm-bhyve gives a guest its uuid and MACs the
    same way, at first run); shown as the ``sysrc -f`` an administrator would type."""

    path: Path
    values: dict[str, str]

    def argv(self) -> list[str]:
        return ["sysrc", "-f", str(self.path), *[f"{k}={v}" for k, v in self.values.items()]]

    def apply(self, host: Host) -> None:
        """Under the config's edit lock (``safety/filelock.py``); a key someone set since the plan was made
        refuses the start, because every later step was rendered with the planned value."""
        from hivectl.safety.filelock import locked

        with locked(self.path):
            rc = RcFile.load(self.path)
            changed = [k for k in self.values if rc.get(k)]
            if changed:
                raise HivectlError(f"{self.path}: {', '.join(changed)} changed while the start was planned; "
                                   "start it again")
            for key, value in self.values.items():
                rc.set(key, value)
            rc.save()


@record
class Prestart(Action):
    """vm-bhyve's ``prestart`` hook: the program, with the guest's name and directory as arguments, run
    in the guest directory before every boot. As in vm-bhyve its exit status is logged and never stops
    the boot; ``outcome`` says how it went, for the supervisor's log."""

    program: Path
    name: str
    directory: Path
    outcome: str = field(default="", compare=False)

    def argv(self) -> list[str]:
        return [str(self.program), self.name, str(self.directory)]

    def apply(self, host: Host) -> None:
        try:
            status = host.run_hook(self.argv(), cwd=self.directory, timeout=PRESTART_TIMEOUT)
            self.outcome = f"prestart {self.program} exited with status {status}"
        except (OSError, TimeoutExpired) as error:
            self.outcome = f"prestart {self.program} failed: {error}"


@record
class BootSteps:
    """One boot: seed, hook, the driver's prepare actions, loader and hypervisor."""

    config: GuestConfig  # the config this boot was planned from (priority, console ports)
    first: bool  # the start's first boot (``start`` waits for it; install media are attached to it)
    seed: Action | None
    prestart: Prestart | None
    boot: BootPlan

    def before_loader(self) -> list[Action]:
        return [a for a in (self.seed, self.prestart) if a is not None] + list(self.boot.prepare)

    def argvs(self) -> list[list[str]]:
        lines = [a.argv() for a in self.before_loader()]
        if self.boot.loader:
            lines.append(list(self.boot.loader))
        from hivectl.runner import limits  # the limits put on the hypervisor once it runs

        return [*lines, list(self.boot.hypervisor), *limits.planned(self.config, self.boot.hypervisor)]


@record
class StartPlan:
    """A whole start: what is done once (identity, ports), then the first boot."""

    ref: GuestRef
    config: GuestConfig  # the config every step renders: identity included, even before it is written
    identity: SetIdentity | None
    problems: list[str]  # the driver's preflight findings (fatal ones stop the start before any step)
    ports: list[Port]
    first: BootSteps
    jail: jailing.JailPlan | None = None  # jail="auto": the jail made before the first boot (docs/jails.md)

    def argvs(self) -> list[list[str]]:
        """Every step as the command it stands for, in order: what ``start --dry-run`` prints."""
        once = [self.identity.argv()] if self.identity is not None else []
        once += [a.argv() for p in self.ports for a in p.setup]
        once += [a.argv() for a in self.jail.setup] if self.jail is not None else []
        return once + self.first.argvs()

    def lines(self) -> list[str]:
        return [json.dumps(argv) for argv in self.argvs()]


def plan_identity(store: Store, ref: GuestRef, config: GuestConfig) -> tuple[SetIdentity | None, GuestConfig]:
    """The identity a guest lacks (a clone, a hand-written config), generated now, and the config as it
    reads once written. MACs avoid every MAC configured on this host (``model/identity.py``)."""
    from hivectl.model.identity import new_mac, new_uuid, taken_macs

    missing = [f"network{n.index}_mac" for n in config.nics if not n.mac and not n.device]
    values: dict[str, str] = {}
    if not config.get("uuid"):
        values["uuid"] = new_uuid()
    if missing:
        taken = taken_macs(store.iter_guests())
        for key in missing:
            values[key] = new_mac(taken)
            taken.add(values[key])
    if not values:
        return None, config
    rc = RcFile(config.path, config.rc.text())
    for key, value in values.items():
        rc.set(key, value)
    return SetIdentity(config.path, values), GuestConfig(rc, config.name)


def prestart_step(ref: GuestRef, config: GuestConfig) -> Prestart | None:
    """The ``prestart`` hook of this config; a relative path is taken from the guest directory (vm-bhyve)."""
    program = config.get("prestart")
    if not program:
        return None
    path = Path(program) if program.startswith("/") else ref.directory / program
    return Prestart(path, ref.name, ref.directory)


def plan_boot(driver: Driver, ref: GuestRef, config: GuestConfig, ports: list[Port], install: Path | None,
              first: bool, foreground: bool, config_changes: bool = False, restore: Path | None = None) -> BootSteps:
    """One boot's steps; ``config_changes`` when an earlier step of this start rewrites the config (the
    seed is then rebuilt, since it is built from the config); ``restore`` resumes the guest from that save."""
    from hivectl.storage.cloudinit import ensure_seed

    seed = ensure_seed(ref, config, force=config_changes)  # rebuilt whenever its inputs changed (churchers#338)
    request = BootRequest(ref, config, ports, install if first else None, first, foreground, restore)
    boot = driver.plan_boot(request)
    if driver.name == "bhyve":
        jailing.wrap(boot, config)  # jail=: the loader and bhyve run through jexec(8)
    return BootSteps(config, first, seed, prestart_step(ref, config), boot)


def plan_start(host: Host, store: Store, driver: Driver, ref: GuestRef, install: Path | None = None,
               foreground: bool = False, fresh: bool = False) -> StartPlan:
    """Plan a start of ``ref``: identity, preflight, ports and the first boot. Changes nothing. ``fresh``
    plans a boot that ignores the guest's save (``start --discard-save --dry-run``: it is moved first)."""
    identity, config = plan_identity(store, ref, ref.config())
    config.check()
    problems = driver.preflight(ref, config)
    # A suspended guest is resumed, never booted afresh over its save: memory from before on disks booted
    # since would corrupt them (hivectl/drivers/checkpoint.py). A stale save refuses the start.
    save = None if fresh else checkpoint.find(ref)
    if save is not None:
        missing = driver.checkpoint_problem()
        if missing:
            problems.append(Problem(f"{ref.name} is suspended ({save.path}) and cannot be resumed here: {missing}"))
        if install is not None:
            problems.append(Problem(f"{ref.name} is suspended ({save.path}): resume it, or discard the save "
                                    "(start --discard-save), before an install"))
        problems += [Problem(p) for p in checkpoint.problems(host, save, config, driver.name)]
    if jailing.name_of(config) is not None and driver.name != "bhyve":
        raise HivectlError(f"{config.path}: jail={config.get('jail')}: jails are FreeBSD's, for the bhyve driver "
                           f"only (this host uses {driver.name})")
    try:
        ports = plan_ports(host, store, ref, config, host.platform)
        first = plan_boot(driver, ref, config, ports, install, True, foreground, identity is not None,
                          save.path if save is not None else None)
        jail = jailing.plan(host, store, ref, config, ports, first.boot, install) \
            if driver.name == "bhyve" and not [p for p in problems if is_fatal(p)] else None
    except HivectlError:
        fatal = [p for p in problems if is_fatal(p)]
        if fatal:  # the more basic cause (a missing loader, vmm not loaded) is the one to report
            raise HivectlError("; ".join(fatal)) from None
        raise
    return StartPlan(ref, config, identity, problems, ports, first, jail)
