"""``backup`` prunes with the same retention grammar as ``snapshot prune`` (hivectl/retention), real files."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import hivectl

OLDER = ("20261101T100000.000000Z", "20261101T200000.000000Z", "20261102T100000.000000Z",
         "20261102T200000.000000Z")


def backups_dated(vmdir: Path, target: Path, guest: str) -> list[str]:
    """Four backups of ``guest`` whose file names say they were written on Nov 1 and 2 (10:00 and 20:00)."""
    names = []
    for stamp in OLDER:
        made = hivectl("backup", "--to", str(target), guest)
        assert made.status == 0, made.err
        path = Path(made.out.strip())
        dated = path.with_name(path.name.replace(path.name.split(".")[1] + "." + path.name.split(".")[2], stamp))
        path.rename(dated)
        path.with_name(path.name + ".sha256").rename(dated.with_name(dated.name + ".sha256"))
        names.append(dated.name)
    return names


def test_a_daily_policy_keeps_the_newest_backup_of_each_day(vmdir: Path, tmp_path: Path) -> None:
    """--policy keep-daily=3 keeps today's new backup, Nov 2 at 20:00 and Nov 1 at 20:00 (keep-last=3, the old
    --keep 3, would have kept Nov 2 at 10:00 instead of Nov 1)."""
    assert hivectl("create", "-s", "1M", "k").status == 0
    target = tmp_path / "out"
    target.mkdir()
    older = backups_dated(vmdir, target, "k")
    result = hivectl("backup", "--to", str(target), "--policy", "keep-daily=3", "k")
    assert result.status == 0, result.err
    new = Path(result.out.strip()).name
    left = sorted(p.name for p in target.iterdir() if not p.name.endswith(".sha256"))
    assert left == sorted([new, older[3], older[1]])


def test_keep_and_a_policy_are_one_or_the_other(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "k").status == 0
    mixed = hivectl("backup", "--to", str(tmp_path), "--keep", "2", "--policy", "keep-daily=2", "k")
    assert mixed.status != 0 and "cannot be mixed" in mixed.err, mixed.err
    bad = hivectl("backup", "--to", str(tmp_path), "--policy", "keep-daily=two", "k")
    assert bad.status != 0 and "--policy" in bad.err and "keep-daily='two'" in bad.err, bad.err
    assert list(tmp_path.glob("k.*")) == []
