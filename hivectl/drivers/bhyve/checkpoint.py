"""bhyve's save and restore: ``bhyvectl --suspend=FILE`` and ``bhyve -r FILE`` (bhyvectl(8), bhyve(8)).

Both exist only in a bhyve built with ``WITH_BHYVE_SNAPSHOT`` on a kernel with ``options BHYVE_SNAPSHOT``
(off by default; stock releases reject ``-r`` as an illegal option). hivectl tells without starting a
guest: such a build lists ``-r`` among the options of ``bhyve -h`` and ``--suspend`` in bhyvectl's usage
(both ``#ifdef BHYVE_SNAPSHOT`` in usr.sbin/bhyve/bhyverun.c and usr.sbin/bhyvectl/bhyvectl.c).

``--suspend`` asks the running bhyve, over its checkpoint socket, to pause the vCPUs and devices and write
FILE, FILE.kern and FILE.meta; then bhyve destroys the VM and exits 0 (``vm_checkpoint`` in
usr.sbin/bhyve/snapshot.c). Exit 0 is also a guest reboot, so the supervisor looks for the save when bhyve
exits: one written during the run ends it (vm-bhyve's lib/vm-run looks for its ``suspending.lock`` instead,
which a killed suspend could leave on a guest that runs on). When the checkpoint fails bhyve resumes the
guest and carries on, so a bhyve still running after the request is a failed suspend, not a slow one.

A resume is the guest's usual start with ``-r FILE`` before the VM name, as vm-bhyve's lib/vm-run adds it;
bhyveload or grub-bhyve still run first, because a VM restored without a boot ROM must already exist.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import patterns
from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.store import GuestRef

MISSING = ("this host's bhyve was built without snapshot support (BHYVE_SNAPSHOT): {what}; suspend and resume "
           "need a world built WITH_BHYVE_SNAPSHOT=yes and a kernel with 'options BHYVE_SNAPSHOT'")


def support_problem(host: Host) -> str | None:
    """None when bhyve and bhyvectl are snapshot builds; else the one line that says what is missing."""
    if host.which("bhyve") is None or host.which("bhyvectl") is None:
        return "bhyve and bhyvectl are needed to suspend and resume guests, and are not on PATH"
    help_text = host.run(["bhyve", "-h"], check=False)
    listed = patterns.search(r"(?m)^\s*-r:", help_text.stderr + help_text.stdout) is not None
    usage = host.run(["bhyvectl"], check=False)
    suspends = "--suspend" in usage.stderr + usage.stdout
    if listed and suspends:
        return None
    what = []
    if not listed:
        what.append("'bhyve -h' lists no -r option")
    if not suspends:
        what.append("bhyvectl has no --suspend")
    return MISSING.format(what=" and ".join(what))


def suspend_argv(ref: GuestRef) -> list[str]:
    return ["bhyvectl", f"--vm={ref.name}", f"--suspend={ref.layout.suspend}"]


def suspend(host: Host, ref: GuestRef) -> None:
    """Send the request; bhyve writes the files and exits (the caller waits for that)."""
    result = host.run(suspend_argv(ref), check=False)
    if result.status != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise HivectlError(f"bhyvectl --suspend of {ref.name} failed (exit status {result.status})"
                           + (f": {detail[-1]}" if detail else ""))


def restore_argv(argv: list[str], save: Path) -> list[str]:
    """bhyve's command line with ``-r FILE`` before the VM name (the last argument)."""
    return [*argv[:-1], "-r", str(save), argv[-1]]
