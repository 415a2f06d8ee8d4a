"""``stopall`` stops guests in vm-bhyve's order (``vm::stopall``), on the simulated FreeBSD host.

Running guests that are not in ``vm_list`` are signalled first, together; then those in ``vm_list`` in
reverse order, ``vm_delay`` seconds apart. The dry run must print exactly that order (with the ``sleep``s)
and change nothing; the real run is observed through the commands the simulated host's tools receive:
each supervisor destroys its VM (``bhyvectl --vm=NAME --destroy``) once its guest has powered off, so the
destroys come in the order the power buttons were pressed, ``vm_delay`` apart.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest


def _ok(result: Any) -> Any:
    assert result.status == 0, result.err
    return result


def test_stopall_reverse_vm_list_then_the_rest(host: Any) -> None:
    for name in ("a", "b", "c", "loose"):
        make_guest(host, name)
    host.rc.write_text('vm_list="a b c"\nvm_delay="1"\n')
    _ok(hivectl("start", "a", "b", "c", "loose"))
    pids = {name: str(host.running()[name]["pid"]) for name in ("a", "b", "c", "loose")}

    before = host.running()
    plan = [json.loads(line) for line in _ok(hivectl("stopall", "--dry-run")).out.splitlines()]
    assert host.running() == before, "the dry run stopped something"
    presses = [step for step in plan if step[:2] == ["kill", "-TERM"] or step[0] == "sleep"]
    assert presses == [["kill", "-TERM", pids["loose"]], ["kill", "-TERM", pids["c"]], ["sleep", "1"],
                       ["kill", "-TERM", pids["b"]], ["sleep", "1"], ["kill", "-TERM", pids["a"]]]
    assert ["pwait", "-t", "90", *[pids[n] for n in ("loose", "c", "b", "a")]] in plan

    host.clear_commands()
    began = time.monotonic()
    _ok(hivectl("stopall"))
    took = time.monotonic() - began
    assert host.running() == {}
    destroyed = [argv[1].removeprefix("--vm=") for argv in host.commands()
                 if argv[0] == "bhyvectl" and argv[2:] == ["--destroy"]]
    assert sorted(destroyed) == ["a", "b", "c", "loose"]
    assert destroyed.index("c") < destroyed.index("b") < destroyed.index("a")
    assert destroyed.index("loose") < destroyed.index("b")
    assert took >= 2, f"two vm_delay gaps of 1 s, but stopall took {took:.2f} s"
