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
