"""The simulated host's jail(8), jls(8), jexec(8) and devfs(8), and what a jailed bhyve can open.

As strict as the real tools: unknown jail parameters, a missing path, a bad boolean, bad
ruleset numbers and missing jails are refused; a bhyve run through jexec sees /dev only through its jail's
devfs ruleset (devfs.rules(5)) and creates a VM only with ``allow.vmm``.
"""

from __future__ import annotations

from pathlib import Path

from tests.simhost.fixture import SimHost

FW = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"


def uefi_vm(name: str) -> list[str]:
    return ["bhyve", "-c", "1", "-m", "256M", "-s", "0,hostbridge", "-s", "31,lpc",
            "-l", f"com1,/dev/nmdm-{name}.1B", "-l", f"bootrom,{FW}", name]


def ruleset(simhost: SimHost, number: int, *unhidden: str) -> None:
    assert simhost.run(["devfs", "rule", "-s", str(number), "add", "hide"]).returncode == 0
    for path in unhidden:
        result = simhost.run(["devfs", "rule", "-s", str(number), "add", "path", path, "unhide"])
        assert result.returncode == 0, result.stderr


def make_jail(simhost: SimHost, tmp_path: Path, name: str, *params: str) -> None:
    root = tmp_path / name
    (root / "dev").mkdir(parents=True)
    result = simhost.run(["jail", "-c", f"name={name}", f"path={root}", "persist", *params])
    assert (result.returncode, result.stdout) == (0, f"{name}: created\n"), result.stderr


def test_jail_refuses_what_jail8_refuses(simhost: SimHost, tmp_path: Path) -> None:
    bad = simhost.call(["jail", "-c", "name=a", f"path={tmp_path}", "allow.nosuch"])
    assert (bad.returncode, bad.stderr) == (1, "jail: unknown parameter: allow.nosuch\n")
    missing = simhost.call(["jail", "-c", "name=a", f"path={tmp_path}/none", "persist"])
    assert missing.returncode == 1 and "No such file or directory" in missing.stderr
    assert simhost.call(["jail", "-c", "name=12", f"path={tmp_path}"]).returncode == 1
    assert simhost.call(["jail", "-c", "name=a", f"path={tmp_path}", "devfs_ruleset=70000"]).returncode == 1
    assert simhost.call(["jail", "-c", "name=a", f"path={tmp_path}", "allow.vmm=2"]).returncode == 1
    assert simhost.jails() == {}
    gone = simhost.call(["jls", "-j", "a", "allow.vmm"])
    assert (gone.returncode, gone.stderr) == (1, 'jls: jail "a" not found\n')
    assert simhost.call(["jail", "-r", "a"]).returncode == 1


def test_devfs_rulesets(simhost: SimHost) -> None:
    assert simhost.call(["devfs", "rule", "-s", "0", "add", "hide"]).returncode == 1
    assert simhost.call(["devfs", "rule", "-s", "65536", "add", "hide"]).returncode == 1
    assert simhost.call(["devfs", "rule", "-s", "7", "add", "bogus"]).returncode == 1
    assert simhost.call(["devfs", "-m", "/nowhere", "rule", "-s", "7", "applyset"]).returncode == 1
    ruleset(simhost, 7, "vmm", "vmm/a")
    assert simhost.call(["devfs", "rule", "showsets"]).stdout == "7\n"
    shown = simhost.call(["devfs", "rule", "-s", "7", "show"]).stdout
    assert shown == "100 hide\n200 path vmm unhide\n300 path vmm/a unhide\n"
    assert simhost.call(["devfs", "rule", "-s", "7", "delset"]).returncode == 0
    assert simhost.call(["devfs", "rule", "showsets"]).stdout == ""


def test_jailed_bhyve_sees_only_its_ruleset(simhost: SimHost, tmp_path: Path) -> None:
    ruleset(simhost, 64000, "null", "vmm", "vmm/a", "nmdm-a.1A", "nmdm-a.1B")
    make_jail(simhost, tmp_path, "ja", "allow.vmm", "mount.devfs", "devfs_ruleset=64000")
    jail = simhost.jails()["ja"]
    assert jail["devfs"] == {"mount": f"{tmp_path}/ja/dev", "ruleset": 64000}
    assert simhost.call(["jls", "-j", "ja", "allow.vmm", "devfs_ruleset", "persist"]).stdout == "true 64000 true\n"
    assert simhost.jail_sees("ja", "/dev/vmm/a") and not simhost.jail_sees("ja", "/dev/vmm/b")
    assert not simhost.jail_sees("ja", "/dev/zvol/zroot/b/disk0")

    proc = simhost.start(["jexec", "ja", *uefi_vm("a")])
    record = simhost.wait_running("a", proc)
    assert record["jail"] == "ja" and record["pid"] == proc.pid  # jexec execs bhyve in the same process

    # the same jail cannot open another guest's VM: created by the kernel, hidden in the jail's /dev
    other = simhost.run(["jexec", "ja", *uefi_vm("b")])
    assert (other.returncode, other.stderr) == (4, "vm_open: No such file or directory\n")
    # nor its console
    ruleset(simhost, 64001, "null", "vmm", "vmm/c")
    make_jail(simhost, tmp_path, "jc", "allow.vmm", "mount.devfs", "devfs_ruleset=64001")
    console = simhost.run(["jexec", "jc", *uefi_vm("c")])
    assert console.returncode == 4 and "Unable to initialize backend '/dev/nmdm-c.1B'" in console.stderr
    # without allow.vmm no VM at all
    make_jail(simhost, tmp_path, "jn", "mount.devfs", "devfs_ruleset=64000")
    denied = simhost.run(["jexec", "jn", *uefi_vm("n")])
    assert (denied.returncode, denied.stderr) == (4, "vm_create: Operation not permitted\n")
    assert not simhost.vm_exists("n")

    removed = simhost.run(["jail", "-r", "ja"])
    assert (removed.returncode, removed.stdout) == (0, "ja: removed\n")
    assert proc.wait(timeout=10) in (1, -15, -9)  # SIGTERM is bhyve's power button; SIGKILL after stop.timeout
    assert "ja" not in simhost.jails() and "a" not in simhost.running()
    assert simhost.run(["jexec", "ja", "true"]).stderr == 'jexec: jail "ja" not found\n'
