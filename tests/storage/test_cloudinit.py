"""cloud-init seeds: ``create -C`` writes vm-bhyve's files, seed.iso reads back right and is rebuilt."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pycdlib
import pytest

from hivectl.rcfile import RcFile, read_values
from hivectl.storage.cloudinit import ensure_seed
from hivectl.store import Datastore, GuestRef
from tests.cli_helpers import hivectl, tree

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq6p2x6rJ2b0J0yVq9Yy8Gx4g6nq7mD1cD4bOe9m5Zt admin@example"


def read_seed(path: Path) -> tuple[dict[str, bytes], dict[str, bytes], str]:
    """Files by Rock Ridge name and by Joliet name, and the volume label."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        rock, joliet = {}, {}
        for child in iso.list_children(rr_path="/"):
            if child.is_file():
                name = child.rock_ridge.name().decode()
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, rr_path="/" + name)
                rock[name] = out.getvalue()
        for child in iso.list_children(joliet_path="/"):
            if child.is_file():
                name = child.file_identifier().decode("utf-16-be")
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, joliet_path="/" + name)
                joliet[name] = out.getvalue()
        label = iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()
    return rock, joliet, label


def _ref(vmdir: Path, name: str) -> GuestRef:
    return GuestRef(name, Datastore("default", "directory", str(vmdir), vmdir))


def test_create_with_keys_and_network(vmdir: Path, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.pub"
    keyfile.write_text(f"# my keys\n\n{KEY}\n")
    result = hivectl("create", "-C", "-k", str(keyfile), "-n",
                     "ip=10.0.0.5/24,fd00::5/64;gateway4=10.0.0.1;gateway6=fd00::1;nameservers=10.0.0.1,1.1.1.1;"
                     "searchdomains=lan,example.org;hostname=web-1", "web")
    assert result.status == 0, result.err
    guest = vmdir / "web"
    values = read_values(guest / "web.conf")
    assert (values["disk1_type"], values["disk1_name"], values["disk1_dev"]) == ("ahci-cd", "seed.iso", "file")
    files = {n: (guest / ".cloud-init" / n).read_text() for n in ("meta-data", "user-data", "network-config")}
    assert f"instance-id: {values['uuid']}\nlocal-hostname: web-1\n" in files["meta-data"]
    assert files["user-data"].startswith("#cloud-config\n")
    assert f'ssh_authorized_keys:\n  - "{KEY}"\n' in files["user-data"]
    net = files["network-config"]
    assert f'macaddress: "{values["network0_mac"]}"' in net and 'set-name: "eth0"' in net
    assert 'via: "10.0.0.1"' in net and 'to: "::/0"' in net and "gateway4" not in net.split("\n", 2)[2]
    assert "dhcp4: false" in net and 'search: ["lan", "example.org"]' in net
    assert (guest / ".cloud-init").stat().st_mode & 0o777 == 0o700
    assert (guest / ".cloud-init" / "user-data").stat().st_mode & 0o777 == 0o600
    rock, joliet, label = read_seed(guest / "seed.iso")
    expected = {n: t.encode() for n, t in files.items()}
    assert rock == expected and joliet == expected
    assert label == "cidata"
    assert ensure_seed(_ref(vmdir, "web")) is None, "a fresh seed needs no rebuild"


def test_seed_is_rebuilt_after_a_mac_change_and_a_new_nic(vmdir: Path) -> None:
    assert hivectl("create", "-C", "web").status == 0
    ref = _ref(vmdir, "web")
    conf = RcFile.load(ref.conf_path)
    time.sleep(0.01)
    conf.set("network0_mac", "58:9c:fc:0a:bb:cc")
    conf.save()
    action = ensure_seed(ref)
    assert action is not None and action.argv()[:3] == ["makefs", "-t", "cd9660"]
    action.apply(None)  # type: ignore[arg-type]  # in-process; the host is not used
    rock, _, _ = read_seed(vmdir / "web" / "seed.iso")
    assert b'macaddress: "58:9c:fc:0a:bb:cc"' in rock["network-config"]
    assert ensure_seed(ref) is None
    # a second NIC (with its MAC) appears in network-config after the next rebuild
    assert hivectl("add", "-d", "network", "-s", "lan", "web").status == 0
    action = ensure_seed(ref)
    assert action is not None
    action.apply(None)  # type: ignore[arg-type]
    mac1 = read_values(ref.conf_path)["network1_mac"]
    rock, _, _ = read_seed(vmdir / "web" / "seed.iso")
    assert f'macaddress: "{mac1}"'.encode() in rock["network-config"]
    # a hand edit of user-data is newer than the seed: rebuilt, and never overwritten
    user = vmdir / "web" / ".cloud-init" / "user-data"
    time.sleep(0.01)
    user.write_text("#cloud-config\npackages: [nginx]\n")
    action = ensure_seed(ref)
    assert action is not None
    action.apply(None)  # type: ignore[arg-type]
    assert read_seed(vmdir / "web" / "seed.iso")[0]["user-data"] == b"#cloud-config\npackages: [nginx]\n"


def test_hand_edited_network_config_is_kept(vmdir: Path) -> None:
    assert hivectl("create", "-C", "web").status == 0
    path = vmdir / "web" / ".cloud-init" / "network-config"
    path.write_text("version: 2\nethernets: {}\n")  # the generated-marker line is gone
    ref = _ref(vmdir, "web")
    conf = RcFile.load(ref.conf_path)
    conf.set("network0_mac", "58:9c:fc:0a:bb:cd")
    conf.save()
    os.utime(path, (time.time() - 100, time.time() - 100))
    action = ensure_seed(ref)
    assert action is not None
    action.apply(None)  # type: ignore[arg-type]
    assert path.read_text() == "version: 2\nethernets: {}\n"


def test_user_data_file_and_one_n_per_nic(vmdir: Path, tmp_path: Path) -> None:
    template = vmdir / ".templates" / "two.conf"
    template.write_text('loader="uefi"\ncpu=1\nmemory=512M\nnetwork0_type="virtio-net"\nnetwork0_switch="a"\n'
                        'network1_type="virtio-net"\nnetwork1_switch="b"\ndisk0_type="virtio-blk"\n'
                        'disk0_name="disk0.img"\ndisk0_size="1G"\n')
    user = tmp_path / "user.yaml"
    user.write_text("#cloud-config\nusers: [default]\n")
    result = hivectl("create", "-t", "two", "-C", "-u", str(user), "-n", "ip=192.0.2.10/24;gateway4=192.0.2.1",
                     "-n", "interface=eth9;ip=198.51.100.7/24", "dual")
    assert result.status == 0, result.err
    values = read_values(vmdir / "dual" / "dual.conf")
    assert values["network1_mac"].startswith("58:9c:fc:0"), "every NIC gets a MAC so cloud-init can match it"
    rock, _, _ = read_seed(vmdir / "dual" / "seed.iso")
    assert rock["user-data"] == user.read_bytes()
    net = rock["network-config"].decode()
    assert f'macaddress: "{values["network1_mac"]}"' in net and 'set-name: "eth9"' in net
    assert '"198.51.100.7/24"' in net and '"192.0.2.10/24"' in net
    too_many = hivectl("create", "-C", "-n", "ip=192.0.2.9/24", "-n", "ip=192.0.2.8/24", "single")
    assert too_many.status != 0 and "network interfaces" in too_many.err
    assert not (vmdir / "single").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["-C", "-n", "gateway=10.0.0.1"], "unknown key 'gateway'"),
    (["-C", "-n", "ip=10.0.0.300/24"], "ip"),
    (["-C", "-n", "ip=fd00::1/64;gateway4=10.0.0.1"], "needs a static IPv4 address"),
    (["-C", "-n", "nameservers=dns.example"], "nameservers"),
    (["-C", "-n", "ip=10.0.0.2/24;ip=10.0.0.3/24"], "given twice"),
    (["-n", "ip=10.0.0.2/24"], "need -C"),
    (["-C", "-k", "/nonexistent/key", "-u", "/etc/hostname"], "cannot be used together"),
    (["-C", "-k", "/etc/hostname"], "not an OpenSSH public key"),
])
def test_invalid_cloud_init_options_change_nothing(vmdir: Path, args: list[str], message: str) -> None:
    before = tree(vmdir)
    result = hivectl("create", *args, "bad")
    assert result.status != 0 and message in result.err, result.err
    assert tree(vmdir) == before


def test_dry_run_shows_the_seed_and_makes_nothing(vmdir: Path) -> None:
    before = tree(vmdir)
    result = hivectl("create", "--dry-run", "-C", "web")
    assert result.status == 0
    staging = json.loads(result.out.splitlines()[0])[-1]  # built in a hidden staging directory, then renamed
    assert f'["makefs", "-t", "cd9660", "-o", "R,L=cidata", "{staging}/seed.iso", "{staging}/.cloud-init"]' \
        in result.out
    assert tree(vmdir) == before
