"""hivectl_backup: a backup of a guest no older than max_age in a directory."""
# ruff: noqa: E402 - Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: hivectl_backup
short_description: Keep a recent backup of a hivectl guest
description:
  - Writes a backup (hivectl backup) when the directory holds none of the guest newer than max_age seconds,
    so a daily play makes one a day; keep or retention prune older ones. Check mode is hivectl's dry run.
options:
  name: {description: The guest., type: str, required: true}
  to: {description: The backup directory., type: str, required: true}
  max_age: {description: Seconds a backup counts as recent., type: int, default: 86400}
  keep: {description: Keep this many backups (older ones pruned)., type: int}
  retention: {description: "A retention policy (keep-daily=7,keep-weekly=4).", type: str}
  compress: {description: gz, xz, zstd or none., type: str, default: gz}
  vm_dir: {description: The vm_dir., type: str}
  driver: {description: bhyve or qemu., type: str}
"""

EXAMPLES = r"""
- hivectl.fleet.hivectl_backup: {name: web1, to: /backups, retention: "keep-daily=7,keep-weekly=4"}
"""

RETURN = r"""
plan: {description: The host commands planned (check mode)., returned: always, type: list}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hivectl.fleet.plugins.module_utils.hivectl_common import COMMON_ARGS, api, guarded


def recent(directory: str, guest: str, max_age: int) -> bool:
    """A backup file of ``guest`` (``GUEST.TIME...``, as hivectl backup names them) younger than max_age."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return False
    now = time.time()
    return any(entry.startswith(f"{guest}.") and not entry.endswith(".sha256")
               and now - os.stat(os.path.join(directory, entry)).st_mtime < max_age for entry in entries)


def main() -> None:
    module = AnsibleModule(argument_spec={
        "name": {"type": "str", "required": True}, "to": {"type": "str", "required": True},
        "max_age": {"type": "int", "default": 86400}, "keep": {"type": "int"}, "retention": {"type": "str"},
        "compress": {"type": "str", "default": "gz"},
        **COMMON_ARGS,
    }, supports_check_mode=True)
    p = module.params
    hv = api(module)
    if recent(p["to"], p["name"], p["max_age"]):
        module.exit_json(changed=False, plan=[])
    plan = guarded(module, hv.backup, p["name"], to=p["to"], keep=p["keep"], compress=p["compress"],
                   retention=p["retention"], dry_run=module.check_mode)
    module.exit_json(changed=True, plan=plan)


if __name__ == "__main__":
    main()
