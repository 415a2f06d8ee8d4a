"""Golden tests: each representative config renders exactly the checked-in QEMU command line.

The golden files (``golden/<case>.argv``, one argument per line, the guest's directory written ``@G@`` and
vm_dir ``@ROOT@``) are the reviewable record of what each key becomes. After an intended change, rewrite
them with ``HIVECTL_UPDATE_GOLDEN=1 python -m pytest tests/qemu/test_argv_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hivectl.drivers.base import BootPlan
from hivectl.net.ports import Port
from hivectl.store import GuestRef
from tests.qemu.cases import CASES, Case
from tests.qemu.guests import Scratch

GOLDEN = Path(__file__).parent / "golden"


def render(scratch: Scratch, case: Case, taps: dict[int, str] | None = None) -> tuple[GuestRef, BootPlan]:
    """Create the case's guest and plan its boot (taps named ``tap<N>`` unless given)."""
    directory = scratch.root / case.name
    ref = scratch.guest(case.name, case.conf.replace("@G@", str(directory)), case.files)
    install = None
    if case.install:
        install = scratch.root / ".iso" / case.install
        install.parent.mkdir(exist_ok=True)
        install.write_bytes(b"\0" * 4096)
    names = taps or {index: f"tap{index}" for index in case.taps}
    ports = [Port(index, name, "public") for index, name in names.items()]
    return ref, scratch.plan(ref, ports, install, case.first_boot, case.foreground)


def normalise(text: str, scratch: Scratch, ref: GuestRef) -> str:
    return text.replace(str(ref.directory), "@G@").replace(str(scratch.root), "@ROOT@")


def golden_text(scratch: Scratch, ref: GuestRef, plan: BootPlan) -> str:
    lines = list(plan.hypervisor)
    lines.append("# console")
    lines += [f"{key}={value}" for key, value in plan.console.items()]
    lines.append("# prepare")
    lines += [json.dumps(action.argv()) for action in plan.prepare]
    lines.append("# secrets")
    lines += [str(path) for path in plan.secrets]
    return normalise("\n".join(lines) + "\n", scratch, ref)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_argv(scratch: Scratch, case: Case) -> None:
    ref, plan = render(scratch, case)
    text = golden_text(scratch, ref, plan)
    path = GOLDEN / f"{case.name}.argv"
    if os.environ.get("HIVECTL_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with HIVECTL_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_same_config_renders_the_same_argv(scratch: Scratch) -> None:
    case = CASES[1]
    first = render(scratch, case)[1].hypervisor
    assert render(scratch, case)[1].hypervisor == first


def test_password_never_in_argv_and_only_in_a_0600_file(scratch: Scratch) -> None:
    case = next(c for c in CASES if c.name == "graphics-tcp-password")
    _, plan = render(scratch, case)
    assert not any("not-in-argv" in arg for arg in plan.hypervisor)
    assert not any("not-in-argv" in json.dumps(a.argv()) for a in plan.prepare)
    from hivectl.plan import Plan

    Plan(list(plan.prepare)).apply(scratch.host)
    secret = plan.secrets[0]
    assert secret.read_text() == "not-in-argv"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert f"file={secret}" in " ".join(plan.hypervisor)


def test_install_media_only_on_first_boot(scratch: Scratch) -> None:
    first = next(c for c in CASES if c.name == "uefi-install-first-boot")
    second = next(c for c in CASES if c.name == "uefi-install-second-boot")
    argv1 = " ".join(render(scratch, first)[1].hypervisor)
    argv2 = " ".join(render(scratch, second)[1].hypervisor)
    assert "media=cdrom" in argv1 and "bootindex=1" in argv1
    assert "installer.iso" not in argv2
    # graphics_wait=auto: wait for a VNC client only while installing
    assert " -S " in argv1 and " -S " not in argv2


def test_nic_without_port_gets_no_device_and_user_backend_on_request(scratch: Scratch) -> None:
    ref = scratch.guest("n", 'loader="bhyveload"\ncpu=1\nmemory=128M\nnetwork0_type="virtio-net"\n'
                             'network1_type="e1000"\n')
    argv = scratch.plan(ref, [Port(1, "", backend="user")]).hypervisor
    joined = " ".join(argv)
    assert "net0" not in joined
    assert "user,id=net1" in joined and "e1000,netdev=net1" in joined
    # no MAC configured: a stable one in bhyve's OUI, the same on every boot
    mac = next(a for a in argv if a.startswith("e1000")).split("mac=")[1].split(",")[0]
    assert mac.startswith("58:9c:fc:0")
    assert scratch.plan(ref, [Port(1, "", backend="user")]).hypervisor == argv


def test_never_vhost_and_no_shell_helpers(scratch: Scratch) -> None:
    for case in CASES:
        if not case.taps:
            continue
        _, plan = render(scratch, case)
        netdevs = [plan.hypervisor[i + 1] for i, a in enumerate(plan.hypervisor) if a == "-netdev"]
        assert netdevs
        for netdev in netdevs:
            assert "vhost" not in netdev
            assert "script=no" in netdev and "downscript=no" in netdev


def test_commas_in_paths_are_escaped(scratch: Scratch) -> None:
    odd = Scratch(scratch.root / "a,b")
    odd.root.mkdir()
    ref = odd.guest("g", 'loader="bhyveload"\ncpu=1\nmemory=128M\ndisk0_type="virtio-blk"\ndisk0_name="d.img"\n',
                    {"d.img": 4096})
    argv = odd.plan(ref).hypervisor
    drive = next(a for a in argv if a.startswith("if=none,id=disk0"))
    assert f"file={scratch.root}/a,,b/g/d.img," in drive
