"""Crafted backup archives (issue 10): each is refused with one line before anything is written.

Every archive here is built with Python's ``tarfile`` as a real file, in the format ``hivectl backup``
writes (docs/storage.md), with one flaw each: a symlink named like a run-time file pointing at the disk,
hard links, devices, fifos, ``..`` and absolute names, oversize members, wrong digests, a header naming
another guest or carrying a hostile guest name, odd sparse maps. ``restore`` (the real command line)
must exit 1 with a single ``hivectl: ARCHIVE: MEMBER: why`` line, and neither the vm_dir tree nor the
host tree around it (a stand-in ``etc/`` the hostile names aim at) may change in any byte. A control
case proves the builder's archives are otherwise good: the same archive without a flaw restores.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hivectl.storage.archive_check import ArchiveRefused, check_archive
from hivectl.storage.sparse import ContentDigest
from tests.cli_helpers import hivectl, is_journal_file

GUEST = "g"
CONF = b'loader="bhyveload"\ncpu=1\nmemory=256M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
DISK_SIZE = 1 << 20
DISK_DATA = os.urandom(64 << 10)
STAMP = "20261203T070000.000000Z"


@dataclass
class Member:
    """One tar member: a TarInfo, its body, and the digest record the archive lists for it (if any)."""

    info: tarfile.TarInfo
    body: bytes = b""
    digest: dict[str, Any] | None = None
    listed_as: str | None = None


def regular(name: str, body: bytes, mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(body), mode
    return Member(info, body, {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}, name)


def special(name: str, kind: bytes, linkname: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return Member(info)


def directory(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return Member(info)


def disk(name: str = "disk0.img", realsize: int = DISK_SIZE, extents: list[tuple[int, int]] | None = None,
         data: bytes = DISK_DATA, map_text: str | None = None) -> Member:
    """A GNU sparse 1.0 member as ``backup`` writes one: a map block, then the data of each extent."""
    extents = [(0, len(data))] if extents is None else extents
    text = map_text if map_text is not None else f"{len(extents)}\n" + "".join(f"{o}\n{n}\n" for o, n in extents)
    block = text.encode().ljust(-(-len(text) // 512) * 512, b"\0")
    info = tarfile.TarInfo(f"disks/GNUSparseFile.0/{name}")
    info.size, info.mode = len(block) + len(data), 0o600
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": f"disks/{name}",
                        "GNU.sparse.realsize": str(realsize)}
    digest = ContentDigest(realsize)
    cursor = 0
    for offset, length in extents:
        if offset >= 0 and length >= 0 and cursor + length <= len(data):
            digest.feed(offset, data[cursor:cursor + length])
        cursor += length
    return Member(info, block + data, {"size": realsize, "content_sha256": digest.hexdigest()}, f"disks/{name}")


def header(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"format": "hivectl-backup", "version": 1, "guest": GUEST, "kind": "directory",
                             "created": "2026-12-03T07:00:00+00:00", "datastore": "default",
                             "config": CONF.decode()}
    value.update(changes)
    return value


def good_members() -> list[Member]:
    return [disk(), regular(f"files/{GUEST}.conf", CONF), directory("files/notes.d"),
            regular("files/notes.d/readme", b"notes\n")]


@dataclass
class Case:
    """A flawed archive: its members, header, digest list changes, and what the one-line refusal names."""

    members: list[Member]
    member: str  # the member the refusal must name
    why: str  # a word of the reason
    head: dict[str, Any] = field(default_factory=header)
    digests: Callable[[dict[str, Any]], None] | None = None
    file_guest: str = GUEST
    after_digests: list[Member] = field(default_factory=list)
    restore_as: str | None = None


def write(path: Path, case: Case) -> Path:
    listed: dict[str, Any] = {m.listed_as: m.digest for m in case.members if m.digest and m.listed_as}
    if case.digests is not None:
        case.digests(listed)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("hivectl-backup.json", case.head),):
            body = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for m in case.members:
            stored = m.info.isreg() and m.info.size == len(m.body)  # an oversize member declares more than it holds
            tar.addfile(m.info, io.BytesIO(m.body) if stored else None)
        body = json.dumps(listed).encode()
        info = tarfile.TarInfo("hivectl-digests.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for m in case.after_digests:
            tar.addfile(m.info, io.BytesIO(m.body))
    return path


def _replace(members: list[Member], index: int, new: Member) -> list[Member]:
    return [*members[:index], new, *members[index + 1:]]


def _zfs_chunk(index: int, body: bytes) -> Member:
    member = regular(f"zfs/stream.{index:06d}", body)
    member.listed_as = None
    return member


CASES: dict[str, Case] = {
    # the attack: a run-time file as a symlink to the disk ('restart' truncates it)
    "symlink-restart-to-disk": Case([*good_members(), special("files/restart", tarfile.SYMTYPE, "disk0.img")],
                                    "files/restart", "symbolic link"),
    "symlink-log-to-host": Case([*good_members(),
                                 special("files/notes", tarfile.SYMTYPE, "../../host/etc/resolv.conf")],
                                "files/notes", "symbolic link"),
    "hard-link-to-host": Case([*good_members(), special("files/notes", tarfile.LNKTYPE, "/etc/passwd")],
                              "files/notes", "hard link"),
    "character-device": Case([*good_members(), special("files/mem", tarfile.CHRTYPE)], "files/mem", "character device"),
    "block-device": Case([*good_members(), special("files/sda", tarfile.BLKTYPE)], "files/sda", "block device"),
    "fifo": Case([*good_members(), special("files/pipe", tarfile.FIFOTYPE)], "files/pipe", "fifo"),
    "dotdot-name": Case([*good_members(), regular("files/../../host/etc/resolv.conf", b"nameserver 6.6.6.6\n")],
                        "files/../../host/etc/resolv.conf", "'..'"),
    "dotdot-inside": Case([*good_members(), regular("files/notes.d/../../x", b"x")],
                          "files/notes.d/../../x", "'..'"),
    "absolute-name": Case([*good_members(), regular("/etc/resolv.conf", b"nameserver 6.6.6.6\n")],
                          "/etc/resolv.conf", "absolute"),
    "unknown-folder": Case([*good_members(), regular("etc/resolv.conf", b"x")], "etc/resolv.conf",
                           "not a member of a directory backup"),
    "run-time-file-as-regular": Case([*good_members(), regular("files/bhyve.log", b"x")], "files/bhyve.log",
                                     "run-time file"),
    "duplicate-member": Case([*good_members(), regular(f"files/{GUEST}.conf", b"cpu=64\n")],
                             f"files/{GUEST}.conf", "second member"),
    "disk-and-file-same-path": Case([*good_members(), regular("files/disk0.img", b"x")], "files/disk0.img",
                                    "second member"),
    "file-in-undeclared-directory": Case([*good_members(), regular("files/sub/x", b"x")], "files/sub/x",
                                         "not a directory member"),
    "disk-not-sparse": Case(_replace(good_members(), 0, regular("disks/disk0.img", b"x" * 4096)),
                            "disks/disk0.img", "sparse"),
    "oversize-file": Case([*good_members(), regular("files/big", b"")], "files/big", "out of bounds"),
    "oversize-disk": Case(_replace(good_members(), 0, disk(realsize=1 << 63)), "disks/disk0.img", "out of bounds"),
    "sparse-extent-past-the-end": Case(_replace(good_members(), 0, disk(realsize=4096)), "disks/disk0.img",
                                       "outside the file"),
    "sparse-extents-out-of-order": Case(_replace(good_members(), 0, disk(extents=[(DISK_SIZE // 2, 1 << 15),
                                                                                 (0, 1 << 15)])),
                                        "disks/disk0.img", "out of order"),
    "sparse-map-hides-data": Case(_replace(good_members(), 0, disk(extents=[(0, 4096)])), "disks/disk0.img",
                                  "accounts for"),
    "wrong-file-digest": Case(good_members(), f"files/{GUEST}.conf", "sha256",
                              digests=lambda d: d[f"files/{GUEST}.conf"].update(sha256="0" * 64)),
    "wrong-disk-digest": Case(good_members(), "disks/disk0.img", "content_sha256",
                              digests=lambda d: d["disks/disk0.img"].update(content_sha256="0" * 64)),
    "member-missing-from-digests": Case(good_members(), "files/notes.d/readme", "not listed",
                                        digests=lambda d: d.pop("files/notes.d/readme")),
    "digest-of-absent-member": Case(good_members(), "files/ghost", "not in the archive",
                                    digests=lambda d: d.update({"files/ghost": {"size": 1}})),
    "member-after-digests": Case(good_members(), "files/late", "last member",
                                 after_digests=[regular("files/late", b"x")]),
    "no-config": Case([disk()], f"files/{GUEST}.conf", "no config"),
    "header-names-another-guest": Case(good_members(), "hivectl-backup.json", "another guest", file_guest="web"),
    "hostile-guest-name": Case(good_members(), "hivectl-backup.json", "guest name",
                               head=header(guest="../../host/etc/resolv"), file_guest="x", restore_as="fresh"),
    "guest-name-with-line-break": Case(good_members(), "hivectl-backup.json", "guest name",
                                       head=header(guest="g\nx"), file_guest="x"),
    "header-unknown-kind": Case(good_members(), "hivectl-backup.json", "kind", head=header(kind="raw")),
    "zfs-member-in-directory-backup": Case([*good_members(), _zfs_chunk(0, b"x")], "zfs/stream.000000",
                                           "not a member of a directory backup"),
    "zfs-stream-out-of-sequence": Case([_zfs_chunk(1, b"stream")], "zfs/stream.000001", "out of sequence",
                                       head=header(kind="zfs", zfs={"snapshot": f"hivectl-backup-{STAMP}",
                                                                    "base": None, "parent": None})),
    "zfs-with-a-file": Case([regular(f"files/{GUEST}.conf", CONF)], f"files/{GUEST}.conf", "ZFS backup",
                            head=header(kind="zfs", zfs={"snapshot": f"hivectl-backup-{STAMP}", "base": None,
                                                         "parent": None})),
    "zfs-hostile-parent": Case([], "hivectl-backup.json", "zfs.parent",
                               head=header(kind="zfs", zfs={"snapshot": f"hivectl-backup-{STAMP}",
                                                            "base": f"hivectl-backup-{STAMP}",
                                                            "parent": "../../host/etc/passwd"})),
}
CASES["oversize-file"].members[-1].info.size = 1 << 63  # declared, never stored: refused before it is read


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``root`` (not following symlinks): mode, size and content digest; the journal's logs
    are left out (a refused restore is rightly recorded in the audit log)."""
    result: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        if is_journal_file(path):
            continue
        st = path.lstat()
        digest = ""
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        elif path.is_symlink():
            digest = os.readlink(path)
        result[str(path.relative_to(root))] = (st.st_mode, st.st_size, digest)
    return result


@pytest.fixture
def world(vmdir: Path, tmp_path: Path) -> Path:
    """A vm_dir with a guest, and host files next to it that hostile names aim at."""
    assert hivectl("create", "-s", "1M", "victim").status == 0
    (vmdir / "victim" / "disk0.img").write_bytes(os.urandom(DISK_SIZE))
    etc = tmp_path / "host" / "etc"
    etc.mkdir(parents=True)
    (etc / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    (etc / "passwd").write_text("root:*:0:0::/root:/bin/sh\n")
    (tmp_path / "archives").mkdir()
    return tmp_path


def test_the_builder_makes_a_good_archive_that_restores(world: Path, vmdir: Path) -> None:
    """The control case: without a flaw the crafted archive restores, so each refusal below is its flaw's."""
    archive = write(world / "archives" / f"{GUEST}.{STAMP}.backup.tar", Case(good_members(), "", ""))
    result = hivectl("restore", str(archive))
    assert result.status == 0, result.err
    restored = vmdir / GUEST
    assert (restored / f"{GUEST}.conf").read_bytes() == CONF
    with open(restored / "disk0.img", "rb") as handle:
        assert handle.read(len(DISK_DATA)) == DISK_DATA
    assert os.path.getsize(restored / "disk0.img") == DISK_SIZE
    assert (restored / "notes.d" / "readme").read_bytes() == b"notes\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_crafted_archive_is_refused_in_one_line_and_nothing_is_written(world: Path, vmdir: Path,
                                                                          name: str) -> None:
    case = CASES[name]
    archive = write(world / "archives" / f"{case.file_guest}.{STAMP}.backup.tar", case)
    before = snapshot(world)
    result = hivectl("restore", str(archive), *([case.restore_as] if case.restore_as else []))
    assert result.status == 1, (name, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, (name, result.err)
    assert lines[0].startswith(f"hivectl: {archive}: {case.member}: "), (name, lines[0])
    assert case.why in lines[0] and lines[0].endswith("nothing was restored"), (name, lines[0])
    assert snapshot(world) == before, f"{name}: the vm_dir or the host tree changed"


def test_a_wrong_sha256_file_is_refused(world: Path, vmdir: Path) -> None:
    archive = write(world / "archives" / f"{GUEST}.{STAMP}.backup.tar", Case(good_members(), "", ""))
    (archive.parent / f"{archive.name}.sha256").write_text(f"{'0' * 64}  {archive.name}\n")
    before = snapshot(world)
    result = hivectl("restore", str(archive))
    assert result.status == 1
    assert result.err.strip() == (f"hivectl: {archive}: {archive.name}.sha256: the SHA-256 of the archive is "
                                  f"{hashlib.sha256(archive.read_bytes()).hexdigest()}, not {'0' * 64}; "
                                  "nothing was restored")
    assert snapshot(world) == before


def test_data_beyond_the_free_space_is_refused(tmp_path: Path) -> None:
    archive = write(tmp_path / f"{GUEST}.{STAMP}.backup.tar", Case(good_members(), "", ""))
    with open(archive, "rb") as raw:
        checked = check_archive(archive, raw, None, free_bytes=1 << 30)
    assert checked.data_bytes == len(DISK_DATA) + len(CONF) + len(b"notes\n")
    with open(archive, "rb") as raw, pytest.raises(ArchiveRefused, match="needs 65"):
        check_archive(archive, raw, None, free_bytes=4096)


def test_a_truncated_archive_is_one_line(world: Path) -> None:
    archive = write(world / "archives" / f"{GUEST}.{STAMP}.backup.tar", Case(good_members(), "", ""))
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    before = snapshot(world)
    result = hivectl("restore", str(archive))
    assert result.status == 1 and len(result.err.strip().splitlines()) == 1, result.err
    assert "nothing was restored" in result.err
    assert snapshot(world) == before


def test_a_killed_restore_leaves_a_hidden_staging_directory_the_next_restore_removes(world: Path,
                                                                                    vmdir: Path) -> None:
    archive = write(world / "archives" / f"{GUEST}.{STAMP}.backup.tar", Case(good_members(), "", ""))
    leftover = vmdir / f".hivectl-staging-{GUEST}-0badf00d"
    leftover.mkdir()
    (leftover / "disk0.img").write_bytes(b"half")
    assert GUEST not in hivectl("list").out, "a staging directory is not listed as a guest"
    assert hivectl("restore", str(archive)).status == 0
    assert not leftover.exists()
    assert not [p for p in vmdir.iterdir() if p.name.startswith(".hivectl-staging-")]
