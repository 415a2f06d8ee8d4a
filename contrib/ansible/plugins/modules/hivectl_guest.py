"""hivectl_guest: a guest present, absent, running or stopped, with the configuration keys given."""
# ruff: noqa: E402 - Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: hivectl_guest
short_description: Manage a hivectl guest (bhyve or QEMU)
description:
  - Creates, configures, starts, stops and destroys a guest through hivectl's Python API on the managed host.
  - Check mode is hivectl's dry run; diff mode shows the configuration keys that change.
options:
  name: {description: The guest's name., type: str, required: true}
  state:
    description: present (made if missing), running, stopped or absent (stopped, then destroyed).
    type: str
    default: present
    choices: [present, absent, running, stopped]
  template: {description: Template to create from., type: str, default: default}
  datastore: {description: Datastore to create in., type: str, default: default}
  size: {description: First disk's size when created., type: str}
  cpu: {description: CPUs when created., type: str}
  memory: {description: Memory when created., type: str}
  config: {description: Configuration keys the guest must have (key to value)., type: dict, default: {}}
  timeout: {description: Seconds a stop waits before it forces., type: float, default: 90}
  vm_dir: {description: The vm_dir (default as hivectl finds it)., type: str}
  driver: {description: bhyve or qemu (default as hivectl decides)., type: str}
"""

EXAMPLES = r"""
- hivectl.fleet.hivectl_guest:
    name: web1
    state: running
    size: 20G
    config: {cpu: "2", memory: 2G, network0_switch: public}
"""

RETURN = r"""
plan: {description: The host commands planned (check mode) per step., returned: always, type: list}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hivectl.fleet.plugins.module_utils.hivectl_common import (
    COMMON_ARGS,
    api,
    config_lines,
    guarded,
    running,
)


def main() -> None:
    module = AnsibleModule(argument_spec={
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "running", "stopped"]},
        "template": {"type": "str", "default": "default"},
        "datastore": {"type": "str", "default": "default"},
        "size": {"type": "str"}, "cpu": {"type": "str"}, "memory": {"type": "str"},
        "config": {"type": "dict", "default": {}},
        "timeout": {"type": "float", "default": 90.0},
        **COMMON_ARGS,
    }, supports_check_mode=True)
    p = module.params
    check = module.check_mode
    hv = api(module)
    name, state = p["name"], p["state"]
    rows = {r["name"]: r for r in guarded(module, hv.guests)}
    row = rows.get(name)
    plan: list[Any] = []
    changed = False
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    if row is not None:
        from hivectl.rcfile import parse_text

        before = parse_text(guarded(module, hv.config_text, name))
    if state == "absent":
        if row is not None:
            if running(row):
                plan.append(guarded(module, hv.stop, [name], timeout=p["timeout"], dry_run=check))
            plan.append(guarded(module, hv.destroy, name, dry_run=check))
            changed = True
        module.exit_json(changed=changed, plan=plan,
                         diff={"before": config_lines(before), "after": "", "before_header": f"{name}.conf"})
    if row is None:
        plan.append(guarded(module, hv.create, name, template=p["template"], datastore=p["datastore"],
                            size=p["size"], cpu=p["cpu"], memory=p["memory"], dry_run=check))
        changed = True
        if not check:  # the template's keys, to compare the wanted ones with
            from hivectl.rcfile import parse_text

            after = parse_text(guarded(module, hv.config_text, name))
    wanted = {str(k): str(v) for k, v in (p["config"] or {}).items()}
    current = after if after else dict(before)
    changes = {k: v for k, v in wanted.items() if current.get(k) != v}
    if changes:
        if row is not None or not check:
            plan.append(guarded(module, hv.set, name, dry_run=check, **changes))
        changed = True
    final = {**current, **changes}
    if state == "running" and not running(row):
        if row is not None or not check:  # a guest a check run only planned to create has no start plan yet
            plan.append(guarded(module, hv.start, name, dry_run=check))
        changed = True
    elif state == "stopped" and running(row):
        plan.append(guarded(module, hv.stop, [name], timeout=p["timeout"], dry_run=check))
        changed = True
    shown_before = config_lines({k: v for k, v in before.items() if k in final}) if row is not None else ""
    module.exit_json(changed=changed, plan=plan if check else [],
                     diff={"before": shown_before, "after": config_lines(final), "before_header": f"{name}.conf",
                           "after_header": f"{name}.conf"})


if __name__ == "__main__":
    main()
