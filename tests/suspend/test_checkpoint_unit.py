"""The stale-save checks of hivectl/drivers/checkpoint.py on real files (no hypervisor needed)."""

from __future__ import annotations

import os
from pathlib import Path

from hivectl.context import Context
from hivectl.drivers import checkpoint
from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl


def _suspended(vmdir: Path, driver: str = "bhyve") -> tuple[Context, checkpoint.Save]:
    assert hivectl("create", "-s", "64M", "g").status == 0
    ctx = Context()
    ref = ctx.store.get("g")
    for suffix in checkpoint.PARTS[driver]:
        ref.layout.save_file(suffix).write_bytes(b"state")
    config = ref.config()
    checkpoint.write_record(ref, driver, checkpoint.machine(config), checkpoint.disk_stamps(ctx.host, ref, config))
    save = checkpoint.find(ref)
    assert save is not None
    return ctx, save


def test_a_fresh_save_fits_and_every_kind_of_change_is_named(vmdir: Path) -> None:
    ctx, save = _suspended(vmdir)
    ref = save.ref
    assert checkpoint.problems(ctx.host, save, ref.config(), "bhyve") == []
    assert "written by bhyve" in checkpoint.problems(ctx.host, save, ref.config(), "qemu")[0]

    conf = RcFile.load(ref.layout.config)
    conf.set("tags", "prod")  # not part of the machine
    conf.save()
    assert checkpoint.problems(ctx.host, save, ref.config(), "bhyve") == []
    conf.set("memory", "2G")
    conf.set("disk1_name", "extra.img")
    conf.save()
    found = checkpoint.problems(ctx.host, save, ref.config(), "bhyve")
    assert len(found) == 1 and "disk1_name (- -> extra.img)" in found[0] and "memory (" in found[0], found

    conf.set("memory", save.record["machine"]["memory"])  # type: ignore[index]
    conf.unset("disk1_name")
    conf.save()
    disk = ref.directory / "disk0.img"
    stamp = disk.stat()
    os.utime(disk, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))
    found = checkpoint.problems(ctx.host, save, ref.config(), "bhyve")
    assert any(f"disk0 ({disk}) was written since the save" in p for p in found), found


def test_an_incomplete_or_damaged_save_is_refused_and_discard_keeps_every_file(vmdir: Path) -> None:
    ctx, save = _suspended(vmdir)
    ref = save.ref
    ref.layout.save_file(".kern").unlink()
    assert "incomplete: g.save.kern missing" in checkpoint.problems(ctx.host, save, ref.config(), "bhyve")[0]
    ref.layout.save_file(".hivectl").write_text("{not json")
    damaged = checkpoint.find(ref)
    assert damaged is not None
    assert "is damaged" in checkpoint.problems(ctx.host, damaged, ref.config(), "bhyve")[0]

    before = sorted(p.name for p in damaged.files())
    target = checkpoint.discard_target(ref, when=0)
    moved = checkpoint.discard(damaged, target)
    assert target.name == "g.save.discarded-19700101T000000"
    assert sorted(p.name for p in moved) == before and all(p.is_file() for p in moved)
    assert checkpoint.find(ref) is None
    assert checkpoint.discard_target(ref, when=0).name.endswith(".2"), "a second discard never overwrites"
