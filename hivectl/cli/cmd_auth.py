"""``hivectl token``, ``hivectl acl`` and ``hivectl tenant``: who may do what (docs/security.md)."""

from __future__ import annotations

import argparse
import sys
import time

from hivectl.cli import render
from hivectl.cli.context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hivectl.auth.principal import Principal

ROLES_HELP = "viewer, operator (start, stop, console, snapshot) or admin"
PATHS_HELP = "/, /guests[/NAME], /datastores[/NAME] or /switches[/NAME]"

TOKEN_DESCRIPTION = f"""\
Bearer tokens for the daemon's TCP listener. A token belongs to a user and holds at most that user's
rights; with --role it holds only that role on --path (default /), and never more than its owner.
The secret is printed once, by 'create', and stored only as a hash (vm_dir/.config/tokens.json, 0600).

  token create [--role ROLE [--path PATH]] [--expires 90d|12h|2w|never] [--user USER] [--json]
  token list [--json]                         ID OWNER ROLE PATH EXPIRES (never a secret)
  token revoke ID

roles: {ROLES_HELP}; paths: {PATHS_HELP}."""

ACL_DESCRIPTION = f"""\
Grants: a role on a path, for a user, a group (@GROUP) or a restricted token (token:ID), inherited by
everything below the path; a more specific grant replaces an inherited one, a user's grant replaces its
groups' at the same path, and a guest also inherits from its datastore (vm_dir/.config/acl.conf).
uid 0 is admin on /. A guest's owner= user and group= members are operators of that guest.

  acl grant ROLE PATH USER|@GROUP|token:ID
  acl revoke ROLE PATH USER|@GROUP|token:ID
  acl list [--json]

roles: {ROLES_HELP}; paths: {PATHS_HELP}."""


def _actor() -> Principal:
    """Who the command acts for: the sudo/doas invoker, else the user running it."""
    from hivectl.auth import invoker

    return invoker.current()


# -- token ----------------------------------------------------------------------------------------------
def configure_token(p: argparse.ArgumentParser) -> None:
    p.description = TOKEN_DESCRIPTION
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make a token and print its secret once")
    create.add_argument("--role", metavar="ROLE", help=f"restrict the token to this role: {ROLES_HELP}")
    create.add_argument("--path", metavar="PATH", help=f"where --role applies (default /): {PATHS_HELP}")
    create.add_argument("--expires", default="90d", metavar="LIFETIME",
                        help="lifetime: 90m, 12h, 30d, 2w, or never (default 90d)")
    create.add_argument("--user", metavar="USER", help="owner of the token (default: you; others: admins of /)")
    create.add_argument("--json", action="store_true", help="print the id and the token as a JSON object")
    create.add_argument("--dry-run", action="store_true", help="check everything, make no token")
    lst = sub.add_parser("list", help="list tokens (yours, or all for an admin of /)")
    lst.add_argument("--json", action="store_true", help="print a JSON array of objects")
    revoke = sub.add_parser("revoke", help="delete a token: it is refused from then on")
    revoke.add_argument("--dry-run", action="store_true", help="check everything, revoke nothing")
    revoke.add_argument("id", metavar="ID")


def _when(stamp: int | None) -> str:
    return "never" if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def run_token(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops import access

    if args.action == "create":
        made = access.token_create(ctx.store, _actor(), args.user, args.role, args.path, args.expires, args.dry_run)
        if made is None:
            sys.stdout.write("token create: allowed (--dry-run: no token made)\n")
            return 0
        token, bearer = made
        if args.json:
            render.as_json({**token.as_json(), "token": bearer})
        else:
            sys.stdout.write(f"{bearer}\n")
            sys.stderr.write(f"token {token.id} expires {_when(token.expires)}; its secret is shown only now\n")
        return 0
    if args.action == "list":
        found = access.token_list(ctx.store, _actor())
        if args.json:
            render.as_json([t.as_json() for t in found])
        else:
            rows = [[r["id"], r["owner"], r["role"] or "(owner's)", r["path"] or "-",
                     _when(r["expires"]) + (" (expired)" if r["expired"] else "")]
                    for r in (t.as_json() for t in found)]
            render.table(["ID", "OWNER", "ROLE", "PATH", "EXPIRES"], rows)
        return 0
    token = access.token_revoke(ctx.store, _actor(), args.id, args.dry_run)
    sys.stdout.write(f"token {token.id} {'would be revoked (--dry-run)' if args.dry_run else 'revoked'}\n")
    return 0


# -- acl ------------------------------------------------------------------------------------------------
def configure_acl(p: argparse.ArgumentParser) -> None:
    p.description = ACL_DESCRIPTION
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for verb, helptext in (("grant", "grant a role on a path"), ("revoke", "remove a grant")):
        one = sub.add_parser(verb, help=helptext)
        one.add_argument("--dry-run", action="store_true", help="check everything, change nothing")
        one.add_argument("role", metavar="ROLE")
        one.add_argument("path", metavar="PATH")
        one.add_argument("subject", metavar="USER|@GROUP|token:ID")
    lst = sub.add_parser("list", help="list every grant")
    lst.add_argument("--json", action="store_true", help="print a JSON array of objects")


def run_acl(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops import access

    if args.action == "list":
        grants = access.acl_list(ctx.store)
        if args.json:
            render.as_json([g.as_json() for g in grants])
        else:
            render.table(["ROLE", "PATH", "SUBJECT"], [[g.role, g.path, str(g.subject)] for g in grants])
        return 0
    change = access.acl_grant if args.action == "grant" else access.acl_revoke
    grant = change(ctx.store, _actor(), args.role, args.path, args.subject, args.dry_run)
    if args.dry_run:
        sys.stdout.write(f"acl {args.action}: {grant.line()} (--dry-run: not written)\n")
    return 0


# -- tenant ---------------------------------------------------------------------------------------------
TENANT_DESCRIPTION = """\
A tenant, as in the bhyve cookbook: its own datastore (a new ZFS dataset or directory), its own
VLAN switch, a memory limit (rctl on FreeBSD) and a user and/or group who operate (start, stop,
console, snapshot) every guest in its datastore. One plan, with rollback; --dry-run prints it.

  tenant create NAME --datastore zfs:POOL/DS|/DIR --vlan N --memory 16G [--interface IF]
                [--user USER] [--group GROUP] [--dry-run]
  tenant list [--json]
  tenant destroy NAME [--dry-run]       refused while it has guests; its data is always kept
  tenant rules NAME --sudo|--doas [--install [--file PATH]] [--command PATH] [--dry-run]

'rules' prints (or installs, checked with visudo -c / doas -C first) the sudo or doas rules that let
the tenant's user and group run exactly 'hivectl start|stop|console|snapshot GUEST' for each of its
guests; hivectl run that way checks the invoking user's grants too (docs/security.md)."""


def configure_tenant(p: argparse.ArgumentParser) -> None:
    p.description = TENANT_DESCRIPTION
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make a tenant's datastore, switch, limit and grants")
    create.add_argument("--datastore", required=True, metavar="PATH", help="zfs:POOL/DATASET or /DIRECTORY (new)")
    create.add_argument("--vlan", required=True, metavar="N", help="the tenant's VLAN, 1 to 4094")
    create.add_argument("--memory", required=True, metavar="SIZE", help="memory limit of the tenant (16G)")
    create.add_argument("--interface", metavar="IF", help="physical port of the tenant's switch, tagged with the VLAN")
    create.add_argument("--user", metavar="USER", help="the tenant's user (operator of its guests)")
    create.add_argument("--group", metavar="GROUP", help="the tenant's group (its members operate its guests)")
    create.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    create.add_argument("name", metavar="NAME")
    lst = sub.add_parser("list", help="list tenants")
    lst.add_argument("--json", action="store_true", help="print a JSON array of objects")
    destroy = sub.add_parser("destroy", help="remove a tenant without guests (its data is kept)")
    destroy.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    destroy.add_argument("name", metavar="NAME")
    rules = sub.add_parser("rules", help="print or install the tenant's sudo or doas rules")
    kind = rules.add_mutually_exclusive_group(required=True)
    kind.add_argument("--sudo", dest="kind", action="store_const", const="sudo", help="sudoers(5) rules")
    kind.add_argument("--doas", dest="kind", action="store_const", const="doas", help="doas.conf(5) rules")
    rules.add_argument("--install", action="store_true", help="write them (checked first, replaced atomically)")
    rules.add_argument("--file", metavar="PATH", help="where --install writes (default: sudoers.d/hivectl-NAME or "
                                                     "doas.conf under /usr/local/etc on FreeBSD, /etc on Linux)")
    rules.add_argument("--command", metavar="PATH", help="hivectl's absolute path in the rules (default: this one)")
    rules.add_argument("--dry-run", action="store_true",
                       help="with --install: print what would be written, write nothing")
    rules.add_argument("name", metavar="NAME")


def default_command() -> str:
    """The absolute path of the hivectl being run (what sudo or doas must be told to run)."""
    import os
    import shutil

    called = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if os.path.isabs(called) and os.path.basename(called) == "hivectl":
        return os.path.realpath(called) if os.path.islink(called) else called
    return shutil.which("hivectl") or "/usr/local/bin/hivectl"


def run_tenant(ctx: Context, args: argparse.Namespace) -> int:
    from pathlib import Path

    from hivectl.ops import tenants

    if args.action == "create":
        request = tenants.TenantRequest(args.name, args.datastore, args.vlan, args.memory, args.user, args.group,
                                        args.interface)
        ctx.execute(tenants.plan_create(ctx.store, ctx.host, request), args.dry_run)
        return 0
    if args.action == "list":
        found = [t.as_json() for t in tenants.tenants(ctx.store)]
        if args.json:
            render.as_json(found)
        else:
            render.table(["NAME", "DATASTORE", "SWITCH", "VLAN", "MEMORY", "USER", "GROUP"],
                         [[t["name"], t["path"], t["switch"], t["vlan"], t["memory"], t["user"] or "-",
                           t["group"] or "-"] for t in found])
        return 0
    if args.action == "destroy":
        plan, note = tenants.plan_destroy(ctx.store, ctx.host, args.name)
        ctx.execute(plan, args.dry_run)
        if not args.dry_run:
            sys.stderr.write(f"hivectl: {note}\n")
        return 0
    text, where = tenants.rules(ctx.store, ctx.host, args.name, args.kind, args.command or default_command(),
                                args.install, Path(args.file) if args.file else None, args.dry_run)
    if where is None or args.dry_run:
        sys.stdout.write(text)
    if where is not None:
        sys.stderr.write(f"hivectl: {'would install' if args.dry_run else 'installed'} {where}\n")
    return 0
