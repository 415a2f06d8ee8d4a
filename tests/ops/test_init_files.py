"""``init``'s sample templates and ``null.iso``: created whole, and never over a file that is there.

``init`` runs at every boot (rc.d) and by hand; a plan is made when a sample's name is free and applied
a moment later. An administrator's template written in that moment (or a symlink planted under the
name) must be left exactly as it is, and a file init does create appears with its whole content.
"""

from __future__ import annotations

import os
from pathlib import Path

from hivectl.context import Context
from hivectl.ops.system import plan_init, shipped_templates


def test_a_template_written_after_the_plan_is_not_overwritten(vmdir: Path, tmp_path: Path) -> None:
    templates = vmdir / ".templates"
    (templates / "default.conf").unlink()
    null_iso = vmdir / ".config" / "null.iso"
    null_iso.unlink()
    ctx = Context()
    plan = plan_init(ctx.store, ctx.host)
    assert any("default.conf" in " ".join(argv) for argv in plan.argvs())
    # The administrator writes their own default.conf between the plan and its application, and
    # something plants a symlink where null.iso goes.
    (templates / "default.conf").write_text('loader="uefi"\ncpu=8\n')
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    os.symlink(outside, null_iso)
    plan.apply(ctx.host)
    assert (templates / "default.conf").read_text() == 'loader="uefi"\ncpu=8\n'
    assert null_iso.is_symlink() and outside.read_text() == "host file\n"
    assert not [p.name for p in templates.iterdir() if p.name.endswith(".tmp")]
    assert not [p.name for p in (vmdir / ".config").iterdir() if p.name.endswith(".tmp")]


def test_a_missing_default_template_comes_back_whole(vmdir: Path) -> None:
    templates = vmdir / ".templates"
    (templates / "default.conf").unlink()
    ctx = Context()
    plan_init(ctx.store, ctx.host).apply(ctx.host)
    assert (templates / "default.conf").read_text() == shipped_templates()["default"]
    assert sorted(p.name for p in templates.iterdir() if p.name.startswith(".")) == []
