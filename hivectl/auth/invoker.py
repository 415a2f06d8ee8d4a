"""The CLI run through sudo or doas: whose rights apply, and the check that holds it to them.

``hivectl tenant rules`` writes sudo or doas rules that let a tenant's users run exactly ``hivectl start``,
``stop``, ``console`` and ``snapshot`` of the tenant's guests as root. hivectl does not rely on those
rules alone (defence in depth): run as root with ``SUDO_UID`` (sudo(8) sets it to the invoking user's
uid) or ``DOAS_USER`` (doas(1) sets it to the invoking user's name) in its environment, it acts for that
user and refuses what the user's grants do not allow, so a rule written too wide still cannot do more.
Both tools reset the environment by default (sudoers(5) ``env_reset``, doas.conf(5) without
``keepenv``), so the user cannot set them to someone else's; a root shell that still carries them
(``sudo -s``) is held to the invoking user too, which errs on the safe side.

What each command needs is the operations catalog's (hivectl/catalog.py, read by
``hivectl.cli.delegation``): the role of its operation on each resource it names (``operator`` on each
guest for start, stop, console, snapshot...), ``admin`` on ``/`` for anything the catalog does not place.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from hivectl.auth.errors import Forbidden
from hivectl.auth.principal import Principal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hivectl.store import Store


def delegated(environ: Mapping[str, str] | None = None, uid: int | None = None) -> Principal | None:
    """The user that ran hivectl through sudo or doas, None when hivectl acts for its own user."""
    env = os.environ if environ is None else environ
    if (os.getuid() if uid is None else uid) != 0:
        return None  # only root's sudo/doas variables mean anything: anyone can set them for themselves
    sudo_uid = env.get("SUDO_UID", "")
    if sudo_uid:
        if not sudo_uid.isdigit():
            raise Forbidden(f"SUDO_UID={sudo_uid!r} is not a uid: refusing to guess who ran sudo")
        return Principal.for_uid(int(sudo_uid))
    doas_user = env.get("DOAS_USER", "")
    if doas_user:
        try:
            return Principal.for_uid(pwd.getpwnam(doas_user).pw_uid)
        except KeyError:
            raise Forbidden(f"DOAS_USER={doas_user!r} is not a user: refusing to guess who ran doas") from None
    return None


def current(environ: Mapping[str, str] | None = None) -> Principal:
    """Who the CLI acts for: the sudo/doas invoker, else the process's own user."""
    return delegated(environ) or Principal.for_uid(os.getuid())


def check(vm_dir: Path, principal: Principal, needs: list[tuple[str, str]], store: Store | None = None) -> None:
    """Refuse (``Forbidden``) unless the delegating user holds every ``(role, path)`` of ``needs``."""
    from hivectl.auth.policy import authorize

    if principal.uid == 0:
        return
    if not needs:
        raise Forbidden(f"{principal}: the command names nothing to check")
    for role, path in needs:
        authorize(vm_dir, principal, role, path, store)
