"""Every ZFS path against the simulated FreeBSD host: the argv must be accepted by the sim's zfs and the
sim's datasets must show the result."""

from __future__ import annotations

import json
from pathlib import Path

from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl, tree
from tests.lifecycle_helpers import running_stand_in
from tests.storage.zfsfixture import ZfsVm


def test_create_zvol_and_sparse_zvol_guests(zfsvm: ZfsVm) -> None:
    template = zfsvm.root / ".templates" / "thick.conf"
    template.write_text((zfsvm.root / ".templates" / "freebsd-zvol.conf").read_text().replace("sparse-zvol", "zvol"))
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "2G", "thin").status == 0
    assert hivectl("create", "-t", "thick", "-s", "1G", "thick").status == 0
    data = zfsvm.host.datasets()
    assert data["zroot/vm/thin/disk0"]["props"]["volsize"] == str(2 << 30)
    assert "refreservation" not in data["zroot/vm/thin/disk0"]["props"]
    assert data["zroot/vm/thick/disk0"]["props"]["refreservation"] == str(1 << 30)
    assert data["zroot/vm/thin/disk0"]["props"]["volmode"] == "dev"


def test_snapshot_rollback_destroy_and_info(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    conf = zfsvm.root / "web" / "web.conf"
    taken = hivectl("snapshot", "web@before")
    assert taken.status == 0 and taken.out.strip() == "web@before"
    assert {"zroot/vm/web@before", "zroot/vm/web/disk0@before"} <= zfsvm.datasets()
    default = hivectl("snapshot", "web").out.strip()
    assert default.startswith("web@20") and len(default) == len("web@2025-01-01-00:00:00")
    assert hivectl("snapshot", "web@before").status == 1
    conf.write_text(conf.read_text() + 'cpu="8"\n')
    refused = hivectl("rollback", "web@before")
    assert refused.status == 1 and "use -r" in refused.err and default.split("@")[1] in refused.err
    assert hivectl("rollback", "-r", "web@before").status == 0
    assert 'cpu="8"' not in conf.read_text()
    assert f"zroot/vm/{default}" not in zfsvm.datasets()
    info = hivectl("info", "--json", "web").json()
    assert [s["name"] for s in info["snapshots"]] == ["before"]
    assert set(info["snapshots"][0]) == {"name", "creation", "used"}
    assert hivectl("destroy", "web@before").status == 0
    assert not {"zroot/vm/web@before", "zroot/vm/web/disk0@before"} & zfsvm.datasets()
    assert hivectl("destroy", "web@nosuch").status == 1


def test_snapshot_of_a_running_guest_needs_f(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "run").status == 0
    with running_stand_in(zfsvm.root / "run", "run"):
        refused = hivectl("snapshot", "run@a")
        assert refused.status == 1 and "-f" in refused.err, refused.err
        assert hivectl("snapshot", "-f", "run@a").status == 0


def test_clone_gets_new_identity(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "-C", "web").status == 0
    assert hivectl("snapshot", "web@gold").status == 0
    assert hivectl("clone", "web@gold", "web2").status == 0
    assert hivectl("clone", "web", "web3").status == 0
    data = zfsvm.host.datasets()
    assert data["zroot/vm/web2"]["origin"] == "zroot/vm/web@gold"
    assert data["zroot/vm/web2/disk0"]["origin"] == "zroot/vm/web/disk0@gold"
    assert data["zroot/vm/web3"]["origin"].startswith("zroot/vm/web@")
    old = read_values(zfsvm.root / "web" / "web.conf")
    for name in ("web2", "web3"):
        new = read_values(zfsvm.root / name / f"{name}.conf")
        assert not (zfsvm.root / name / "web.conf").exists()
        assert new["uuid"] != old["uuid"] and new["network0_mac"] != old["network0_mac"]
        meta = (zfsvm.root / name / ".cloud-init" / "meta-data").read_text()
        assert f"instance-id: {new['uuid']}" in meta and f"local-hostname: {name}" in meta
        assert new["network0_mac"] in (zfsvm.root / name / ".cloud-init" / "network-config").read_text()
    bad = hivectl("clone", "web", "../evil")
    assert bad.status == 1 and "guest name" in bad.err


def test_failed_clone_leaves_nothing(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    before = zfsvm.datasets()
    zfsvm.fail_next("clone", "cannot create 'zroot/vm/web2': out of space")
    result = hivectl("clone", "web", "web2")
    assert result.status == 1 and "out of space" in result.err
    assert zfsvm.datasets() == before, "the snapshot taken for the clone is destroyed again"
    assert not (zfsvm.root / "web2").exists()


def test_resize_zvol_grows_only(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    assert hivectl("disk", "resize", "web", "disk0", "+1G").status == 0
    assert zfsvm.host.datasets()["zroot/vm/web/disk0"]["props"]["volsize"] == str(2 << 30)
    assert zfsvm.host.path("/dev/zvol/zroot/vm/web/disk0").stat().st_size == 2 << 30
    shrink = hivectl("disk", "resize", "web", "0", "1G")
    assert shrink.status == 1 and "can only grow" in shrink.err


def test_image_create_provision_destroy(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "-C", "gold").status == 0
    with open(zfsvm.host.path("/dev/zvol/zroot/vm/gold/disk0"), "r+b") as disk:
        disk.write(b"GOLDEN-IMAGE" * 100)
    made = hivectl("image", "create", "-d", "golden image", "gold")
    assert made.status == 0, made.err
    uuid = made.out.strip()
    images = zfsvm.root / "images"
    assert sorted(p.name for p in images.iterdir()) == [f"{uuid}.manifest", f"{uuid}.zfs.xz"]
    manifest = read_values(images / f"{uuid}.manifest")
    assert manifest["name"] == "gold" and manifest["filename"] == f"{uuid}.zfs.xz"
    assert manifest["description"] == "golden image" and "decompress" not in manifest
    assert "zroot/vm/images" in zfsvm.datasets()
    assert not [n for n in zfsvm.datasets() if "@" in n], "the image's snapshot is gone"
    listed = hivectl("image", "list").out.split("\n")[1].split()
    assert listed[:2] == [uuid, "gold"]
    # a manifest's decompress command is never run
    with open(images / f"{uuid}.manifest", "a") as handle:
        handle.write(f'decompress="touch {zfsvm.root}/pwned"\n')
    done = hivectl("image", "provision", uuid, "web")
    assert done.status == 0, done.err
    assert not (zfsvm.root / "pwned").exists()
    assert {"zroot/vm/web", "zroot/vm/web/disk0"} <= zfsvm.datasets()
    assert not [n for n in zfsvm.datasets() if n.startswith("zroot/vm/web@")]
    assert zfsvm.host.path("/dev/zvol/zroot/vm/web/disk0").read_bytes()[:12] == b"GOLDEN-IMAGE"
    new, old = read_values(zfsvm.root / "web" / "web.conf"), read_values(zfsvm.root / "gold" / "gold.conf")
    assert new["uuid"] != old["uuid"] and new["network0_mac"] != old["network0_mac"]
    again = hivectl("image", "provision", uuid, "web")
    assert again.status == 1 and "already exists" in again.err
    assert hivectl("image", "destroy", uuid).status == 0
    assert list(images.iterdir()) == []


def test_image_of_a_clone_provisions_an_independent_guest(zfsvm: ZfsVm) -> None:
    """A clone's image is one full stream: provisioned, it is no clone, and its source can be destroyed
    (``zfs send -R`` kept the clone a clone of the source's snapshot)."""
    assert hivectl("create", "-s", "64M", "gold").status == 0
    (zfsvm.root / "gold" / "disk0.img").write_bytes(b"GOLD" * 256)
    assert hivectl("clone", "gold", "copy").status == 0
    assert zfsvm.host.datasets()["zroot/vm/copy"].get("origin"), "the clone is a ZFS clone"
    made = hivectl("image", "create", "-u", "copy")
    assert made.status == 0, made.err
    sent = [argv for argv in zfsvm.host.commands() if argv[:2] == ["zfs", "send"]]
    assert sent and "-R" not in sent[-1], sent
    done = hivectl("image", "provision", made.out.strip(), "web")
    assert done.status == 0, done.err
    assert not zfsvm.host.datasets()["zroot/vm/web"].get("origin"), "provisioned as a clone of gold's snapshot"
    assert hivectl("destroy", "-f", "copy").status == 0
    assert hivectl("destroy", "-f", "gold").status == 0, "gold's snapshot is still an origin"
    assert (zfsvm.root / "web" / "disk0.img").read_bytes() == b"GOLD" * 256


def test_image_of_a_clone_with_disk_datasets_is_refused(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "64M", "gold").status == 0
    assert hivectl("clone", "gold", "copy").status == 0
    before = zfsvm.datasets()
    made = hivectl("image", "create", "copy")
    assert made.status == 1 and "is a ZFS clone of" in made.err and "hivectl backup" in made.err, made.err
    assert len(made.err.strip().splitlines()) == 1
    assert zfsvm.datasets() == before, "no snapshot or images dataset left"
    assert not (zfsvm.root / "images").exists() or not list((zfsvm.root / "images").iterdir())


def test_failed_provision_leaves_no_guest(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "gold").status == 0
    uuid = hivectl("image", "create", "-u", "gold").out.strip()
    assert (zfsvm.root / "images" / f"{uuid}.zfs").is_file()
    zfsvm.fail_next("destroy", "cannot destroy snapshot: dataset is busy")
    result = hivectl("image", "provision", uuid, "web")
    assert result.status == 1 and "busy" in result.err
    assert not [n for n in zfsvm.datasets() if n.startswith(("zroot/vm/web", "zroot/vm/.hivectl-"))]
    assert not [p.name for p in zfsvm.root.iterdir() if p.name.startswith(".hivectl-")]


def test_provision_builds_out_of_sight_and_publishes_by_one_rename(zfsvm: ZfsVm) -> None:
    """The stream is received under a hidden staging dataset; NEW appears only by the final zfs rename."""
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "64M", "gold").status == 0
    uuid = hivectl("image", "create", "-u", "gold").out.strip()
    zfsvm.host.clear_commands()
    assert hivectl("image", "provision", uuid, "web").status == 0
    zfs_calls = [argv[1:] for argv in zfsvm.host.commands() if argv[0] == "zfs" and argv[1] in ("recv", "rename")]
    (recv, target), (rename, source, final) = zfs_calls[0][:2], zfs_calls[-1]
    assert recv == "recv" and target.startswith("zroot/vm/.hivectl-staging-web-") and target.endswith("/web")
    assert (rename, source, final) == ("rename", target, "zroot/vm/web")
    assert {"zroot/vm/web", "zroot/vm/web/disk0"} <= zfsvm.datasets()
    assert not [n for n in zfsvm.datasets() if ".hivectl-" in n], "the staging dataset is removed"
    assert (zfsvm.root / "web" / "web.conf").is_file() and not (zfsvm.root / "web" / "gold.conf").exists()


def test_failed_image_create_leaves_no_image(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "gold").status == 0
    zfsvm.fail_next("send", "cannot send 'zroot/vm/gold': I/O error")
    result = hivectl("image", "create", "gold")
    assert result.status == 1 and "I/O error" in result.err
    assert not (zfsvm.root / "images").exists() or not list((zfsvm.root / "images").iterdir())
    assert not [n for n in zfsvm.datasets() if "@" in n]


def test_backup_full_then_incremental_and_restore_chain(zfsvm: ZfsVm, tmp_path: Path) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    zvol = zfsvm.host.path("/dev/zvol/zroot/vm/db/disk0")
    with open(zvol, "r+b") as disk:
        disk.write(b"first")
    first = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert first.status == 0, first.err
    with open(zvol, "r+b") as disk:
        disk.seek(1 << 20)
        disk.write(b"second")
    second = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert second.status == 0, second.err
    from hivectl.storage.backup import read_header

    h1, h2 = read_header(Path(first.out.strip())), read_header(Path(second.out.strip()))
    assert h1["kind"] == "zfs" and h1["zfs"]["base"] is None
    assert h2["zfs"]["base"] == h1["zfs"]["snapshot"] and h2["zfs"]["parent"] == Path(first.out.strip()).name
    snaps = [n for n in zfsvm.datasets() if n.startswith("zroot/vm/db@")]
    assert snaps == [f"zroot/vm/db@{h2['zfs']['snapshot']}"], "only the newest backup snapshot is kept"
    done = hivectl("restore", second.out.strip(), "db2")
    assert done.status == 0, done.err
    copy = zfsvm.host.path("/dev/zvol/zroot/vm/db2/disk0").read_bytes()
    assert copy == zvol.read_bytes()
    assert (zfsvm.root / "db2" / "db2.conf").is_file()


def test_failed_zfs_backup_and_restore_leave_nothing(zfsvm: ZfsVm, tmp_path: Path) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    zfsvm.fail_next("send", "cannot send: I/O error")
    failed = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert failed.status == 1 and "I/O error" in failed.err
    assert not [n for n in zfsvm.datasets() if "@" in n]
    assert not (tmp_path / "b").exists(), "the target directory made for the backup is removed again"
    ok = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert ok.status == 0
    before = (zfsvm.datasets(), tree(zfsvm.root))
    zfsvm.fail_next("receive", "cannot receive: out of space")
    result = hivectl("restore", ok.out.strip(), "db3")
    assert result.status == 1 and "out of space" in result.err
    assert (zfsvm.datasets(), tree(zfsvm.root)) == before


def test_directory_datastore_says_snapshots_need_zfs(vmdir: Path) -> None:
    assert hivectl("create", "-s", "1M", "web").status == 0
    for args in (["snapshot", "web"], ["rollback", "web@x"], ["destroy", "web@x"], ["clone", "web@x", "w2"]):
        result = hivectl(*args)
        assert result.status == 1, args
        assert len(result.err.strip().splitlines()) == 1 and "needs a ZFS datastore" in result.err
    assert json.loads(hivectl("info", "--json", "web").out)["snapshots"] is None


def test_create_from_image_onto_a_zvol(zfsvm: ZfsVm) -> None:
    image = zfsvm.root / ".img" / "cloud.raw"
    with open(image, "wb") as handle:
        handle.truncate(8 << 20)
        handle.write(b"BOOT" * 1024)
        handle.seek(6 << 20)
        handle.write(b"tail data")
    result = hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "-i", "cloud.raw", "-C", "web")
    assert result.status == 0, result.err
    node = zfsvm.host.path("/dev/zvol/zroot/vm/web/disk0")
    assert node.stat().st_size == 1 << 30
    with open(node, "rb") as handle:
        assert handle.read(4096) == b"BOOT" * 1024
        handle.seek(6 << 20)
        assert handle.read(9) == b"tail data"
    assert (zfsvm.root / "web" / "seed.iso").is_file()
    too_big = hivectl("create", "-t", "freebsd-zvol", "-s", "4M", "-i", "cloud.raw", "web2")
    assert too_big.status == 1 and "zroot/vm/web2" not in zfsvm.datasets()


def test_zfs_errors_are_shown_whole_not_cut_to_their_last_line(zfsvm: ZfsVm) -> None:
    """zfs explains a refusal over several lines; the last one alone ("zroot/vm/web2") says nothing."""
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    assert hivectl("snapshot", "web@gold").status == 0
    assert hivectl("clone", "web@gold", "web2").status == 0
    refused = hivectl("destroy", "web@gold")
    assert refused.status == 1
    assert len(refused.err.strip().splitlines()) == 1, refused.err
    assert "snapshot has dependent clones" in refused.err and "use '-R'" in refused.err, refused.err
    assert "zroot/vm/web2" in refused.err
    assert "zroot/vm/web@gold" in zfsvm.datasets()


def test_backup_of_a_clone_is_self_contained_and_restores_on_another_pool(zfsvm: ZfsVm, tmp_path: Path) -> None:
    """A clone's backup holds a full stream per dataset (no ``send -R``): it restores where its origin is not."""
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    with open(zfsvm.host.path("/dev/zvol/zroot/vm/web/disk0"), "r+b") as disk:
        disk.write(b"origin data")
    assert hivectl("snapshot", "web@gold").status == 0
    assert hivectl("clone", "web@gold", "web2").status == 0
    clone_disk = zfsvm.host.path("/dev/zvol/zroot/vm/web2/disk0")
    with open(clone_disk, "r+b") as disk:
        disk.seek(1 << 20)
        disk.write(b"clone data")
    done = hivectl("backup", "--to", str(tmp_path / "b"), "web2")
    assert done.status == 0, done.err
    zfsvm.host.add_pool("tank")
    assert zfsvm.host.run(["zfs", "create", "tank/vm"]).returncode == 0
    assert hivectl("datastore", "add", "other", "zfs:tank/vm").status == 0
    elsewhere = hivectl("restore", "-d", "other", done.out.strip(), "web3")
    assert elsewhere.status == 0, elsewhere.err
    same_pool = hivectl("restore", done.out.strip(), "web4")
    assert same_pool.status == 0, same_pool.err
    data = zfsvm.host.datasets()
    for name in ("tank/vm/web3", "tank/vm/web3/disk0", "zroot/vm/web4", "zroot/vm/web4/disk0"):
        assert not data[name].get("origin"), f"{name} was restored as a clone of {data[name].get('origin')}"
    for disk_path in ("/dev/zvol/tank/vm/web3/disk0", "/dev/zvol/zroot/vm/web4/disk0"):
        assert zfsvm.host.path(disk_path).read_bytes() == clone_disk.read_bytes()
    assert (zfsvm.host.root / "tank" / "vm" / "web3" / "web3.conf").is_file() or hivectl("info", "web3").status == 0
