"""Identity for new guests and NICs: SMBIOS UUIDs and stable MAC addresses.

MACs use vm-bhyve's prefix ``58:9c:fc:0`` and 20 random bits, like vm-bhyve 1.8; unlike vm-bhyve we check
the new address against every MAC already configured on this host, so two guests never share one.

It lives in the model because an identity is part of a guest's config: ``create``, ``clone``, image
deployment, cloud-init seeds and the supervisor all give one, and none of them should reach into another
layer to do it.
"""

from __future__ import annotations

from collections.abc import Iterable

from hivectl.model.guest import GuestConfig

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Protocol

MAC_PREFIX = "58:9c:fc"


if TYPE_CHECKING:  # a Protocol for mypy only: defining it at run time would import typing
    class HasConfig(Protocol):
        """Anything that can load a guest's config (a ``GuestRef``); keeps the model free of the store."""

        def config(self) -> GuestConfig: ...


def taken_macs(guests: Iterable[HasConfig]) -> set[str]:
    """Every MAC configured for ``guests`` (pass ``store.iter_guests()``), lower-cased, for ``new_mac``."""
    macs: set[str] = set()
    for guest in guests:
        for key, value in guest.config().values.items():
            if key.startswith("network") and key.endswith("_mac") and value:
                macs.add(value.lower())
    return macs


def new_uuid() -> str:
    # Imported here: ``uuid`` imports ``platform`` and ``secrets`` imports ``base64`` and ``hmac``, and every
    # start plans its identity, though only a guest without one needs them (benchmarks/README.md, start).
    import uuid as uuidlib

    return str(uuidlib.uuid4())


def new_mac(taken: Iterable[str] = ()) -> str:
    import secrets

    used = {m.lower() for m in taken}
    for _ in range(1000):
        bits = secrets.randbits(20)
        mac = f"{MAC_PREFIX}:{bits >> 16:02x}:{(bits >> 8) & 0xFF:02x}:{bits & 0xFF:02x}"
        if mac not in used:
            return mac
    raise RuntimeError("could not find a free MAC address in 58:9c:fc:0x:xx:xx after 1000 tries")
