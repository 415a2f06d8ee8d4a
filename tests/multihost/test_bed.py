"""The bed itself: each namespace host is reached over ssh with the bed's key only, hosts reach each
other, each has its own vm_dir and platform, and nothing of the bed is left after it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.multihost.bed import Bed, make_bed, netns_pids


def _ssh(bed: Bed, address: str, *words: str, identity: Path | None = None,
         via: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
            "-o", f"UserKnownHostsFile={bed.known_hosts}", "-o", "IdentitiesOnly=yes",
            "-i", str(identity or bed.identity), f"root@{address}", *words]
    return subprocess.run([*(via or []), *argv], capture_output=True, text=True, timeout=30, check=False)


def test_each_host_is_its_own_hivectl_over_ssh(bed: Bed) -> None:
    a, b = bed["a"], bed["b"]
    a.ok("create", "only-on-a")
    try:
        over_a = _ssh(bed, a.address, str(a.command), "list")
        over_b = _ssh(bed, b.address, str(b.command), "list")
        assert over_a.returncode == 0 and over_b.returncode == 0, over_a.stderr + over_b.stderr
        assert "only-on-a" in over_a.stdout and "only-on-a" not in over_b.stdout
        assert (a.vm_dir / "only-on-a" / "only-on-a.conf").is_file() and not (b.vm_dir / "only-on-a").exists()
        assert a.sim is not None and b.sim is not None and a.sim.root != b.sim.root
    finally:
        a.ok("destroy", "-f", "only-on-a")


def test_hosts_reach_each_other(bed: Bed) -> None:
    a, b = bed["a"], bed["b"]
    done = _ssh(bed, b.address, str(b.command), "version", via=a.nsenter([]))
    assert done.returncode == 0, done.stderr
    assert "hivectl" in done.stdout


def test_only_the_bed_key_logs_in(bed: Bed, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    done = _ssh(bed, bed["a"].address, "true", identity=stranger)
    assert done.returncode == 255 and "Permission denied" in done.stderr


def test_down_and_up(bed: Bed) -> None:
    b = bed["b"]
    b.down()
    try:
        refused = _ssh(bed, b.address, "true")
        assert refused.returncode == 255, refused
    finally:
        b.up()
    assert _ssh(bed, b.address, "true").returncode == 0


def test_nothing_left_after_the_bed(tmp_path: Path) -> None:
    with make_bed(tmp_path / "bed", ["x"]) as bed:
        netns, bridge = bed["x"].netns, bed.bridge
        assert netns_pids(netns)  # its sshd
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert netns not in listed and bridge not in links and netns not in links
