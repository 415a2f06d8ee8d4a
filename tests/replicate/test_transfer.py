"""hivectl/transfer on the simulated host's ZFS, between two vm_dirs (zroot/vm and tank/vm): full then
incremental streams carry the disk exactly; a receive killed halfway resumes from its token and re-sends
under 1% of what had arrived; without resumable receives (zfs-fuse) the step is sent again whole; the
last common snapshot is held on both sides and the hold moves with it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO, Any

import pytest

from hivectl.context import Context
from hivectl.transfer.peer import LocalPeer
from hivectl.transfer.send import sync
from tests.cli_helpers import hivectl
from tests.replicate.conftest import Pair
from tests.simhost import zfs_resume

MIB = 1 << 20


class Cut(Exception):
    """The connection to the other side breaks."""


class CuttingPeer(LocalPeer):
    """A peer whose connection breaks after ``limit`` bytes of the next stream: the receiving ``zfs recv`` is
    killed (SIGKILL, by hivectl/host/streams.py on the exception) with whatever its pipe still held."""

    def __init__(self, ctx: Context, limit: int) -> None:
        super().__init__(ctx, "tank")
        self.limit = limit
        self.written = 0

    @contextlib.contextmanager
    def receiving(self, name: str, rel: str, kind: str, keep_partial: bool) -> Iterator[IO[bytes]]:
        with super().receiving(name, rel, kind, keep_partial) as into:
            outer = self

            class Writer:
                def write(self, data: bytes) -> int:
                    if rel and outer.written + len(data) > outer.limit:
                        raise Cut
                    outer.written += len(data) if rel else 0
                    return into.write(data)

            yield Writer()  # type: ignore[misc]


def make_guest(pair: Pair, data: int) -> bytes:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "64M", "web").status == 0
    written = os.urandom(data)
    with open(pair.zvol("zroot/vm/web/disk0"), "r+b") as disk:
        disk.write(written)
    return written


def snapshot(pair: Pair, snap: str) -> None:
    done = pair.host.run(["zfs", "snapshot", "-r", f"zroot/vm/web@{snap}"])
    assert done.returncode == 0, done.stderr


def stream_size(pair: Pair, *args: str) -> int:
    import subprocess

    return len(subprocess.run(["zfs", "send", *args], capture_output=True, check=True).stdout)


def arrived(pair: Pair, dataset: str) -> int:
    token = pair.host.run(["zfs", "get", "-H", "-o", "value", "receive_resume_token", dataset]).stdout.strip()
    fields: dict[str, Any] | None = zfs_resume.read_token(token)
    assert fields is not None, f"no resume token on {dataset}: {token!r}"
    return int(fields["bytes"])


def test_full_then_incremental_carry_the_disk_and_hold_the_common_snapshot(pair: Pair) -> None:
    make_guest(pair, 2 * MIB)
    snapshot(pair, "s1")
    src, dst = Context(), Context(vm_dir="zfs:tank/vm")
    first = sync(src, LocalPeer(dst, "tank"), "web")
    assert [(s.rel, s.kind, s.snapshot) for s in first.sent] == [("", "full", "s1"), ("/disk0", "full", "s1")]
    assert first.common == "s1" and first.resumable
    with open(pair.zvol("zroot/vm/web/disk0"), "r+b") as disk:
        disk.seek(10 * MIB)
        disk.write(os.urandom(MIB))
    snapshot(pair, "s2")
    snapshot(pair, "s3")
    second = sync(src, LocalPeer(dst, "tank"), "web")
    assert [(s.rel, s.kind, s.base, s.snapshot) for s in second.sent] == [
        ("", "incremental", "s1", "s2"), ("", "incremental", "s2", "s3"),
        ("/disk0", "incremental", "s1", "s2"), ("/disk0", "incremental", "s2", "s3")]
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()
    assert sync(src, LocalPeer(dst, "tank"), "web").sent == [], "an up-to-date copy was sent again"

    from hivectl.transfer import side

    for ctx in (src, dst):
        side.hold(ctx, "web", "s3")
    for pool in ("zroot", "tank"):
        held = pair.host.run(["zfs", "destroy", f"{pool}/vm/web/disk0@s3"])
        assert held.returncode == 1 and "dataset is busy" in held.stderr, held
        assert pair.host.run(["zfs", "destroy", f"{pool}/vm/web/disk0@s1"]).returncode == 0
    snapshot(pair, "s4")
    assert sync(src, LocalPeer(dst, "tank"), "web").common == "s4"
    for ctx in (src, dst):
        side.hold(ctx, "web", "s4")
    holds = pair.host.run(["zfs", "holds", "-H", "zroot/vm/web@s3", "zroot/vm/web@s4", "tank/vm/web/disk0@s4"])
    assert [line.split("\t")[:2] for line in holds.stdout.splitlines()] == [
        ["zroot/vm/web@s4", "hivectl-replica"], ["tank/vm/web/disk0@s4", "hivectl-replica"]]


def test_a_receive_killed_halfway_resumes_and_resends_under_one_percent(pair: Pair) -> None:
    make_guest(pair, 24 * MIB)
    snapshot(pair, "s1")
    full = stream_size(pair, "zroot/vm/web/disk0@s1")
    src, dst = Context(), Context(vm_dir="zfs:tank/vm")
    cutting = CuttingPeer(dst, full // 2)
    with pytest.raises(Cut):
        sync(src, cutting, "web")
    had = arrived(pair, "tank/vm/web/disk0")
    assert full // 3 < had <= cutting.written
    again = sync(src, LocalPeer(dst, "tank"), "web")
    assert [(s.rel, s.kind) for s in again.sent] == [("/disk0", "resume")]
    resent = cutting.written + again.sent[0].bytes - full
    assert 0 <= resent < cutting.written / 100, f"re-sent {resent} bytes of {cutting.written} that had arrived"
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()
    token = pair.host.run(["zfs", "get", "-H", "-o", "value", "receive_resume_token", "tank/vm/web/disk0"])
    assert token.stdout.strip() == "-"


def test_without_resumable_receives_the_step_is_sent_again_whole(pair: Pair) -> None:
    with pair.host.edit() as data:
        data["zfs_resume"] = False  # zfs-fuse 0.7: no recv -s, no send -t, no receive_resume_token
    make_guest(pair, 4 * MIB)
    snapshot(pair, "s1")
    full = stream_size(pair, "zroot/vm/web/disk0@s1")
    src, dst = Context(), Context(vm_dir="zfs:tank/vm")
    with pytest.raises(Cut):
        sync(src, CuttingPeer(dst, full // 2), "web")
    assert "tank/vm/web/disk0" not in pair.host.datasets(), "an interrupted receive without -s left a dataset"
    again = sync(src, LocalPeer(dst, "tank"), "web")
    assert not again.resumable
    assert [(s.rel, s.kind, s.bytes) for s in again.sent] == [("/disk0", "full", full)]
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()


class LocalStreams:
    """A stand-in for hivectl/remote's ``Remote``: ``stream(words)`` runs ``hivectl _stream WORDS`` here with
    the DR vm_dir, as sshd runs it on a remote (the same dispatcher, hivectl/cli/serve.py, and the same
    registration, hivectl/remote/streams.py), without ssh."""

    def __init__(self, vm_dir: str) -> None:
        self.vm_dir = vm_dir

    @contextlib.contextmanager
    def stream(self, words: list[str]) -> Iterator[Any]:
        import subprocess
        from types import SimpleNamespace

        from tests.cli_helpers import HIVECTL

        proc = subprocess.Popen([*HIVECTL, "_stream", *words], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(os.environ, HIVECTL_VM_DIR=self.vm_dir))
        assert proc.stdin is not None and proc.stdout is not None
        yield SimpleNamespace(stdin=proc.stdin, stdout=proc.stdout)
        if not proc.stdin.closed:
            proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert proc.wait() == 0, (words, err.decode(), rest[:200])


def test_the_remote_end_answers_through_hivectl_stream(pair: Pair) -> None:
    from hivectl.transfer import side
    from hivectl.transfer.peer import StreamPeer

    make_guest(pair, MIB)
    snapshot(pair, "s1")
    src = Context()
    peer = StreamPeer(LocalStreams("zfs:tank/vm"), "dr")
    first = sync(src, peer, "web")
    assert [(s.rel, s.kind) for s in first.sent] == [("", "full"), ("/disk0", "full")]
    snapshot(pair, "s2")
    second = sync(src, peer, "web")
    assert [(s.rel, s.kind, s.base) for s in second.sent] == [("", "incremental", "s1"),
                                                              ("/disk0", "incremental", "s1")]
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()
    peer.request(["hold", "web", "s2"])
    side.hold(src, "web", "s2")
    held = pair.host.run(["zfs", "destroy", "tank/vm/web@s2"])
    assert held.returncode == 1 and "busy" in held.stderr
    assert peer.request(["running", "web"]) is False
    with pytest.raises(AssertionError, match="unknown"):
        peer.request(["format", "web"])
