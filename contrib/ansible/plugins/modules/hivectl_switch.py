"""hivectl_switch: a virtual switch present or absent."""
# ruff: noqa: E402 - Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: hivectl_switch
short_description: Manage a hivectl virtual switch
description:
  - Creates or destroys a switch through hivectl's Python API on the managed host; the options apply when
    it is created. Check mode is hivectl's dry run.
options:
  name: {description: The switch's name., type: str, required: true}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  type: {description: standard, vale, netgraph, manual (as hivectl switch create -t)., type: str, default: standard}
  interface: {description: Uplink interface., type: str}
  vlan: {description: VLAN on the uplink., type: str}
  address: {description: Host address on the switch (CIDR)., type: str}
  nat: {description: NAT and DHCP for the switch's guests., type: bool, default: false}
  force: {description: Destroy even when guests use it., type: bool, default: false}
  vm_dir: {description: The vm_dir., type: str}
  driver: {description: bhyve or qemu., type: str}
"""

EXAMPLES = r"""
- hivectl.fleet.hivectl_switch: {name: public, interface: em0}
"""

RETURN = r"""
plan: {description: The host commands planned (check mode)., returned: always, type: list}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hivectl.fleet.plugins.module_utils.hivectl_common import COMMON_ARGS, api, guarded


def main() -> None:
    module = AnsibleModule(argument_spec={
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "type": {"type": "str", "default": "standard"},
        "interface": {"type": "str"}, "vlan": {"type": "str"}, "address": {"type": "str"},
        "nat": {"type": "bool", "default": False}, "force": {"type": "bool", "default": False},
        **COMMON_ARGS,
    }, supports_check_mode=True)
    p = module.params
    hv = api(module)
    exists = p["name"] in {row["name"] for row in guarded(module, hv.switch_list)}
    if p["state"] == "present" and not exists:
        plan = guarded(module, hv.switch_create, p["name"], type=p["type"], interface=p["interface"],
                       vlan=p["vlan"], address=p["address"], nat=p["nat"], dry_run=module.check_mode)
        module.exit_json(changed=True, plan=plan, diff={"before": "", "after": f"switch {p['name']}\n"})
    if p["state"] == "absent" and exists:
        plan = guarded(module, hv.switch_destroy, p["name"], force=p["force"], dry_run=module.check_mode)
        module.exit_json(changed=True, plan=plan, diff={"before": f"switch {p['name']}\n", "after": ""})
    module.exit_json(changed=False, plan=[])


if __name__ == "__main__":
    main()
