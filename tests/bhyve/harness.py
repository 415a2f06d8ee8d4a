"""Planning golden cases without a FreeBSD host, and printing the result for review.

A case is a guest config plus the boots to plan (normal run, install, reboot after install,
foreground...). ``Env`` says where vm_dir and the ZFS datastore are: ``/vm`` and ``/tank/vm`` for the
golden files (nothing there is touched: planning is pure), a temporary directory for the simulated-host
runs, whose output is compared with the golden files after mapping the directory back.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.drivers.base import BootRequest
from hivectl.drivers.bhyve.driver import BhyveDriver, warnings
from hivectl.drivers.bhyve.planner import Planned
from hivectl.host.base import Host, Result
from hivectl.hostconf import HostSettings
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port
from hivectl.rcfile import RcFile
from hivectl.store import Datastore, GuestRef, Store

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
TEMPLATES = REPO / "hivectl" / "templates"
FIXED_UUID = "0b1c7f5e-6a53-11ef-8f0d-589cfc000001"
VNC_PORT = 5900


@dataclass(frozen=True)
class Boot:
    """One boot to plan. ``install`` is relative to vm_dir (``.iso/x.iso``)."""

    label: str
    install: str | None = None
    first_boot: bool = True
    foreground: bool = False
    vmm_exists: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    config: str  # guest config text; @VM@ is vm_dir, @ZFS@ the ZFS datastore's mountpoint
    boots: tuple[Boot, ...] = (Boot("run"),)
    guest: str = "guest"
    zfs: bool = False  # the guest lives in the ZFS datastore "tank" (dataset tank/vm)
    backends: Mapping[int, str] = field(default_factory=dict)  # NIC index -> Port.backend (default tapN)
    template: str | None = None


@dataclass(frozen=True)
class Env:
    vm_dir: Path
    zfs_dir: Path
    host_root: Path  # where /dev/vmm/NAME is looked up

    def text(self, config: str) -> str:
        return config.replace("@VM@", str(self.vm_dir)).replace("@ZFS@", str(self.zfs_dir))


GOLDEN_ENV = Env(Path("/vm"), Path("/tank/vm"), Path("/nonexistent-host-root"))


class RecordingHost(Host):
    """A host for pure planner tests: it answers a few read-only queries from a table and records argv.

    Tests assert on the planner's output, never on what was recorded here.
    """

    def __init__(self, root: Path, answers: Mapping[str, tuple[int, str]] | None = None,
                 tools: Sequence[str] = ("bhyve", "bhyvectl", "bhyveload", "grub-bhyve")) -> None:
        self.platform = "freebsd"
        self.root = root
        self.answers = dict(answers or {})
        self.tools = set(tools)
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Mapping[str, str] | None = None) -> Result:
        self.calls.append(list(argv))
        status, out = self.answers.get(" ".join(argv), (0, ""))
        return Result(tuple(argv), status, out, "")

    def which(self, program: str) -> str | None:
        return f"/usr/sbin/{program}" if program in self.tools else None


def template_case(name: str) -> Case:
    """A shipped template as ``hivectl create`` leaves it: plus a uuid and the first NIC's MAC."""
    text = (TEMPLATES / f"{name}.conf").read_text()
    text += f'uuid="{FIXED_UUID}"\nnetwork0_mac="58:9c:fc:00:00:01"\n'
    zfs = "zvol" in text
    boots = (Boot("run"), Boot("install", install=".iso/install.iso"),
             Boot("reboot during install", install=".iso/install.iso", first_boot=False))
    return Case(f"template-{name}", f"the shipped template {name}.conf", text, boots, guest=name, zfs=zfs,
                template=name)


def guest_ref(case: Case, env: Env, store: Store) -> GuestRef:
    if case.zfs:
        return GuestRef(case.guest, Datastore("tank", "zfs", "zfs:tank/vm", env.zfs_dir, "tank/vm"))
    return GuestRef(case.guest, store.default)


def config_for(case: Case, env: Env, ref: GuestRef) -> GuestConfig:
    return GuestConfig(RcFile(ref.conf_path, env.text(case.config)), case.guest)


def ports_for(case: Case, config: GuestConfig) -> list[Port]:
    ports = []
    for nic in config.nics:
        backend = case.backends.get(nic.index, f"tap{nic.index}")
        ifname = backend.split(",")[0]
        ports.append(Port(nic.index, ifname, nic.switch, backend))
    return ports


def driver_for(env: Env, host: Host | None = None) -> tuple[BhyveDriver, Store]:
    host = host or RecordingHost(env.host_root)
    store = Store(HostSettings(vm_dir=str(env.vm_dir)), host)
    return BhyveDriver(host, store, vnc_ports=lambda listen: VNC_PORT), store


def plan_boot(driver: BhyveDriver, case: Case, env: Env, boot: Boot) -> Planned:
    ref = guest_ref(case, env, driver.store)
    config = config_for(case, env, ref)
    media = env.vm_dir / boot.install if boot.install else None
    request = BootRequest(ref, config, ports_for(case, config), media, boot.first_boot, boot.foreground)
    return driver.plan(request)


def plan_case(case: Case, env: Env) -> list[tuple[Boot, Planned]]:
    """Plan every boot of ``case``; ``vmm_exists`` boots need ``env.host_root/dev/vmm`` to be writable."""
    driver, _store = driver_for(env)
    result = []
    for boot in case.boots:
        node = driver.host.devpath(f"/dev/vmm/{case.guest}")
        if boot.vmm_exists:
            node.parent.mkdir(parents=True, exist_ok=True)
            node.write_text("{}\n")
        try:
            result.append((boot, plan_boot(driver, case, env, boot)))
        finally:
            if boot.vmm_exists:
                node.unlink()
    return result


# -- printing -------------------------------------------------------------------------------------------

TAKES_ARGUMENT = {"bhyve": "cfGkKlmnoprsU", "bhyveload": "cdehlm", "grub-bhyve": "cdgmMr"}


def format_argv(argv: Sequence[str]) -> list[str]:
    """One option (with its argument) per line, quoted like a shell would need it."""
    takes = TAKES_ARGUMENT.get(Path(argv[0]).name, "")
    lines = [argv[0]]
    i = 1
    while i < len(argv):
        arg = argv[i]
        if len(arg) == 2 and arg[0] == "-" and arg[1] in takes and i + 1 < len(argv):
            lines.append(f"    {arg} {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            lines.append(f"    {shlex.quote(arg)}")
            i += 1
    return lines


def render(case: Case, planned: list[tuple[Boot, Planned]], env: Env = GOLDEN_ENV) -> str:
    """The golden text of a case: its config, then every boot's plan, section by section."""
    out = [f"# {case.name}: {case.description}",
           "# Expected bhyve driver output; checked by tests/bhyve/test_golden.py. Review every change by hand",
           "# against bhyve(8), vm-bhyve's lib/vm-run, then regenerate with HIVECTL_UPDATE_GOLDEN=1.",
           "", f"== config ({case.guest}.conf{', ZFS datastore tank/vm' if case.zfs else ''})"]
    out += [line for line in env.text(case.config).splitlines() if line.strip()]
    ref_config = GuestConfig(RcFile(Path("/dev/null"), env.text(case.config)), case.guest)
    found = warnings(ref_config)
    if found:
        out += ["", "== preflight warnings", *found]
    for boot, plan in planned:
        flags = [f"install={boot.install}" if boot.install else "", "" if boot.first_boot else "not the first boot",
                 "foreground" if boot.foreground else "", "/dev/vmm exists" if boot.vmm_exists else ""]
        out += ["", f"== boot: {boot.label}" + "".join(f" [{f}]" for f in flags if f)]
        out += ["-- prepare", *(json.dumps(a.argv()) for a in plan.boot.prepare)] if plan.boot.prepare else []
        if plan.boot.loader:
            out += ["-- loader", *format_argv(plan.boot.loader)]
        out += ["-- bhyve", *format_argv(plan.boot.hypervisor)]
        if plan.device_map is not None:
            out += ["-- device.map", *plan.device_map.splitlines()]
        if plan.grub_cfg is not None:
            out += ["-- grub.cfg", *plan.grub_cfg.splitlines()]
        out += ["-- console", *(f"{k}={v}" for k, v in plan.boot.console.items())]
        if plan.boot.secrets:
            out += ["-- secrets", *(str(p) for p in plan.boot.secrets)]
        out += ["-- bhyve_config (-k file" + ("; in use" if plan.boot.secrets else "; not used: no secret") + ")",
                *plan.config_text.splitlines()]
    return "\n".join(out) + "\n"
