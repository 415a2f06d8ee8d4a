"""Reproducers of issue 10's confinement and value defects, each against the shared mechanism."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.model import keys
from hivectl.safety import paths
from hivectl.safety.values import OptionInjection, bhyve_token


def test_planted_symlink_run_time_file_is_refused_and_target_untouched(tmp_path: Path) -> None:
    guest = tmp_path / "g"
    guest.mkdir()
    disk = guest / "disk0.img"
    disk.write_bytes(b"x" * 4096)
    (guest / "restart").symlink_to(disk)
    with pytest.raises(paths.UnsafePath, match="symbolic link"):
        paths.write_file(guest, guest / "restart", "")
    assert disk.stat().st_size == 4096


def test_symlinked_guest_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "g").symlink_to(real)
    with pytest.raises(paths.UnsafePath, match="symbolic link"):
        paths.real_directory(tmp_path / "g")


def test_graphics_listen_scope_id_cannot_add_fbuf_options() -> None:
    with pytest.raises(ConfigError, match="scope id"):
        keys.check(None, "graphics_listen", "::1%x,rfb=0.0.0.0:5999,j")
    with pytest.raises(OptionInjection):
        bhyve_token("[::1%x,rfb=0.0.0.0:5999,j]:5900")


@pytest.mark.parametrize(("key", "value"), [("diskN_opts", "path=/etc/passwd"), ("zfs_zvol_opts", "volmode=geom"),
                                            ("zfs_dataset_opts", "mountpoint=/etc"), ("cpu", "1\u2028x=1")])
def test_owned_options_and_line_breaks_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError):
        keys.check(None, key.replace("N", "0"), value)


def test_huge_sizes_are_one_error() -> None:
    with pytest.raises(ConfigError):
        validate.disk_size(None, "-s", "9" * 40 + "G")
    with pytest.raises(ConfigError):
        validate.disk_size(None, "-s", "9000000P")
