"""A guest's bhyve run inside a jail: ``jail="NAME"`` (the administrator's jail) or ``jail="auto"``.

The bhyve cookbook's security chapter runs bhyve in a jail created with ``allow.vmm`` (jail(8), FreeBSD 14
and later: "allow.vmm: Allow access to vmm(4)"), ``mount.devfs`` and a ``devfs_ruleset`` that hides
everything the guest does not need; CBSD does the same (its ``bjail``). hivectl plans it like every other
step (docs/jails.md), so ``start --dry-run`` prints the jail, devfs and jexec commands:

- ``jail="auto"``: a jail ``hivectl-NAME`` per guest, made for the run and removed after it. Its root
  (``vm_dir/.jails/NAME``) holds only mount points: the base system read-only (``/bin``, ``/lib``,
  ``/libexec``, ``/sbin``, ``/usr``, ``/boot``, nullfs(5)), the guest's directory read-write, the install
  medium's directory read-only, and a devfs(5) whose ruleset (devfs.rules(5)) hides every node but this
  guest's: ``vmm/NAME`` and ``vmm.io/NAME.*``, its nmdm pairs, taps, zvols, the host TPM it passes through,
  ``pci``/``io``/``mem`` for PCI passthrough, and ``null``, ``zero``, ``random``, ``urandom``. The ruleset
  number is taken from :data:`RULESETS` (far above the rulesets 1-5 of /etc/defaults/devfs.rules), never
  one that ``devfs rule showsets`` lists, chosen and created under one lock so two starts never share one.
  The guest's ``limit_*`` keys become rctl(8) rules on that jail (``jail:hivectl-NAME:pcpu:deny=50``...),
  added right after ``jail -c`` so they bind the loader and bhyve from their first instruction.
- ``jail="NAME"``: an existing jail the administrator made; hivectl checks that it runs and has
  ``allow.vmm`` (``jls -j NAME allow.vmm``) and leaves its devfs ruleset and its rctl rules to its owner
  (the guest's limits stay on its bhyve process, hivectl/runner/limits.py: the jail may run other things).

In both cases the loader and bhyve run through jexec(8), which enters the jail and execs the program in
the same process, so the supervisor still watches bhyve's own pid. Cleanup (stop, a crash, the stale run
of a killed supervisor) runs the teardown the supervisor recorded before each step: ``jail -r`` (which
stops the jail's processes and unmounts its file systems), ``rctl -r jail:NAME``, ``devfs rule -s N
delset``, then ``rmdir`` of the root's empty mount points, deepest first; rmdir never removes a directory
that is still a mount point, so nothing of the host is ever deleted through a mount that outlived its jail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hivectl.drivers.base import BootPlan, Problem
from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.model.limits import of as limits_of
from hivectl.model.limits import subject_rules
from hivectl.net.ports import Port
from hivectl.patterns import Pattern
from hivectl.plan import Action, WriteFile
from hivectl.records import field, record
from hivectl.store import GuestRef, Store

AUTO = "auto"
PREFIX = "hivectl-"
RULESETS = range(64000, 65536)  # devfs rulesets are 16-bit; the defaults use 1-5
BASE_SYSTEM = ("/bin", "/lib", "/libexec", "/sbin", "/usr", "/boot")  # what bhyve and its loaders need
ALWAYS = ("null", "zero", "random", "urandom")
PASSTHRU = ("pci", "io", "mem")  # pci_passthru.c opens /dev/pci, /dev/io and /dev/mem
DEVICE = Pattern(r"/dev/([A-Za-z0-9_.+@:/-]+)")
NMDM = Pattern(r"(nmdm.+)[AB]\Z")


def name_of(config: GuestConfig) -> str | None:
    """The jail the guest runs in (``hivectl-NAME`` for ``auto``), or None when it is not jailed."""
    value = config.get("jail")
    if not value or value == "none":
        return None
    return f"{PREFIX}{config.name}" if value == AUTO else value


def jexec(jail: str, argv: list[str]) -> list[str]:
    """``jexec JAIL PROGRAM ARGS...``: jexec(8) attaches to the jail and execs the program (same pid)."""
    return ["jexec", jail, *argv]


def unwrap(argv: list[str]) -> list[str]:
    """The program a ``jexec JAIL ...`` line runs (what the process is once jexec has exec'd it)."""
    return argv[2:] if len(argv) > 2 and Path(argv[0]).name == "jexec" else argv


def wrap(boot: BootPlan, config: GuestConfig) -> BootPlan:
    """Run this boot's loader and bhyve in the guest's jail, if it has one."""
    jail = name_of(config)
    if jail is not None:
        if boot.loader:
            boot.loader = jexec(jail, boot.loader)
        boot.hypervisor = jexec(jail, boot.hypervisor)
    return boot


def nodes(name: str, config: GuestConfig, ports: list[Port], boot: BootPlan) -> list[str]:
    """Every /dev node this guest's loader and bhyve open, relative to /dev, each after its directories.

    Read from what they are told to open (every ``/dev/...`` in their command lines and the ``-k`` file),
    plus what they open without naming it: the VM's nodes, the taps (named without /dev in ``-s``), the
    other side of each nmdm pair, and the passthrough devices.
    """
    texts = [" ".join(boot.loader or []), " ".join(boot.hypervisor)]
    texts += [action.content for action in boot.prepare if isinstance(action, WriteFile)]
    named = [f"vmm/{name}", f"vmm.io/{name}.*", "vmmctl", *ALWAYS]
    for text in texts:
        for found in DEVICE.findall(text):
            named.append(found.rstrip("/"))
            pair = NMDM.match(found)
            if pair:
                named += [pair.group(1) + "A", pair.group(1) + "B"]
    for port in ports:
        if port.ifname and port.backend.startswith(port.ifname):
            named.append(port.ifname)
        elif port.backend.startswith("vale"):
            named.append("netmap")
    from hivectl.drivers.bhyve import devices  # only when planning a jailed start

    if devices.passthru_requests(config):
        named += list(PASSTHRU)
    ordered: list[str] = []
    for node in named:
        parts = node.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path and path not in ordered:
                ordered.append(path)
    return ordered


# -- the steps ----------------------------------------------------------------------------------------------

@record
class Ruleset:
    """The devfs ruleset of one start: the number planned, then the number claimed (maybe another, if
    the planned one was taken meanwhile). ``on_claim`` is told the number just before the ruleset is
    created, so the supervisor records its removal first (a kill right after leaves nothing behind)."""

    number: int
    lock: Path  # vm_dir/.config/devfs-rulesets: its sibling lock serialises the choice between starts
    claimed: bool = False
    on_claim: Callable[[int], None] | None = field(default=None, repr=False, compare=False)


def rulesets_in_use(host: Host) -> set[int]:
    """``devfs rule showsets``: the rulesets the kernel has (the administrator's and other guests')."""
    result = host.run(["devfs", "rule", "showsets"], check=False)
    return {int(word) for word in result.stdout.split() if word.isdigit()}


def free_ruleset(used: set[int]) -> int:
    for number in RULESETS:
        if number not in used:
            return number
    raise HivectlError(f"no free devfs ruleset between {RULESETS.start} and {RULESETS.stop - 1} "
                       "(devfs rule showsets)")


@record
class MakeRoot(Action):
    """The jail's root and its mount points (``mkdir -p``); only empty directories, removed with rmdir."""

    directories: list[Path]

    def argv(self) -> list[str]:
        return ["mkdir", "-p", *(str(d) for d in self.directories)]

    def apply(self, host: Host) -> None:
        for directory in self.directories:
            os.makedirs(directory, 0o755, exist_ok=True)


@record
class ClaimRuleset(Action):
    """The ruleset's first rule, ``add hide`` (every node hidden), which creates it: its number chosen
    under the lock, among those ``devfs rule showsets`` does not list."""

    ruleset: Ruleset

    def argv(self) -> list[str]:
        return ["devfs", "rule", "-s", str(self.ruleset.number), "add", "hide"]

    def apply(self, host: Host) -> None:
        from hivectl.safety.filelock import locked

        self.ruleset.lock.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.ruleset.lock):
            used = rulesets_in_use(host)
            if self.ruleset.number in used:
                self.ruleset.number = free_ruleset(used)
            if self.ruleset.on_claim is not None:
                self.ruleset.on_claim(self.ruleset.number)
            self.ruleset.claimed = True
            host.run(self.argv())


@record
class AddRule(Action):
    """One ``devfs rule -s N add path PATTERN unhide`` of the guest's ruleset."""

    ruleset: Ruleset
    pattern: str

    def argv(self) -> list[str]:
        return ["devfs", "rule", "-s", str(self.ruleset.number), "add", "path", self.pattern, "unhide"]

    def apply(self, host: Host) -> None:
        host.run(self.argv())


@record
class CreateJail(Action):
    """``jail -c``: the persistent jail (no process yet: jexec puts the loader and bhyve in it)."""

    params: list[str]
    ruleset: Ruleset

    def argv(self) -> list[str]:
        return ["jail", "-c", *self.params, f"devfs_ruleset={self.ruleset.number}"]

    def apply(self, host: Host) -> None:
        host.run(self.argv())


@record
class JailLimit(Action):
    """``rctl -a jail:hivectl-NAME:RESOURCE:ACTION=AMOUNT``: one of the guest's limits on its jail (rctl(8);
    the cookbook's security chapter limits its bhyve jail so). Like vm-bhyve's rules on the bhyve process, a
    rule rctl refuses is logged (``outcome``) and the guest runs on."""

    rule: str
    outcome: str = ""

    def argv(self) -> list[str]:
        return ["rctl", "-a", self.rule]

    def apply(self, host: Host) -> None:
        result = host.run(self.argv(), check=False)
        said = (result.stderr or result.stdout).strip()
        self.outcome = f"limit applied: rctl -a {self.rule}" if result.status == 0 else \
            f"limit not applied: rctl -a {self.rule}: {said}"


@record
class JailPlan:
    """The jail steps of one start: what is made before the first boot, and how it is undone."""

    name: str
    auto: bool
    setup: list[Action]
    ruleset: Ruleset | None = None
    directories: list[Path] = field(default_factory=list)
    limited: bool = False  # limit_* set: rctl rules on the jail (``jail:NAME``), which outlive the jail

    def limits(self) -> list[JailLimit]:
        return [step for step in self.setup if isinstance(step, JailLimit)]

    def teardown(self) -> list[list[str]]:
        """``jail -r``, ``rctl -r jail:NAME`` (its limits), ``devfs rule -s N delset`` (once the ruleset is
        ours), ``rmdir`` of the mount points.

        The ruleset's removal is listed only once it was claimed: the planned number may be another's. The
        rctl rules go by name: the kernel keeps a jail subject's rules after the jail is removed (a jail
        made later with that name would be limited by them; kern_rctl.c keeps them with the name's
        prison_racct, not with the prison).
        """
        if not self.auto:
            return []
        steps = [["jail", "-r", self.name]]
        if self.limited:
            steps.append(["rctl", "-r", f"jail:{self.name}"])
        if self.ruleset is not None and self.ruleset.claimed:
            steps.append(["devfs", "rule", "-s", str(self.ruleset.number), "delset"])
        ordered = sorted(self.directories, key=lambda d: len(d.parts), reverse=True)
        return [*steps, ["rmdir", *(str(d) for d in ordered)]]


def root_of(store: Store, ref: GuestRef) -> Path:
    """``vm_dir/.jails/NAME``: beside, not inside, every directory it mounts (mount_nullfs(8) refuses a
    mount point inside its source), and skipped by the guest listing like every dot directory."""
    return store.config_dir.parent / ".jails" / ref.name


def plan(host: Host, store: Store, ref: GuestRef, config: GuestConfig, ports: list[Port], boot: BootPlan,
         install: Path | None) -> JailPlan | None:
    """The jail steps for this start (None when the guest is not jailed). Read-only: ``showsets``."""
    name = name_of(config)
    if name is None:
        return None
    if config.get("jail") != AUTO:
        return JailPlan(name, False, [])
    root = root_of(store, ref)
    shared: list[tuple[str, str]] = [(d, "ro") for d in BASE_SYSTEM]
    shared.append((str(ref.directory), "rw"))
    if install is not None:
        shared.append((str(install.parent), "ro"))
    shared.append((str(store.config_dir), "ro"))  # null.iso, attached to guests without a CD
    directories = [root, root / "dev"]
    mounts: list[str] = []
    for source, mode in shared:
        target = root / source.lstrip("/")
        for depth in range(len(root.parts) + 1, len(target.parts) + 1):  # every level, so rmdir empties it
            level = Path(*target.parts[:depth])
            if level not in directories:
                directories.append(level)
        mounts.append(f"mount={source} {target} nullfs {mode} 0 0")
    ruleset = Ruleset(free_ruleset(rulesets_in_use(host)), store.config_dir / "devfs-rulesets")
    steps: list[Action] = [MakeRoot(directories), ClaimRuleset(ruleset)]
    steps += [AddRule(ruleset, node) for node in nodes(ref.name, config, ports, boot)]
    params = [f"name={name}", f"path={root}", f"host.hostname={ref.name}", "persist", "allow.vmm", *mounts,
              "mount.devfs"]
    if "vnc" in boot.console:  # bhyve's VNC server listens on a host address
        params += ["ip4=inherit", "ip6=inherit"]
    steps.append(CreateJail(params, ruleset))
    limits = limits_of(config.values, config.path)
    steps += [JailLimit(rule) for rule in subject_rules(limits, f"jail:{name}")]
    return JailPlan(name, True, steps, ruleset, directories, limits.any())


def problems(host: Host, config: GuestConfig) -> list[str]:
    """Why this guest cannot run in its jail: the tools, or the administrator's jail missing or without vmm."""
    name = name_of(config)
    if name is None:
        return []
    found: list[str] = [Problem(f"jail={config.get('jail')} needs {tool}(8), which is not on PATH")
             for tool in ("jail", "jexec", "jls", "devfs") if host.which(tool) is None]
    if found or config.get("jail") == AUTO:
        return found
    result = host.run(["jls", "-j", name, "allow.vmm"], check=False)
    if result.status != 0:
        return [Problem(f"{config.path}: jail={name}: no such jail is running (jls -j {name}); create it with "
                        "allow.vmm, or use jail=\"auto\"")]
    if result.stdout.strip() != "true":
        return [Problem(f"{config.path}: jail={name} does not have allow.vmm (jls -j {name} allow.vmm); bhyve "
                        "cannot create a VM in it (jail(8), FreeBSD 14 and later)")]
    return []
