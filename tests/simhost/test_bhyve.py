"""The bhyve stand-in rejects what bhyve rejects (usr.sbin/bhyve's messages) and accepts a real command line."""

from __future__ import annotations

import pytest

from tests.simhost.fixture import SimHost

FW = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"
# a command that gets past the VM open on 14.x (boot ROM) with the ROM loaded last (lpc at slot 31)
BOOTABLE = ["-s", "0,hostbridge", "-s", "31,lpc", "-l", f"bootrom,{FW}"]

# (id, arguments before the VM name, name or None, exit status, stderr lines in order (prefixes))
CATALOGUE = [
    ("illegal-option", ["-Z"], "vm", 1, ["bhyve: illegal option -- Z", "Usage: bhyve"]),
    ("missing-argument", ["-s"], None, 1, ["bhyve: option requires an argument -- s", "Usage: bhyve"]),
    ("no-name", [], None, 1, ["Usage: bhyve"]),
    ("two-names", ["a"], "b", 1, ["Usage: bhyve"]),
    ("cpu-topology", ["-c", "foo=1"], "vm", 64, ["bhyve: invalid cpu topology 'foo=1'"]),
    ("topology-mismatch", ["-c", "3,sockets=2"], "vm", 4,
     ["bhyve: Topology (2 sockets, 1 cores, 1 threads) does not match 3 vCPUs"]),
    ("cpus-zero", ["-c", "0"], "vm", 4, ["bhyve: Invalid value for cpus: '0'"]),
    ("memsize", ["-m", "1X"], "vm", 64, ["bhyve: invalid memsize '1X'"]),
    ("pin-format", ["-p", "1"], "vm", 64,
     ["invalid format: 1", "bhyve: invalid vcpu pinning configuration '1'"]),
    ("option-no-equals", ["-o", "foo"], "vm", 64, ["bhyve: invalid configuration option 'foo'"]),
    ("option-empty-value", ["-o", "foo="], "vm", 64, ["bhyve: invalid configuration option 'foo='"]),
    ("lpc-com5", ["-l", "com5,stdio"], "vm", 64, ["bhyve: invalid lpc device configuration 'com5,stdio'"]),
    ("bootrom-no-file", ["-l", "bootrom"], "vm", 4, ['bhyve: invalid bootrom option "bootrom"']),
    ("slot-no-comma", ["-s", "3"], "vm", 4, ['Invalid PCI slot info field "3"']),
    ("slot-range", ["-s", "40,hostbridge"], "vm", 4, ['Invalid PCI slot info field "40,hostbridge"']),
    ("unknown-device", ["-s", "3,foo"], "vm", 4, ['pci slot 0:3:0: unknown device "foo"']),
    ("slot-twice", ["-s", "3,virtio-rnd", "-s", "3:0,hostbridge"], "vm", 4,
     ["pci slot 0:3:0 already occupied!"]),
    ("ahci-no-type", ["-s", "3,ahci,/img"], "vm", 4, ['Missing or invalid type for port 0: "/img"']),
    ("passthru-options", ["-s", "3,passthru,x"], "vm", 4, ['passthru: invalid options "x"']),
    ("virtio-input-no-path", ["-s", "3,virtio-input"], "vm", 4, []),
    ("e1000-no-backend", [*BOOTABLE, "-s", "3,e1000"], "vm", 4, ["Device emulation initialization error: "]),
    ("net-unknown-backend", [*BOOTABLE, "-s", "3,virtio-net,web1"], "vm", 4,
     ["Device emulation initialization error: "]),
    ("net-mtu", [*BOOTABLE, "-s", "3,virtio-net,tap0,mtu=40"], "vm", 4,
     ["Device emulation initialization error: Invalid argument"]),
    ("backing-file", [*BOOTABLE, "-s", "3,virtio-blk,/x"], "vm", 4,
     ["bhyve: Could not open backing file: /x: No such file or directory", "Could not open backing file: ",
      "Device emulation initialization error: "]),
    ("not-bootable-14", ["-s", "0,hostbridge"], "vm", 4, ["virtual machine cannot be booted"]),
    ("passthru-not-wired", [*BOOTABLE, "-s", "3,passthru,ppt0"], "vm", 4,
     ["bhyve: passthru requires guest memory to be wired", "Device emulation initialization error: "]),
    ("too-many-vcpus", ["-c", "8", *BOOTABLE], "vm", 4, ["8 vCPUs requested but only 4 available"]),
    ("config-file-line", ["-k", "f.conf"], "vm", 4, ["bhyve: f.conf line 3: invalid config option 'xyz'"]),
]


@pytest.mark.parametrize(("args", "name", "status", "lines"), [row[1:] for row in CATALOGUE],
                         ids=[row[0] for row in CATALOGUE])
def test_message_catalogue(simhost: SimHost, tmp_path, args, name, status, lines) -> None:
    (tmp_path / "f.conf").write_text("# comment\nmemory.size=1G\nxyz\n")
    argv = ["bhyve", *args, *([name] if name else [])]
    result = simhost.call(argv, cwd=tmp_path)  # in-process; test_wrappers_agree checks the real command
    assert result.returncode == status, result.stderr
    err = result.stderr.splitlines()
    if not lines:
        assert result.stderr == ""
        return
    assert err and err[0].startswith(lines[0]), result.stderr
    position = 0
    for expected in lines:
        while position < len(err) and not err[position].startswith(expected):
            position += 1
        assert position < len(err), f"{expected!r} not found in order in {result.stderr!r}"
    assert not simhost.running()


def test_wrappers_agree_with_in_process_calls(simhost: SimHost, tmp_path) -> None:
    """The catalogue runs in-process for speed; the real commands must give the same answers."""
    for row in (CATALOGUE[0], CATALOGUE[7], CATALOGUE[23]):
        argv = ["bhyve", *row[1], *([row[2]] if row[2] else [])]
        real, direct = simhost.run(argv, cwd=tmp_path), simhost.call(argv, cwd=tmp_path)
        assert (real.returncode, real.stdout, real.stderr) == (
            direct.returncode, direct.stdout, direct.stderr)
        assert real.returncode == row[3]


def test_no_bootrom_on_15(simhost: SimHost) -> None:
    simhost.set_release("15")
    result = simhost.run(["bhyve", "-s", "0,hostbridge", "vm"])
    assert (result.returncode, result.stderr.strip()) == (4, "bhyve: no bootrom was configured")
    assert not simhost.vm_exists("vm")


def test_virtio_console_without_ports_crashes(simhost: SimHost) -> None:
    result = simhost.run(["bhyve", "-s", "3,virtio-console", "vm"])
    assert result.returncode == -11


def test_getopt_rules(simhost: SimHost) -> None:
    # no permutation: an option after the name is a second operand
    assert simhost.run(["bhyve", "vm1", "-m", "1G"]).returncode == 1
    # help and listings exit 0
    help_result = simhost.run(["bhyve", "-h"])
    assert (help_result.returncode, help_result.stderr.split()[0]) == (0, "Usage:")
    slots = simhost.run(["bhyve", "-s", "he"])
    assert slots.returncode == 0 and "virtio-blk" in slots.stdout.split()
    lpc = simhost.run(["bhyve", "-l", ""])
    assert lpc.returncode == 0 and lpc.stdout.split() == ["bootrom", "com1", "com2", "com3", "com4", "tpm",
                                                          "pc-testdev"]
    # -n is a 15 option; 14.x refuses it as an illegal option
    assert "illegal option -- n" in simhost.run(["bhyve", "-n", "id=0,size=1G,cpus=0", "vm"]).stderr


def test_config_dump_and_config_file(simhost: SimHost, tmp_path) -> None:
    conf = tmp_path / "vm.conf"
    conf.write_text("#x\n\ncpus=2\npci.0.4.0.device=virtio-rnd\nmemory.size=512M\n")
    result = simhost.run(["bhyve", "-AHPw", "-m1G", "-k", str(conf), "-c", "4", "-s", "4,hostbridge",
                          "-o", "config.dump=1", "vm9"])
    # -s 4 clashes with the pci.0.4.0 node from the -k file
    assert (result.returncode, result.stderr.strip()) == (4, "pci slot 0:4:0 already occupied!")
    result = simhost.run(["bhyve", "-AHPw", "-m1G", "-k", str(conf), "-c", "4", "-o", "config.dump=1",
                          "vm9"])
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ["acpi_tables=true", "acpi_tables_in_memory=true"]
    assert "memory.size=512M" in lines and "memory.size=1G" not in lines
    assert "x86.vmexit_on_hlt=true" in lines and "x86.strictmsr=false" in lines
    assert "cpus=4" in lines and "pci.0.4.0.device=virtio-rnd" in lines
    assert lines[-1] == "name=vm9"


def test_bad_values_found_after_parsing(simhost: SimHost) -> None:
    ok = [*BOOTABLE, "-s", "4,virtio-rnd"]
    cases = [
        (["-c", "4,cores=2"], 4, "bhyve: Topology (4 sockets, 2 cores, 1 threads) does not match 4 vCPUs"),
        (["-c", "sockets=1,cores=2,threads=2", "-m", "4095b"], 4, "Unable to setup memory (22)"),
        (["-s", "5,virtio-net,tap0,mac=01:00:00:00:00:01"], 4, "Invalid MAC 01:00:00:00:00:01"),
        (["-s", "5,fbuf,tcp=0.0.0.0:5900,w=5000,h=768"], 4, "fbuf: max resolution is 3840x2160"),
        (["-s", "5,xhci,mouse"], 4, 'pci_xhci: unknown device model "mouse"'),
        (["-s", "5,virtio-blk,/dev/null,ro=maybe"], 4, "bhyve: Invalid value maybe for boolean variable ro"),
        (["-U", "4fd3b5c0-64cc-11ee-f000-589cfc000001"], 4, ""),
        (["-l", "com1,/dev/nmdm0A", "-l", "com2,/dev/tty-nonexistent"], 4,
         "Unable to initialize backend '/dev/tty-nonexistent' for LPC device com2"),
    ]
    for extra, status, first in cases:
        result = simhost.run(["bhyve", *ok, *extra, "vmx"])
        assert result.returncode == status, (extra, result.stderr)
        assert result.stderr.startswith(first), (extra, result.stderr)
    # a failure after the VM was opened leaves /dev/vmm/NAME behind (bhyve never destroys it)
    assert simhost.vm_exists("vmx")
    assert not simhost.path("/dev/nmdm0A").exists()


def test_full_vm_bhyve_invocation(simhost: SimHost, tmp_path) -> None:
    disk = tmp_path / "disk0.img"
    assert simhost.run(["truncate", "-s", "2G", str(disk)]).returncode == 0
    assert simhost.run(["ifconfig", "tap", "create"]).stdout == "tap0\n"
    argv = ["bhyve", "-c", "2", "-m", "1G", "-AHPw", "-U", "5d2a3c3e-1b6e-11ef-9c0c-589cfc000001", "-u",
            "-s", "0,hostbridge", "-s", "31,lpc", "-s", f"4:0,virtio-blk,{disk}",
            "-s", "5:0,virtio-net,tap0,mac=58:9c:fc:00:00:01", "-l", "com1,/dev/nmdm-vm1.1A",
            "-l", f"bootrom,{FW}", "vm1"]
    proc = simhost.start(argv)
    rec = simhost.wait_running("vm1", proc)
    assert rec["argv"] == argv
    assert (rec["cpus"], rec["memsize"], rec["taps"]) == (2, 1 << 30, ["tap0"])
    assert simhost.vm_exists("vm1")
    assert simhost.path("/dev/nmdm-vm1.1A").exists() and simhost.path("/dev/nmdm-vm1.1B").exists()
    assert {"UP", "RUNNING"} <= set(simhost.interfaces()["tap0"]["flags"])
    # the same VM cannot be started twice; a tap can be opened once
    again = simhost.run([*argv[:-1], "vm2"])
    assert again.returncode == 4 and "open of tap device /dev/tap0 failed" in again.stderr
    simhost.exit_guest("vm1", 0)
    assert proc.wait(timeout=10) == 0
    assert not simhost.running() and simhost.vm_exists("vm1")
    assert not simhost.path("/dev/nmdm-vm1.1A").exists()
    assert "RUNNING" not in simhost.interfaces()["tap0"]["flags"]
    # a renamed tap matches no backend prefix: it needs an explicit type=tap (usr.sbin/bhyve/net_backends.c)
    assert simhost.run(["ifconfig", "tap0", "name", "web1"]).stdout == "web1\n"
    renamed = [*argv[:-1], "vm1"]
    renamed[renamed.index("5:0,virtio-net,tap0,mac=58:9c:fc:00:00:01")] = "5:0,virtio-net,web1"
    refused = simhost.call(renamed)
    assert (refused.returncode, refused.stderr) == (
        4, "Device emulation initialization error: Invalid argument\n")
    renamed[renamed.index("5:0,virtio-net,web1")] = "5:0,virtio-net,web1,type=tap"
    proc = simhost.start(renamed)
    assert simhost.wait_running("vm1", proc)["taps"] == ["web1"]
    simhost.exit_guest("vm1", 2)
    assert proc.wait(timeout=10) == 2
