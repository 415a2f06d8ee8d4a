"""bhyveload and grub-bhyve: grammar, checks, and the VM they leave for bhyve (bhyveload(8), grub2-bhyve)."""

from __future__ import annotations

from tests.simhost.fixture import SimHost


def test_bhyveload_then_bhyve(simhost: SimHost, tmp_path) -> None:
    disk = tmp_path / "disk0.img"
    disk.write_bytes(b"")
    argv = ["bhyveload", "-c", "/dev/nmdm-vm1.1A", "-m", "1G", "-e", "autoboot_delay=3",
            "-e", "bhyve_vm_name=vm1", "-d", str(disk), "vm1"]
    result = simhost.run(argv)
    assert (result.returncode, result.stderr) == (0, "")
    assert simhost.vm_exists("vm1")
    run = simhost.loader_runs()[-1]
    assert (run["tool"], run["argv"], run["status"], run["memsize"]) == ("bhyveload", argv, 0, 1 << 30)
    assert run["env"] == ["autoboot_delay=3", "bhyve_vm_name=vm1"]
    assert not simhost.path("/dev/nmdm-vm1.1A").exists()  # the console pair goes with the loader
    # bhyve without a boot ROM runs the loaded VM, but only with the same memory size
    base = ["bhyve", "-c", "1", "-AHPw", "-s", "0,hostbridge", "-s", "31,lpc", "-s", f"4,virtio-blk,{disk}"]
    mismatch = simhost.run([*base, "-m", "512M", "vm1"])
    assert (mismatch.returncode, mismatch.stderr) == (4, "Unable to setup memory (22)\n")
    proc = simhost.start([*base, "-m", "1G", "vm1"])
    simhost.wait_running("vm1", proc)
    busy = simhost.run(argv)  # the loader cannot reinitialise a VM whose bhyve runs
    assert (busy.returncode, busy.stderr) == (1, "vm_reinit: Device busy\n")
    simhost.exit_guest("vm1", 0)
    assert proc.wait(timeout=10) == 0
    simhost.loader_exit("vm1", 2)
    assert simhost.run(argv).returncode == 2
    assert [r["status"] for r in simhost.loader_runs()] == [0, 1, 2]


def test_bhyveload_rejects(simhost: SimHost, tmp_path) -> None:
    disk = tmp_path / "d.img"
    disk.write_bytes(b"")
    cases = [
        (["-d", "/nonexistent", "vm"], 64, "bhyveload: Could not open '/nonexistent'"),
        (["-m", "1Q", "-d", str(disk), "vm"], 64, "bhyveload: Invalid memsize '1Q'"),
        (["-c", str(disk), "-d", str(disk), "vm"], 64, f"bhyveload: Could not open '{disk}'"),
        (["-l", "/boot/userboot.so", "-l", "/boot/userboot.so", "vm"], 64,
         "bhyveload: -l can only be given once"),
        (["-k", "x", "vm"], 1, "bhyveload: illegal option -- k"),
        (["-d", str(disk)], 1, "usage: bhyveload"),
        (["vm", "-m", "1G"], 1, "usage: bhyveload"),
    ]
    for args, status, first in cases:
        result = simhost.call(["bhyveload", *args])  # in-process: the table is about the parser
        assert result.returncode == status and result.stderr.startswith(first), (args, result.stderr)
    assert not simhost.vm_exists("vm")
    # "stdio" is allowed so that the same string can serve bhyveload and bhyve's -l com1
    assert simhost.call(["bhyveload", "-c", "stdio", "-d", str(disk), "vm2"]).returncode == 0
    simhost.unload_module("vmm")
    result = simhost.run(["bhyveload", "-d", str(disk), "vm"])
    assert (result.returncode, result.stderr) == (1, "vm_create: No such file or directory\n")


def test_grub_bhyve(simhost: SimHost, tmp_path) -> None:
    disk = tmp_path / "disk0.img"
    disk.write_bytes(b"")
    device_map = tmp_path / "device.map"
    device_map.write_text(f"(hd0) {disk}\n(cd0) {tmp_path / 'missing.iso'}\n")
    args = ["-c", "/dev/nmdm-lx.1A", "-m", str(device_map), "-r", "hd0,msdos1", "-M", "1G", "lx"]
    bad_map = simhost.run(["grub-bhyve", *args])
    assert bad_map.returncode == 1 and "cannot get the real path of" in bad_map.stderr
    device_map.write_text(f"(hd0) {disk}\n")
    # argp permutes: options may follow the VM name
    result = simhost.run(["grub-bhyve", "lx", *args[:-1]])
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert simhost.vm_exists("lx") and simhost.loader_runs()[-1]["root"] == "hd0,msdos1"
    cases = [
        (["-M", "1X", "lx"], 1,
         ["Invalid guest memory size `1X'.", "Error in parsing command line arguments"]),
        (["-Z", "lx"], 64, ["grub-bhyve: invalid option -- 'Z'"]),
        (["--evga=1", "lx"], 64, ["grub-bhyve: option '--evga' doesn't allow an argument"]),
        (["--d", "/x", "lx"], 64, ["grub-bhyve: option '--d' is ambiguous; possibilities: '--device-map' "
                                   "'--directory'"]),
        (["-M", "1G"], 1, ["grub-bhyve: Required VM name parameter not supplied"]),
        (["-r", "host", "-d", str(tmp_path), "-M", "1G", "lx"], 1, [f"grub-bhyve: error: file `{tmp_path}/"
                                                                     "grub.cfg' not found."]),
        (["-m", str(device_map), "-r", "cd0", "-M", "1G", "lx"], 1,
         ["grub-bhyve: error: disk `cd0' not found."]),
        (["-r", "host", "-d", str(tmp_path), "-M", "2G", "lx"], 1,
         ["Could not setup memory for VM", "Error in initializing VM"]),
    ]
    for extra, status, lines in cases:
        result = simhost.call(["grub-bhyve", *extra])
        assert result.returncode == status, (extra, result.stderr)
        assert result.stderr.splitlines()[:len(lines)] == lines, (extra, result.stderr)
    (tmp_path / "grub.cfg").write_text("timeout=0\nmenuentry 'lx' {\n linux /vmlinuz\n}\n")
    ok = simhost.run(["grub-bhyve", "-r", "host", "-d", str(tmp_path), "-M", "1024", "-S", "lx", "-H5"])
    assert ok.returncode == 0, ok.stderr
