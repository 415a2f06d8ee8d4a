"""``backup``/``restore`` on a directory datastore, for real: sparse, byte-identical, all-or-nothing."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from hivectl.rcfile import read_values
from hivectl.storage.sparse import file_digest
from tests.cli_helpers import hivectl, tree
from tests.lifecycle_helpers import running_stand_in

MIB = 1 << 20


def _fill(disk: Path) -> dict[int, bytes]:
    """Random data at the start, in the middle and at the very end of a (sparse) disk."""
    size = disk.stat().st_size
    pieces = {0: os.urandom(MIB), 7 * (1 << 30) + 12345: os.urandom(300_000), size - 4096: os.urandom(4096)}
    with open(disk, "r+b") as handle:
        for offset, data in pieces.items():
            handle.seek(offset)
            handle.write(data)
    return pieces


def _sha_of_data(disk: Path, pieces: dict[int, bytes]) -> bool:
    with open(disk, "rb") as handle:
        for offset, data in pieces.items():
            handle.seek(offset)
            if handle.read(len(data)) != data:
                return False
    return True


def test_backup_and_restore_are_byte_identical_and_sparse(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-C", "web").status == 0
    assert hivectl("add", "-d", "disk", "-s", "1G", "web").status == 0
    disk0 = vmdir / "web" / "disk0.img"
    extra = vmdir / "web" / read_values(vmdir / "web" / "web.conf")["disk2_name"]
    pieces = _fill(disk0)
    (vmdir / "web" / "notes.bin").write_bytes(b"")  # a sparse file that is not a disk is stored sparse too
    os.truncate(vmdir / "web" / "notes.bin", 1 << 30)
    target = tmp_path / "backups"
    started = time.monotonic()
    result = hivectl("backup", "--to", str(target), "web")
    assert result.status == 0, result.err
    assert time.monotonic() - started < 20
    archive = Path(result.out.strip())
    assert archive.parent == target and archive.name.startswith("web.") and archive.name.endswith(".backup.tar.gz")
    assert archive.stat().st_size < 3 * MIB, "only the data regions are stored"
    sums = archive.with_name(archive.name + ".sha256").read_text().split()
    assert sums == [hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name]
    with tarfile.open(archive) as tar:  # plain tar tools read it; disks are GNU sparse members
        names = tar.getnames()
        disk_member = tar.getmember("disks/disk0.img")
        assert disk_member.size == 20 << 30 and disk_member.sparse
    assert names[0] == "hivectl-backup.json" and names[-1] == "hivectl-digests.json"
    assert "files/web.conf" in names and "files/.cloud-init/user-data" in names and "files/seed.iso" not in names

    assert hivectl("destroy", "-f", "web").status == 0
    result = hivectl("restore", str(archive))
    assert result.status == 0, result.err
    restored = vmdir / "web" / "disk0.img"
    assert restored.stat().st_size == 20 << 30
    assert restored.stat().st_blocks * 512 < 8 * MIB, "the restored disk is sparse again"
    assert _sha_of_data(restored, pieces)
    assert (vmdir / "web" / "seed.iso").is_file(), "the seed is rebuilt after a restore"
    assert extra.stat().st_size == 1 << 30 and extra.stat().st_blocks == 0
    assert (vmdir / "web" / "notes.bin").stat().st_size == 1 << 30


def test_restore_under_a_new_name_and_compare_every_byte(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "64M", "db").status == 0
    disk = vmdir / "db" / "disk0.img"
    with open(disk, "r+b") as handle:
        handle.seek(5 * MIB)
        handle.write(os.urandom(MIB))
        handle.seek(40 * MIB)
        handle.write(bytes(MIB))  # allocated zeros: may become a hole, the bytes stay the same
    result = hivectl("backup", "--to", str(tmp_path), "--compress", "xz", "db")
    assert result.status == 0, result.err
    assert hivectl("restore", result.out.strip(), "db2").status == 0
    assert (vmdir / "db2" / "disk0.img").read_bytes() == disk.read_bytes()
    assert read_values(vmdir / "db2" / "db2.conf") == read_values(vmdir / "db" / "db.conf")
    assert not (vmdir / "db2" / "db.conf").exists()
    again = hivectl("restore", result.out.strip(), "db2")
    assert again.status == 1 and "already exists" in again.err


def test_twenty_gib_empty_disk_is_neither_read_nor_written(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "20G", "big").status == 0
    started = time.monotonic()
    result = hivectl("backup", "--to", str(tmp_path), "big")
    elapsed = time.monotonic() - started
    assert result.status == 0, result.err
    assert elapsed < 10, f"backup of an empty 20 GiB disk took {elapsed:.1f} s"
    archive = Path(result.out.strip())
    assert archive.stat().st_size < 64 << 10
    # the process read (almost) nothing from disk: /proc/self/io of a child is gone, so measure in-process
    from hivectl.context import Context
    from hivectl.storage.backup import BackupRequest, plan_backup

    ctx = Context()
    plan, written = plan_backup(ctx.store, BackupRequest("big", str(tmp_path / "again")))
    plan.apply(ctx.host)
    assert written.bytes_read == 0
    assert hivectl("restore", str(archive), "big2").status == 0
    copy = vmdir / "big2" / "disk0.img"
    assert copy.stat().st_size == 20 << 30 and copy.stat().st_blocks == 0


def test_stdout_and_stdin(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "8M", "s").status == 0
    (vmdir / "s" / "disk0.img").write_bytes(os.urandom(8 * MIB))
    out = tmp_path / "s.stream"
    with open(out, "wb") as handle:
        done = subprocess.run([sys.executable, "-m", "hivectl", "backup", "--to", "-", "s"], stdout=handle,
                              timeout=60, check=False)
    assert done.returncode == 0
    with open(out, "rb") as handle:
        back = subprocess.run([sys.executable, "-m", "hivectl", "restore", "-", "s2"], stdin=handle,
                              capture_output=True, timeout=60, check=False)
    assert back.returncode == 0, back.stderr
    assert (vmdir / "s2" / "disk0.img").read_bytes() == (vmdir / "s" / "disk0.img").read_bytes()


def test_damaged_backup_restores_nothing(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "16M", "d").status == 0
    (vmdir / "d" / "disk0.img").write_bytes(os.urandom(16 * MIB))
    result = hivectl("backup", "--to", str(tmp_path), "--compress", "none", "d")
    archive = Path(result.out.strip())
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x55  # inside disk0's data
    archive.write_bytes(bytes(data))
    before = tree(vmdir)
    failed = hivectl("restore", str(archive), "d2")
    assert failed.status == 1 and ("mismatch" in failed.err or "damaged" in failed.err), failed.err
    assert tree(vmdir) == before, "no half-restored guest and no temporary directory is left"


def test_full_disk_during_backup_leaves_no_file(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "16M", "f").status == 0
    (vmdir / "f" / "disk0.img").write_bytes(os.urandom(16 * MIB))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 * MIB, 4 * MIB))

    target = tmp_path / "out"
    target.mkdir()
    done = subprocess.run([sys.executable, "-m", "hivectl", "backup", "--to", str(target), "f"],
                          capture_output=True, text=True, preexec_fn=limit, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert list(target.iterdir()) == []


def test_keep_prunes_old_backups(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "k").status == 0
    made = []
    target = tmp_path / "out"
    target.mkdir()
    (target / "unrelated.tar.gz").write_bytes(b"x")
    for _ in range(4):
        result = hivectl("backup", "--to", str(target), "--keep", "2", "k")
        assert result.status == 0, result.err
        made.append(Path(result.out.strip()))
    left = sorted(p.name for p in target.iterdir())
    assert left == sorted([made[2].name, made[2].name + ".sha256", made[3].name, made[3].name + ".sha256",
                           "unrelated.tar.gz"])


def test_running_guest_is_refused(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "r").status == 0
    with running_stand_in(vmdir / "r", "r"):
        result = hivectl("backup", "--to", str(tmp_path / "out"), "r")
    assert result.status == 1 and "stop it first" in result.err, result.err
    assert not (tmp_path / "out").exists()


def test_content_digest_ignores_allocation(tmp_path: Path) -> None:
    sparse_file, dense_file = tmp_path / "a", tmp_path / "b"
    with open(sparse_file, "wb") as handle:
        handle.truncate(10 * MIB)
        handle.seek(3 * MIB + 5)
        handle.write(b"hello")
    data = bytearray(10 * MIB)
    data[3 * MIB + 5:3 * MIB + 10] = b"hello"
    dense_file.write_bytes(bytes(data))
    assert file_digest(sparse_file) == file_digest(dense_file)
    data[0] = 1
    dense_file.write_bytes(bytes(data))
    assert file_digest(sparse_file) != file_digest(dense_file)


def _extract_with(tool: list[str], archive: Path, into: Path) -> None:
    into.mkdir()
    done = subprocess.run([*tool, "-x", "-f", str(archive), "-C", str(into)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"{tool[0]}: {done.stderr}"


def test_gnu_tar_and_bsdtar_extract_every_file_byte_identically(vmdir: Path, tmp_path: Path) -> None:
    """Backups are plain pax archives: GNU tar and bsdtar give back the same bytes (disks ending in holes too).

    GNU tar sizes a sparse member by its map alone (GNU tar's sparse.c: a closing ``realsize 0`` entry
    makes the file that long), so a map without that entry extracted a 64 MiB disk as 1 MiB.
    """
    import shutil

    for program in ("tar", "bsdtar"):
        assert shutil.which(program), f"{program} is needed (scripts/setup installs it)"
    assert hivectl("create", "-s", "64M", "t").status == 0
    guest = vmdir / "t"
    with open(guest / "disk0.img", "r+b") as handle:
        handle.write(os.urandom(MIB))  # data, then 63 MiB of hole up to the end
    with open(guest / "empty.img", "wb") as handle:  # a file that is all hole
        handle.truncate(8 * MIB)
    with open(guest / "middle.bin", "wb") as handle:  # hole, data, hole
        handle.seek(3 * MIB)
        handle.write(b"in the middle")
        handle.truncate(9 * MIB)
    result = hivectl("backup", "--to", str(tmp_path), "--compress", "none", "t")
    assert result.status == 0, result.err
    archive = Path(result.out.strip())
    wanted = {"disks/disk0.img": guest / "disk0.img", "files/empty.img": guest / "empty.img",
              "files/middle.bin": guest / "middle.bin", "files/t.conf": guest / "t.conf"}
    for tool in (["tar"], ["bsdtar"]):
        into = tmp_path / tool[0]
        _extract_with(tool, archive, into)
        for member, original in wanted.items():
            copy = into / member
            assert copy.stat().st_size == original.stat().st_size, f"{tool[0]} extracted {member} with a wrong size"
            assert file_digest(copy) == file_digest(original), f"{tool[0]} extracted {member} with other bytes"
        assert not list(into.rglob("GNUSparseFile*")), f"{tool[0]} left sparse maps as files"
    assert hivectl("restore", str(archive), "t2").status == 0  # and hivectl still reads what it wrote
    assert (vmdir / "t2" / "disk0.img").read_bytes() == (guest / "disk0.img").read_bytes()


def test_a_backup_killed_at_any_write_leaves_no_partial_file_or_sha256(vmdir: Path, tmp_path: Path) -> None:
    """kill -9 at every write(2) of ``backup`` (strace's fault injection counts them): whatever is left
    under a backup's name is complete, and a ``.sha256`` is either absent or names the archive's digest.

    Writing ``FILE.sha256`` in place left it empty when the kill came between its open and its write,
    and ``restore`` then failed on a good archive.
    """
    import shutil

    strace = shutil.which("strace")
    assert strace, "strace is needed (scripts/setup installs it)"
    assert hivectl("create", "-s", "1M", "k").status == 0
    (vmdir / "k" / "disk0.img").write_bytes(os.urandom(64 << 10))
    argv = [sys.executable, "-m", "hivectl", "backup", "--to", "OUT", "k"]
    kills = 0
    for when in range(1, 200):
        out = tmp_path / f"out{when}"
        out.mkdir()
        run = [arg if arg != "OUT" else str(out) for arg in argv]
        done = subprocess.run([strace, "-qq", "-o", os.devnull, "-e", "trace=write",
                               "-e", f"inject=write:signal=SIGKILL:when={when}", *run],
                              capture_output=True, text=True, timeout=120, check=False)
        names = {p.name for p in out.iterdir()}
        archives = [n for n in names if n.endswith(".backup.tar.gz")]
        for sums in (n for n in names if n.endswith(".sha256")):
            archive = sums[: -len(".sha256")]
            assert archive in names, f"kill at write {when}: {sums} without its archive"
            text = (out / sums).read_text()
            assert text == f"{hashlib.sha256((out / archive).read_bytes()).hexdigest()}  {archive}\n", \
                f"kill at write {when}: {sums} is {text!r}"
        for archive in archives:
            assert hivectl("restore", str(out / archive), f"k{when}").status == 0, f"kill at write {when}"
        if done.returncode == 0:
            assert archives and f"{archives[0]}.sha256" in names
            break
        kills += 1
    else:
        raise AssertionError("backup never finished under strace")
    assert kills >= 3, "the archive, its .sha256 and the path printed are each written at least once"


def test_an_empty_sha256_is_one_line_not_a_traceback(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "e").status == 0
    archive = Path(hivectl("backup", "--to", str(tmp_path), "e").out.strip())
    archive.with_name(archive.name + ".sha256").write_text("")
    refused = hivectl("restore", str(archive), "e2")
    assert refused.status == 1 and "not a SHA-256 line" in refused.err and "Traceback" not in refused.err
    assert not (vmdir / "e2").exists()
