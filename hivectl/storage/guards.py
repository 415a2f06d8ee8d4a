"""Checks every storage operation makes before it touches a guest's disks."""

from __future__ import annotations

from hivectl.errors import Conflict
from hivectl.runtime import guest_state
from hivectl.store import GuestRef


def require_stopped(ref: GuestRef, action: str, hint: str = "stop it first") -> None:
    """Refuse to change the disks of a guest that runs, is locked (here or by another host) or suspended:
    its hypervisor may be writing to them, and a suspended guest's saved memory refers to them."""
    state = guest_state(ref.directory, ref.name)
    if state.state != "Stopped":
        raise Conflict(f"cannot {action} {ref.name}: it is {state.label()}; {hint}")
    if state.stale:
        raise Conflict(stale_refusal(ref.name, action))


def stale_refusal(name: str, action: str) -> str:
    """A stopped guest whose last run died without cleaning up: what it left (run.lock, recorded taps, its
    VM) is torn down by the next ``stop`` or ``start`` (hivectl/runner/stale.py), not by a disk operation."""
    return (f"cannot {action} {name}: its last run ended without cleaning up (run.lock, taps or VM left); "
            f"'hivectl stop {name}' clears that")
