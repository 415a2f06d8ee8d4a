"""hivectl_replicate: a replication job (docs/replication.md) present with its interval and policy, or absent."""
# ruff: noqa: E402 - Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: hivectl_replicate
short_description: Manage a hivectl replication job
description:
  - Records or removes the job that keeps a stopped copy of a guest on another host (hivectl replicate),
    through hivectl's Python API on the managed host. A job whose interval or policy differs is replaced
    (removed and recorded again; its status is kept, it is keyed by guest and remote). Removing a job
    leaves the copy and the snapshots. Check mode is hivectl's dry run; diff mode shows the job's line.
options:
  guest: {description: The guest replicated., type: str, required: true}
  remote: {description: A remote's name (hivectl remote add) or local:zfs:POOL/DATASET., type: str, required: true}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  every: {description: "The interval: 90s, 15m, 1h, 1d.", type: str, default: 15m}
  keep: {description: "Retention on both sides (keep-last=4,keep-hourly=24).", type: str, default: keep-last=4}
  vm_dir: {description: The vm_dir., type: str}
  driver: {description: bhyve or qemu., type: str}
"""

EXAMPLES = r"""
- hivectl.fleet.hivectl_replicate: {guest: web, remote: dr1, every: 15m, keep: "keep-last=4,keep-daily=7"}
"""

RETURN = r"""
job: {description: "The job (guest, remote, every, keep); null when absent.", returned: always, type: dict}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hivectl.fleet.plugins.module_utils.hivectl_common import COMMON_ARGS, api, guarded


def _line(job: dict[str, Any] | None) -> str:
    if job is None:
        return ""
    return f"replicate {job['guest']} {job['remote']} --every {job['every']} --keep {job['keep']}\n"


def _wanted(guest: str, remote: str, every: str, keep: str) -> dict[str, Any]:
    """The job as hivectl would record it (interval and policy normalised, every value checked)."""
    from hivectl.replicate.jobs import make_job
    from hivectl.replicate.schedule import every_text

    job = make_job(guest, remote, every, keep, 0.0)
    return {"guest": job.guest, "remote": job.remote, "every": every_text(job.every), "keep": job.keep}


def main() -> None:
    module = AnsibleModule(argument_spec={
        "guest": {"type": "str", "required": True},
        "remote": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "every": {"type": "str", "default": "15m"},
        "keep": {"type": "str", "default": "keep-last=4"},
        **COMMON_ARGS,
    }, supports_check_mode=True)
    p = module.params
    hv = api(module)
    from hivectl.replicate.schedule import every_text

    current = None
    for row in guarded(module, hv.replicate_list):
        if row["guest"] == p["guest"] and row["remote"] == p["remote"]:
            current = dict(row, every=every_text(int(row["every"])))
    if p["state"] == "absent":
        if current is None:
            module.exit_json(changed=False, job=None)
        guarded(module, hv.replicate_remove, p["guest"], p["remote"], dry_run=module.check_mode)
        module.exit_json(changed=True, job=None, diff={"before": _line(current), "after": ""})
    wanted = guarded(module, _wanted, p["guest"], p["remote"], p["every"], p["keep"])
    if current == wanted:
        module.exit_json(changed=False, job=current)
    if current is not None:
        guarded(module, hv.replicate_remove, p["guest"], p["remote"], dry_run=module.check_mode)
    if not module.check_mode or current is None:  # a dry run of the add would meet the job not removed
        guarded(module, hv.replicate, p["guest"], p["remote"], p["every"], p["keep"], dry_run=module.check_mode)
    module.exit_json(changed=True, job=wanted, diff={"before": _line(current), "after": _line(wanted)})


if __name__ == "__main__":
    main()
