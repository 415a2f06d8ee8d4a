"""Every guest key is exercised by a golden case, and each key that should shape the plan really does.

The second test removes each key from the cases that set it and plans again: a key that should change
the bhyve plan must change it in at least one case (otherwise its golden coverage proves nothing), and a
key that belongs to someone else (supervisor, network planner, create) must change nothing.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hivectl.errors import HivectlError
from hivectl.model import keys
from hivectl.rcfile import parse_text
from tests.bhyve.cases import all_cases
from tests.bhyve.harness import GOLDEN_ENV, Case, plan_case, render

# Keys the bhyve plan does not depend on, and who uses them instead.
NOT_FOR_THE_PLANNER = {
    "debug": "the supervisor sends bhyve's stderr to bhyve.log",
    "ignore_bad_msr": "dead in vm-bhyve: -w is always passed",
    "prestart": "the supervisor runs it before each boot",
    "priority": "the supervisor renices bhyve",
    "jail": "the start plan runs the loader and bhyve through jexec in the jail (drivers/bhyve/jail.py)",
    "limit_pcpu": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "limit_rbps": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "limit_wbps": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "limit_riops": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "limit_wiops": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "limit_memory": "the supervisor's rctl rules on bhyve (hivectl/runner/limits.py)",
    "on_restart": "the supervisor's restart policy",
    "on_fault": "the supervisor's restart policy",
    "fault_limit": "the supervisor's crash-loop limit",
    "fault_backoff": "the supervisor's crash-loop backoff",
    "tags": "listing and selection",
    "owner": "the rights policy (hivectl/auth/policy.py)",
    "group": "the rights policy (hivectl/auth/policy.py)",
    "zfs_dataset_opts": "create",
    "zfs_zvol_opts": "create",
    "diskN_size": "create (template only)",
    "networkN_switch": "the network planner (the port is an input here)",
    "networkN_device": "the network planner",
    "networkN_name": "the network planner (its backend text is an input here)",
    "networkN_span": "the network planner",
}
OTHER_DRIVERS = re.compile(r"qemu_")  # keys documented as "qemu driver only"

CASES = all_cases()


def _pattern(key: str) -> str:
    spec = keys.spec_for(key)
    assert spec is not None, f"unknown key {key!r} in a golden case (a typo?)"
    return spec.pattern


def _uses() -> dict[str, list[tuple[Case, str]]]:
    """pattern -> (case, concrete key) for every key set in a case."""
    found: dict[str, list[tuple[Case, str]]] = {}
    for case in CASES:
        for key in parse_text(GOLDEN_ENV.text(case.config)):
            found.setdefault(_pattern(key), []).append((case, key))
    return found


def test_every_key_appears_in_a_golden_case() -> None:
    used = _uses()
    missing = [s.pattern for s in keys.KEYS if s.pattern not in used and not OTHER_DRIVERS.match(s.pattern)]
    assert not missing, f"keys exercised by no golden case in tests/bhyve/cases.py: {missing}"


def test_exemptions_are_real_keys() -> None:
    patterns = {s.pattern for s in keys.KEYS}
    assert set(NOT_FOR_THE_PLANNER) <= patterns


def _plan_text(case: Case, tmp: Path) -> str:
    env = dataclasses.replace(GOLDEN_ENV, host_root=tmp)
    try:
        return render(case, plan_case(case, env))
    except HivectlError as error:
        return f"error: {error}"


def _without(case: Case, key: str) -> Case:
    kept = [line for line in case.config.splitlines() if not line.startswith(f"{key}=")]
    return dataclasses.replace(case, config="\n".join(kept) + "\n")


def _config_section_removed(text: str) -> str:
    """The plan without the echoed config (which of course changes when a key is removed)."""
    lines = text.splitlines()
    if not any(line.startswith("== config") for line in lines):
        return text  # planning failed: the error is the plan
    start = lines.index(next(line for line in lines if line.startswith("== config")))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("== ")), len(lines))
    return "\n".join(lines[:start] + lines[end:])


@pytest.mark.parametrize("pattern", sorted(_uses()))
def test_key_shapes_the_plan_exactly_when_it_should(pattern: str, tmp_path: Path) -> None:
    changed = []
    for case, key in _uses()[pattern]:
        before = _config_section_removed(_plan_text(case, tmp_path))
        after = _config_section_removed(_plan_text(_without(case, key), tmp_path))
        changed.append(before != after)
    if pattern in NOT_FOR_THE_PLANNER:
        assert not any(changed), f"{pattern} changed the bhyve plan, but it belongs to: {NOT_FOR_THE_PLANNER[pattern]}"
    else:
        assert any(changed), f"removing {pattern} changes no golden case: add a case where it matters"
