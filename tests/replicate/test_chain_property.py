"""10,000 random interleavings of snapshot, send (whole or interrupted) and prune on both sides never break
the replication chain.

The model is two in-memory ZFS: each a list of snapshots (name, guid, txg, pending), holds, and on the
receiving side the partial state of an interrupted receive. Every decision is the real one: what to send
next (hivectl/transfer/chain.next_step), the last common snapshot and what counts as replicated
(hivectl/transfer/send.last_common, replicated, fed the same state documents hivectl/transfer/side.state
returns), and what pruning removes (hivectl/transfer/side.prune_choice over hivectl/retention's select).
The model applies them as ZFS would, and refuses what ZFS refuses: destroying a held snapshot, an
incremental whose base is not the target's newest snapshot.

After every operation: the sides still have a usable common base (next_step does not raise Diverged), no
pending snapshot was pruned on the source, and a send that is not interrupted leaves the copy at the
source's newest snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivectl.retention import Item, parse_policy
from hivectl.transfer.chain import Step, next_step
from hivectl.transfer.send import last_common, replicated
from hivectl.transfer.side import prune_choice, snaps

POLICIES = ["keep-last=1", "keep-last=2", "keep-last=1,keep-hourly=2", "keep-hourly=3,keep-daily=1",
            "keep-daily=2", "keep-last=3,keep-weekly=1"]
HOUR = 3600


@dataclass
class Zfs:
    rows: list[list[Any]] = field(default_factory=list)  # [name, guid, txg, time, pending]
    held: str | None = None
    token: Step | None = None  # the step an interrupted receive was doing

    def state(self) -> dict[str, Any]:
        token = "t" if self.token else None
        return {"exists": bool(self.rows) or self.token is not None, "resumable": True,
                "members": {"": {"snapshots": [list(r) for r in self.rows], "token": token}}}


class Broken(AssertionError):
    pass


@dataclass
class World:
    src: Zfs = field(default_factory=Zfs)
    dst: Zfs = field(default_factory=Zfs)
    txg: int = 0

    def snapshot(self) -> None:
        self.txg += 1
        self.src.rows.append([f"repl-{self.txg:05d}", 1000 + self.txg, self.txg, self.txg * HOUR, True])

    def _apply(self, step: Step) -> None:
        by_name = {r[0]: r for r in self.src.rows}
        if step.kind == "full":
            if self.dst.rows:
                raise Broken("a full stream into a dataset that has snapshots")
            self.dst.rows = [[*by_name[step.snapshot][:4], False]]
        elif step.kind == "incremental":
            if not self.dst.rows or self.dst.rows[-1][0] != step.base:
                raise Broken(f"incremental from {step.base} onto {self.dst.rows[-1:] or 'nothing'}")
            self.dst.rows.append([*by_name[step.snapshot][:4], False])

    def send(self, interrupt_at: int | None) -> None:
        for count in range(10_000):
            step = next_step(snaps(self.src.state()["members"][""]),
                             snaps(self.dst.state()["members"][""]), "t" if self.dst.token else None)
            if step is None:
                break
            if interrupt_at is not None and count == interrupt_at:
                if step.kind != "resume":
                    self.dst.token = step
                return  # the connection dropped; the partial state stays
            if step.kind == "resume":
                assert self.dst.token is not None
                if self.dst.token.snapshot not in {r[0] for r in self.src.rows}:
                    raise Broken("a token whose snapshot the source no longer has")
                self._apply(self.dst.token)
                self.dst.token = None
            else:
                self._apply(step)
        else:
            raise Broken("the send never finished")
        common = last_common(self.src.state(), self.dst.state())
        if self.src.rows and common != self.src.rows[-1][0]:
            raise Broken(f"after a whole send the copy is at {common}, not {self.src.rows[-1][0]}")
        self.src.held = self.dst.held = common
        done = set(replicated(self.src.state(), self.dst.state()))
        for row in self.src.rows:
            if row[0] in done:
                row[4] = False

    def prune(self, which: Zfs, policy: str) -> None:
        common = last_common(self.src.state(), self.dst.state())
        items = [Item(r[0], r[3], pending=bool(r[4])) for r in which.rows]
        keep = [name for name in (common, which.held) if name]  # as side.prune: the common and the held one
        gone = set(prune_choice(items, parse_policy(policy), keep))
        for row in which.rows:
            if row[0] in gone and row[0] == which.held:
                raise Broken(f"pruning chose the held snapshot {row[0]} (zfs destroy: dataset is busy)")
            if row[0] in gone and which is self.src and row[4]:
                raise Broken(f"pruning removed {row[0]} before it was replicated")
            if row[0] in gone and which is self.src and self.dst.token and row[0] == self.dst.token.snapshot:
                raise Broken(f"pruning removed {row[0]}, which an interrupted receive still needs")
        which.rows = [r for r in which.rows if r[0] not in gone]

    def check(self) -> None:
        # the chain holds: the next send can be decided (raises Diverged when the sides share no base)
        next_step(snaps(self.src.state()["members"][""]), snaps(self.dst.state()["members"][""]),
                  "t" if self.dst.token else None)


OPS = st.one_of(
    st.just(("snapshot",)),
    st.tuples(st.just("send"), st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("prune-source"), st.sampled_from(POLICIES)),
    st.tuples(st.just("prune-target"), st.sampled_from(POLICIES)),
)


def play(ops: list[tuple[Any, ...]]) -> World:
    world = World()
    for op in ops:
        if op[0] == "snapshot":
            world.snapshot()
        elif op[0] == "send":
            world.send(op[1])
        elif op[0] == "prune-source":
            world.prune(world.src, op[1])
        else:
            world.prune(world.dst, op[1])
        world.check()
    return world


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=40))
def test_random_interleavings_never_break_the_chain(ops: list[tuple[Any, ...]]) -> None:
    play(ops)


def test_the_model_catches_a_broken_chain() -> None:
    """The model can fail: pruning the copy down to nothing after the source lost the common base is
    a broken chain, and it says so."""
    import pytest

    from hivectl.transfer.chain import Diverged

    world = play([("snapshot",), ("send", None), ("snapshot",), ("send", None)])
    world.dst.rows = world.dst.rows[:1]  # the copy lost its newest snapshot behind hivectl's back
    world.src.rows = world.src.rows[1:]  # and the source its oldest
    with pytest.raises(Diverged):
        world.check()
