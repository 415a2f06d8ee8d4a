"""``hivectl token`` and ``hivectl acl``: the operations on tokens and grants, for every front end.

Each takes the principal it acts for (``actor``: the CLI's user or sudo/doas invoker, the daemon's request
principal) and holds it to its own rights (docs/security.md):

- a grant or revocation on a path needs ``admin`` there (Proxmox's ``Permissions.Modify``);
- a token is made for the actor itself, or for another user by an admin of ``/``; a restricted token
  asks for a role its owner holds (the policy caps it at use anyway, this says so when it is made);
- tokens are listed and revoked by their owner or an admin of ``/``. A listing never holds a secret.
"""

from __future__ import annotations

import pwd
from pathlib import Path

from hivectl.auth import acl, policy, tokens
from hivectl.auth.errors import Forbidden
from hivectl.auth.model import at_least, check_account, check_path, check_role
from hivectl.auth.principal import Principal
from hivectl.errors import NotFound
from hivectl.store import Store


def _admin_of_root(store: Store, actor: Principal) -> bool:
    return at_least(policy.role_on(store.root, actor, "/", store), "admin")


def _owner(store: Store, actor: Principal, user: str | None) -> Principal:
    if user is None or user == actor.user:
        return Principal.for_uid(actor.uid)
    check_account(None, "--user", user)
    try:
        owner = Principal.for_uid(pwd.getpwnam(user).pw_uid)
    except KeyError:
        raise NotFound(f"--user {user}: no such user") from None
    if not _admin_of_root(store, actor):
        raise Forbidden(f"{actor} needs the admin role on / to make a token for {user}")
    return owner


def token_create(store: Store, actor: Principal, user: str | None = None, role: str | None = None,
                 path: str | None = None, expires: str = tokens.DEFAULT_EXPIRY,
                 dry_run: bool = False) -> tuple[tokens.Token, str] | None:
    """A new token (record, bearer string); the bearer is shown once and stored nowhere.

    ``dry_run``: every check, nothing made (None).
    """
    store.require_initialised()
    owner = _owner(store, actor, user)
    if role is not None:
        check_role(None, "--role", role)
        wanted = check_path(None, "--path", path or "/")
        have = policy.role_on(store.root, owner, wanted, store)
        if not at_least(have, role):
            raise Forbidden(f"{owner} has {have or 'no role'} on {wanted}: a token holds at most its owner's rights, "
                            f"so it cannot be given {role} there")
    if dry_run:
        tokens.parse_expiry(None, "--expires", expires)
        return None
    return tokens.create(store.root, owner.uid, role, path, expires)


def token_list(store: Store, actor: Principal) -> list[tokens.Token]:
    """The actor's tokens (every token for an admin of ``/``)."""
    every = tokens.load(store.root)
    return every if _admin_of_root(store, actor) else [t for t in every if t.uid == actor.uid]


def token_revoke(store: Store, actor: Principal, token_id: str, dry_run: bool = False) -> tokens.Token:
    """Revoke a token of the actor's (any token for an admin of ``/``)."""
    token = tokens.get(store.root, token_id)
    if token.uid != actor.uid and not _admin_of_root(store, actor):
        raise Forbidden(f"{actor} may revoke only its own tokens (token {token_id} is not)")
    return token if dry_run else tokens.revoke(store.root, token_id)


def _grant(store: Store, actor: Principal, role: str, path: str, subject: str) -> acl.Grant:
    store.require_initialised()
    grant = acl.make_grant(role, path, subject)
    if grant.subject.kind == "token":
        token = tokens.get(store.root, grant.subject.name)
        if not token.restricted:
            raise Forbidden(f"token {token.id} was made without --role: it holds exactly its owner's rights, and a "
                            "grant would not change them (make a restricted token with --role)")
    policy.authorize(store.root, actor, "admin", grant.path, store)
    return grant


def acl_grant(store: Store, actor: Principal, role: str, path: str, subject: str,
              dry_run: bool = False) -> acl.Grant:
    """Grant ``role`` on ``path`` to ``subject`` (``USER``, ``@GROUP`` or ``token:ID``)."""
    grant = _grant(store, actor, role, path, subject)
    if not dry_run:
        acl.add(store.root, grant)
    return grant


def acl_revoke(store: Store, actor: Principal, role: str, path: str, subject: str,
               dry_run: bool = False) -> acl.Grant:
    """Remove exactly that grant."""
    grant = acl.make_grant(role, path, subject)
    policy.authorize(store.root, actor, "admin", grant.path, store)
    if not dry_run:
        acl.remove(store.root, grant)
    return grant


def acl_list(store: Store) -> list[acl.Grant]:
    """Every grant, in the file's order."""
    return acl.load(Path(store.root))
