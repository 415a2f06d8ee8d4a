"""The daemon's list cache (hivectl/daemon/listcache.py) on real files: every change a guest list depends
on is seen by the next request, with the kernel's notifications (inotify, hivectl/host/watch.py) and
with the stat fingerprint it falls back to; what the list does not depend on (a disk image being
written, the journal) does not make it read the guests again; the periodic re-read runs off the request
path and an answer older than the TTL is never served.

The reading is counted, not timed: ``render`` records each call, and the TTL runs on a clock the test
moves.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hivectl.daemon.listcache import ListCache
from hivectl.host import watch
from hivectl.rcfile import RcFile

LINUX = sys.platform.startswith("linux")
MODES = [pytest.param(True, id="inotify", marks=pytest.mark.skipif(not LINUX, reason="inotify is Linux's")),
         pytest.param(False, id="stat")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lister:
    """A guest list read from a vm_dir the way the cache's caller reads it: each call is counted."""

    def __init__(self, vm_dir: Path) -> None:
        self.vm_dir = vm_dir
        self.calls = 0

    def roots(self) -> list[str]:
        text = (self.vm_dir / ".config" / "system.conf").read_text()
        extra = [line.split("=", 1)[1].strip('"') for line in text.splitlines() if line.startswith("extra=")]
        return [str(self.vm_dir), *extra]

    def render(self) -> bytes:
        self.calls += 1
        rows = []
        for root in self.roots():
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                conf = Path(entry.path) / f"{entry.name}.conf"
                if entry.is_dir() and conf.is_file():
                    rows.append(f"{entry.name}:{conf.read_text().strip()}")
        return "\n".join(rows).encode()


def make_vm_dir(tmp_path: Path, guests: int = 3) -> Path:
    vm_dir = tmp_path / "vm"
    (vm_dir / ".config").mkdir(parents=True)
    (vm_dir / ".config" / "system.conf").write_text("")
    for n in range(guests):
        (vm_dir / f"g{n}").mkdir()
        (vm_dir / f"g{n}" / f"g{n}.conf").write_text('cpu="1"\n')
    return vm_dir


def cache_for(vm_dir: Path, use_watcher: bool, clock: Callable[[], float] | None = None,
              ttl: float = 3600.0) -> ListCache:
    cache = ListCache(vm_dir / ".config", ttl=ttl, use_watcher=use_watcher, clock=clock or Clock())
    assert cache.watching == use_watcher
    return cache


@pytest.mark.parametrize("use_watcher", MODES)
def test_every_change_the_list_depends_on_is_seen_by_the_next_request(tmp_path: Path, use_watcher: bool) -> None:
    vm_dir = make_vm_dir(tmp_path)
    lister = Lister(vm_dir)
    cache = cache_for(vm_dir, use_watcher)

    def get() -> str:
        return cache.get((), lister.roots, lister.render).decode()

    assert 'g1:cpu="1"' in get() and lister.calls == 1
    assert 'g1:cpu="1"' in get() and lister.calls == 1  # from the cache

    conf = RcFile.load(vm_dir / "g1" / "g1.conf")  # as hivectl edits it: written aside, renamed
    conf.set("cpu", "2")
    conf.save()
    assert 'g1:cpu="2"' in get() and lister.calls == 2

    with open(vm_dir / "g2" / "g2.conf", "a") as handle:  # in place, as nano or `echo >>` would
        handle.write('memory="1G"\n')
    assert 'memory="1G"' in get() and lister.calls == 3

    (vm_dir / "g3").mkdir()  # a new guest: its directory, then its config inside the directory
    assert "g3" not in get() and lister.calls == 4
    (vm_dir / "g3" / "g3.conf").write_text('cpu="4"\n')
    assert 'g3:cpu="4"' in get() and lister.calls == 5

    (vm_dir / "g0" / "run.lock").write_text("")  # run-time files appear and go in the guest's directory
    get()
    assert lister.calls == 6
    (vm_dir / "g0" / "run.lock").unlink()
    get()
    assert lister.calls == 7

    os.rename(vm_dir / "g2", vm_dir / "g9")  # rename
    listing = get()
    assert "g9:" not in listing and "g2:" not in listing and lister.calls == 8  # g9 has no g9.conf yet
    os.rename(vm_dir / "g9" / "g2.conf", vm_dir / "g9" / "g9.conf")
    assert "g9:" in get() and lister.calls == 9

    extra = tmp_path / "extra"  # a datastore added in system.conf, then a guest in it
    extra.mkdir()
    (vm_dir / ".config" / "system.conf").write_text(f'extra="{extra}"\n')
    get()
    assert lister.calls == 10
    (extra / "x1").mkdir()
    (extra / "x1" / "x1.conf").write_text('cpu="8"\n')
    assert 'x1:cpu="8"' in get()
    os.utime(vm_dir / "g1" / "g1.conf", ns=(1, 1))  # only its modification time (touch -t)
    calls = lister.calls
    get()
    assert lister.calls == calls + 1

    import shutil

    shutil.rmtree(vm_dir / "g1")  # a guest destroyed
    assert "g1:" not in get()
    assert get() == lister.render().decode()


@pytest.mark.parametrize("use_watcher", MODES)
def test_what_the_list_does_not_depend_on_does_not_read_it_again(tmp_path: Path, use_watcher: bool) -> None:
    vm_dir = make_vm_dir(tmp_path)
    lister = Lister(vm_dir)
    cache = cache_for(vm_dir, use_watcher)
    (vm_dir / "g0" / "disk0.img").write_bytes(b"\0" * 4096)
    (vm_dir / ".config" / "audit.jsonl").write_text("")
    cache.get((), lister.roots, lister.render)
    with open(vm_dir / "g0" / "disk0.img", "r+b") as disk:  # a running guest writing its disk
        for n in range(50):
            disk.seek(n * 64)
            disk.write(b"x" * 64)
            disk.flush()
            cache.get((), lister.roots, lister.render)
    with open(vm_dir / ".config" / "audit.jsonl", "a") as log:  # the journal grows with every change
        log.write("{}\n")
    cache.get((), lister.roots, lister.render)
    assert lister.calls == 1


@pytest.mark.parametrize("use_watcher", MODES)
def test_the_periodic_reread_is_off_the_request_path_and_never_late(tmp_path: Path, use_watcher: bool) -> None:
    vm_dir = make_vm_dir(tmp_path)
    lister = Lister(vm_dir)
    clock = Clock()
    cache = cache_for(vm_dir, use_watcher, clock, ttl=1.0)
    cache.get((), lister.roots, lister.render)
    assert lister.calls == 1
    clock.now += 0.4
    cache.get((), lister.roots, lister.render)
    assert (lister.calls, cache.refreshes) == (1, 0)  # young: served as it is

    release = threading.Event()
    in_refresh = threading.Event()

    def slow_render() -> bytes:
        in_refresh.set()
        assert release.wait(30)
        return lister.render()

    clock.now += 0.2  # older than half the TTL: served, and read again on another thread
    assert cache.get((), lister.roots, slow_render) == lister.render()
    lister.calls -= 1  # the comparison's own reading
    assert in_refresh.wait(30)
    assert cache.get((), lister.roots, slow_render) == lister.render()  # one refresh at a time: no second
    lister.calls -= 1
    release.set()
    deadline = time.monotonic() + 30
    while cache.refreshes < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.refreshes == 1 and lister.calls == 2 and cache.misses == 1

    clock.now += 1.0  # the refresh was made at 1000.6: at 1001.6 it is a TTL old and read on the request
    cache.get((), lister.roots, lister.render)
    assert cache.misses == 2 and lister.calls == 3


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_the_watcher_reports_entries_and_closed_writes_and_nothing_else(tmp_path: Path) -> None:
    watcher = watch.open_watcher()
    assert watcher is not None
    try:
        watcher.watch(str(tmp_path))
        assert watcher.read() == []
        (tmp_path / "a").write_text("x")  # created, then closed after writing
        (tmp_path / "b").mkdir()
        os.rename(tmp_path / "a", tmp_path / "c")
        seen = [(e.path, e.name, e.mask & (watch.ENTRIES | watch.IN_CLOSE_WRITE)) for e in watcher.read()]
        assert (str(tmp_path), "a", watch.IN_CREATE) in seen
        assert (str(tmp_path), "a", watch.IN_CLOSE_WRITE) in seen
        assert (str(tmp_path), "c", watch.IN_MOVED_TO) in seen
        assert any(name == "b" and mask & watch.IN_CREATE for _, name, mask in seen)
        assert watcher.read() == []  # read once
        with open(tmp_path / "c", "a") as handle:  # writes to a file kept open: nothing until it closes
            handle.write("more")
            handle.flush()
            assert watcher.read() == []
        assert [e.name for e in watcher.read()] == ["c"]
        watcher.watch(str(tmp_path / "b"))
        (tmp_path / "b").rmdir()
        gone = watcher.read()
        assert any(e.path == str(tmp_path / "b") and e.mask & watch.SELF for e in gone)
        assert str(tmp_path / "b") not in watcher.watched()
    finally:
        watcher.close()


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_a_closed_cache_gives_its_watcher_back_and_still_sees_changes(tmp_path: Path) -> None:
    vm_dir = make_vm_dir(tmp_path)
    lister = Lister(vm_dir)
    cache = cache_for(vm_dir, True)
    cache.get((), lister.roots, lister.render)
    cache.close()
    assert not cache.watching
    (vm_dir / "g0" / "g0.conf").write_text('cpu="7"\n')
    assert b'g0:cpu="7"' in cache.get((), lister.roots, lister.render)  # by the stat fingerprint now
