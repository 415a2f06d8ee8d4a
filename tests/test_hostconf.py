"""Host settings files (hivectl/hostconf.py): which files, in which order, as vm-bhyve's rc.subr reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivectl import hostconf
from hivectl.errors import ConfigError


def test_freebsd_reads_rc_conf_then_the_service_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_rc_config vm: rc.conf, rc.conf.local, /etc/rc.conf.d/vm, /usr/local/etc/rc.conf.d/vm; later wins."""
    monkeypatch.delenv("HIVECTL_RC_CONF", raising=False)
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    monkeypatch.setenv("HIVECTL_PLATFORM", "freebsd")
    assert hostconf.rc_files() == [Path("/etc/rc.conf"), Path("/etc/rc.conf.local"), Path("/etc/rc.conf.d/vm"),
                                   Path("/usr/local/etc/rc.conf.d/vm")]
    files = [tmp_path / "rc.conf", tmp_path / "rc.conf.local", tmp_path / "etc.d" / "vm",
             tmp_path / "local.d" / "vm"]
    monkeypatch.setattr(hostconf, "FREEBSD_FILES", tuple(files))
    files[0].write_text('vm_enable="YES"\nvm_dir="/vm"\nvm_list="a"\nvm_delay="4"\n')
    files[2].parent.mkdir()
    files[2].write_text('vm_dir="zfs:tank/vm"\nvm_list="a b"\n')
    settings = hostconf.load_settings()
    assert (settings.vm_dir, settings.vm_list, settings.vm_delay) == ("zfs:tank/vm", ["a", "b"], 4)
    assert not settings.disable_host_checks
    files[3].mkdir(parents=True)  # rc.conf.d/vm may be a directory: its files in name order
    (files[3] / "20-checks").write_text('vm_disable_host_checks="yes"\nvm_delay="x"\n')
    (files[3] / "10-list").write_text('vm_list="c"\nvm_delay="9"\n')
    (files[3] / ".hidden").write_text('vm_list="hidden"\n')
    with pytest.raises(ConfigError, match="20-checks: vm_delay='x'"):
        hostconf.load_settings()  # the error names the file that set the value
    (files[3] / "20-checks").write_text('vm_disable_host_checks="yes"\n')
    settings = hostconf.load_settings()
    assert (settings.vm_list, settings.vm_delay, settings.disable_host_checks) == (["c"], 9, True)
    assert hostconf.rc_files()[-2:] == [files[3] / "10-list", files[3] / "20-checks"]


def test_the_environment_names_several_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text('vm_dir="/first"\nvm_delay="1"\n')
    second.write_text('vm_delay="6"\n')
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    monkeypatch.setenv("HIVECTL_RC_CONF", f"{first}:{second}")
    settings = hostconf.load_settings()
    assert (settings.vm_dir, settings.vm_delay) == ("/first", 6)
    assert settings.source == f"{first} + {second}"
