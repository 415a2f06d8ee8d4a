"""hivectl_snapshot: a ZFS snapshot of a guest present or absent."""
# ruff: noqa: E402 - Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: hivectl_snapshot
short_description: Manage a ZFS snapshot of a hivectl guest
description:
  - Takes or destroys GUEST@SNAPSHOT through hivectl's Python API on the managed host (the guest's
    datastore must be ZFS). Check mode is hivectl's dry run.
options:
  guest: {description: The guest., type: str, required: true}
  snapshot: {description: The snapshot's name., type: str, required: true}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  force: {description: Snapshot a running guest too (hivectl snapshot -f)., type: bool, default: false}
  vm_dir: {description: The vm_dir., type: str}
  driver: {description: bhyve or qemu., type: str}
"""

EXAMPLES = r"""
- hivectl.fleet.hivectl_snapshot: {guest: web1, snapshot: before-upgrade, force: true}
"""

RETURN = r"""
plan: {description: The host commands planned (check mode)., returned: always, type: list}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hivectl.fleet.plugins.module_utils.hivectl_common import COMMON_ARGS, api, guarded


def main() -> None:
    module = AnsibleModule(argument_spec={
        "guest": {"type": "str", "required": True}, "snapshot": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "force": {"type": "bool", "default": False},
        **COMMON_ARGS,
    }, supports_check_mode=True)
    p = module.params
    hv = api(module)
    spec = f"{p['guest']}@{p['snapshot']}"
    names = {str(row["name"]).rsplit("@", 1)[-1] for row in guarded(module, hv.snapshots, p["guest"])}
    exists = p["snapshot"] in names
    if p["state"] == "present" and not exists:
        plan = guarded(module, hv.snapshot, spec, force=p["force"], dry_run=module.check_mode)
        module.exit_json(changed=True, plan=plan, diff={"before": "", "after": f"{spec}\n"})
    if p["state"] == "absent" and exists:
        plan = guarded(module, hv.destroy, spec, dry_run=module.check_mode)
        module.exit_json(changed=True, plan=plan, diff={"before": f"{spec}\n", "after": ""})
    module.exit_json(changed=False, plan=[])


if __name__ == "__main__":
    main()
