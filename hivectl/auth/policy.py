"""The decision: which role a principal holds on a path, and ``authorize`` that refuses with 403.

The rules follow Proxmox VE's (pveum(1), "Permission Management", "Inheritance"), without its NoAccess
role (hivectl's roles only add):

1. uid 0 is ``admin`` on ``/``: root can already do everything on the host, a grant could not stop it.
2. Walking from the path up to ``/``, the first level with a grant that applies decides. At that level
   the user's own grants replace its groups' grants (the highest role among them counts). A more
   specific grant therefore replaces an inherited one: ``admin`` on ``/`` with ``viewer`` on
   ``/guests/db`` is ``viewer`` on ``db`` (the way to narrow a user on one guest).
3. A guest also inherits from its datastore, as a Proxmox guest does from its pool: its role is the
   higher of what ``/guests/NAME`` and ``/datastores/DS`` (each with rule 2; the datastore's chain
   stops below ``/``, which the guest's own chain holds) give. A tenant's group is
   granted ``operator`` on the tenant's datastore and so operates every guest in it.
4. A guest's ``owner=`` user and the members of its ``group=`` hold at least ``operator`` on it
   (issue 13, "Tenants and owners").
5. A token holds at most its owner's rights: an unrestricted token has exactly its owner's role; a
   restricted one (``token create --role R --path P``, and ``acl grant ... token:ID``) has the lower of
   its owner's role and its own grants' (rules 2 and 3 over the grants to ``token:ID``). This is
   Proxmox's privilege-separated token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hivectl.auth import acl, tokens
from hivectl.auth.errors import Forbidden
from hivectl.auth.model import RANK, Subject, ancestors, at_least, check_path, check_role, higher, lower
from hivectl.auth.principal import Principal
from hivectl.errors import HivectlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hivectl.store import Store


class GuestFacts:
    """What the policy needs to know about a guest: its datastore, ``owner=`` and ``group=``."""

    __slots__ = ("datastore", "group", "owner")

    def __init__(self, datastore: str, owner: str = "", group: str = "") -> None:
        self.datastore = datastore
        self.owner = owner
        self.group = group


def guest_facts(store: Store, name: str) -> GuestFacts | None:
    """The facts of guest ``name``, None when there is no such guest (a path may name a guest to be)."""
    from hivectl.rcfile import read_values

    try:
        ref = store.find(name)
    except HivectlError:
        return None
    if ref is None:
        return None
    values = read_values(ref.conf_path)
    return GuestFacts(ref.datastore.name, values.get("owner", ""), values.get("group", ""))


def _level_role(grants: list[acl.Grant], path: str, is_user: Callable[[Subject], bool],
                is_group: Callable[[Subject], bool], levels: slice = slice(None)) -> str | None:
    """Rule 2 on one chain: the first level (most specific) with an applying grant decides."""
    for level in ancestors(path)[levels]:
        here = [g for g in grants if g.path == level]
        for applies in (is_user, is_group):
            roles = [g.role for g in here if applies(g.subject)]
            if roles:
                return max(roles, key=RANK.__getitem__)
    return None


def _chains(grants: list[acl.Grant], path: str, facts: GuestFacts | None, is_user: Callable[[Subject], bool],
            is_group: Callable[[Subject], bool]) -> str | None:
    """Rules 2 and 3: the path's own chain, and for a guest its datastore's chain too.

    The datastore's chain stops below ``/``: ``/`` is on the guest's own chain already, where a more
    specific guest grant replaces it; met again through the datastore it would undo that narrowing.
    """
    role = _level_role(grants, path, is_user, is_group)
    if facts is not None:
        role = higher(role, _level_role(grants, f"/datastores/{facts.datastore}", is_user, is_group, slice(0, -1)))
    return role


def role_of_user(grants: list[acl.Grant], principal: Principal, path: str, facts: GuestFacts | None) -> str | None:
    """The role of the principal's user (rules 1 to 4), whatever token it came through."""
    if principal.uid == 0:
        return "admin"
    user = principal.user

    def is_user(subject: Subject) -> bool:
        return subject.kind == "user" and subject.name == user

    def is_group(subject: Subject) -> bool:
        return subject.kind == "group" and subject.name in principal.groups

    role = _chains(grants, path, facts, is_user, is_group) if user is not None else None
    if facts is not None and user is not None and (
            (facts.owner and facts.owner == user) or (facts.group and facts.group in principal.groups)):
        role = higher(role, "operator")
    return role


def role_on(vm_dir: Path, principal: Principal, path: str, store: Store | None = None,
            facts: GuestFacts | None = None) -> str | None:
    """The role ``principal`` holds on ``path`` (None: none at all)."""
    check_path("request", "path", path)
    grants = acl.load(vm_dir)
    if facts is None and path.startswith("/guests/"):
        facts = guest_facts(store if store is not None else _store(vm_dir), path.split("/", 2)[2])
    role = role_of_user(grants, principal, path, facts)
    if principal.token_id is None:
        return role
    token = next((t for t in tokens.load(vm_dir) if t.id == principal.token_id), None)
    if token is None or token.expired():
        return None  # revoked or expired since the request was authenticated
    if not token.restricted:
        return role
    mine = Subject("token", token.id)
    own = [g for g in grants if g.subject == mine]
    if token.role is not None and token.path is not None:
        own.append(acl.Grant(token.role, token.path, mine))
    token_role = _chains(own, path, facts, lambda s: s == mine, lambda s: False)
    return lower(role, token_role)


def authorize(vm_dir: Path, principal: Principal, role: str, path: str, store: Store | None = None) -> None:
    """Refuse (``Forbidden``, HTTP 403) unless ``principal`` holds ``role`` on ``path``."""
    check_role("request", "role", role)
    have = role_on(vm_dir, principal, path, store)
    if not at_least(have, role):
        raise Forbidden(f"{principal} needs the {role} role on {path} (has {have or 'no role'} there)")


def _store(vm_dir: Path) -> Store:
    """A store over ``vm_dir`` (a directory) when the caller has none: guests are found as ``list`` finds them."""
    from hivectl.host.local import LocalHost
    from hivectl.hostconf import HostSettings
    from hivectl.store import Store

    return Store(HostSettings(vm_dir=str(vm_dir)), make_host=LocalHost)
