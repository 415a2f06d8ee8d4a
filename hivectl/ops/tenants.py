"""``hivectl tenant``: the bhyve cookbook's tenant (a dataset, a VLAN, a memory limit, a user) in one plan.

The cookbook's security chapter gives each tenant its own ZFS dataset, its own VLAN and an rctl memory
limit for its user (``rctl -a user:tenant1:vmemoryuse:deny=16G``, rctl(8)). ``tenant create`` makes all
of them in one plan, with rollback, shown whole by ``--dry-run``:

1. the tenant's record, ``vm_dir/.config/tenants/NAME.conf`` (what ``list``, ``destroy`` and ``rules``
   read back);
2. its datastore: ``zfs create POOL/DATASET`` for ``zfs:POOL/DATASET``, else a new directory, then
   ``datastore_list`` and ``path_NAME`` in system.conf, as ``datastore add`` writes them;
3. its switch, a standard switch called NAME whose physical port (``--interface``) is tagged with the
   VLAN (``switch create -i IF -n VLAN NAME``);
4. on FreeBSD the rctl rule: ``user:USER:vmemoryuse:deny=BYTES`` with ``--user``, else
   ``loginclass:NAME:...`` (put the tenant's users in login class NAME, login.conf(5));
5. the grants: ``operator`` on ``/datastores/NAME`` for ``--user`` and ``@GROUP``, so they start, stop,
   snapshot and use the console of every guest in the tenant's datastore (docs/security.md, rule 3).

``tenant destroy`` undoes 2 to 5 except the data: the dataset or directory is never deleted (it is only
removed from system.conf, as ``datastore remove`` does), and it is refused while the datastore holds a
guest. ``tenant rules`` writes the sudo or doas rules of the path without the daemon.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from hivectl import validate
from hivectl.auth import acl
from hivectl.auth.model import OPERATOR_OPERATIONS
from hivectl.errors import ConfigError, Conflict, NotFound, UsageError
from hivectl.host.base import Host
from hivectl.plan import Call, CreateFile, MakeDir, Plan, Run, config_edit
from hivectl.rcfile import RcFile, check_value, parse_text, read_text
from hivectl.store import Store

TENANTS_DIR = "tenants"
KEYS = ("datastore", "path", "switch", "vlan", "interface", "memory", "user", "group", "rctl")


@dataclass(frozen=True)
class TenantRequest:
    """``tenant create`` as typed (raw text: validated by ``plan_create``)."""

    name: str
    datastore: str
    vlan: str
    memory: str
    user: str | None = None
    group: str | None = None
    interface: str | None = None


@dataclass(frozen=True)
class Tenant:
    """A tenant's record."""

    name: str
    values: dict[str, str]

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def subjects(self) -> list[str]:
        """Whom the tenant's grants are for: ``USER`` and ``@GROUP``."""
        return [s for s in (self.get("user"), f"@{self.get('group')}" if self.get("group") else "") if s]

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, **{k: self.get(k) for k in KEYS}}


def tenants_dir(store: Store) -> Path:
    return store.config_dir / TENANTS_DIR


def record_path(store: Store, name: str) -> Path:
    return tenants_dir(store) / f"{name}.conf"


def check_name(value: str) -> str:
    """A tenant's name: its switch's and datastore's too, so the stricter switch rule (letters, digits, '_')."""
    validate.name(None, "name", value, "tenant name")
    if not value.replace("_", "").isalnum() or not value.isascii() or len(value) > 12:
        raise ConfigError(None, "name", value, "a tenant name has at most 12 letters, digits and '_' (it also "
                                               "names the tenant's switch, vm-NAME, and its datastore)")
    return value


def load(store: Store, name: str) -> Tenant:
    path = record_path(store, check_name(name))
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise NotFound(f"tenant {name} does not exist (see 'hivectl tenant list')") from None
    return Tenant(name, parse_text(text))


def tenants(store: Store) -> list[Tenant]:
    """Every tenant, by name."""
    try:
        names = sorted(p.name[:-5] for p in tenants_dir(store).iterdir() if p.name.endswith(".conf"))
    except FileNotFoundError:
        return []
    return [load(store, name) for name in names]


def _account_exists(kind: str, value: str) -> str:
    validate.account(None, f"--{kind}", value, kind)
    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(value)
    except KeyError:
        raise NotFound(f"--{kind} {value}: no such {kind} on this host (create it first: pw {kind}add, "
                       f"{kind}add)") from None
    return value


def rctl_rule(host: Host, tenant: str, user: str | None, memory: int) -> str | None:
    """The tenant's rctl(8) rule on FreeBSD (None elsewhere: see docs/security.md)."""
    if host.platform != "freebsd":
        return None
    subject = f"user:{user}" if user else f"loginclass:{tenant}"
    return f"{subject}:vmemoryuse:deny={memory}"


def _datastore_steps(store: Store, name: str, spec: str) -> list[Call | Run | MakeDir]:
    if spec.startswith("zfs:"):
        dataset = spec[4:]
        validate.plain_path(None, "--datastore", dataset)
        if not dataset or dataset.startswith("/") or "@" in dataset or "//" in dataset or dataset.endswith("/"):
            raise ConfigError(None, "--datastore", spec, "expected zfs:POOL/DATASET")
        listed = store.host.run(["zfs", "list", "-H", "-o", "name", dataset], check=False)
        if listed.status == 0:
            raise Conflict(f"ZFS dataset {dataset} exists already: a tenant's datastore is new (for an existing "
                           "one: hivectl datastore add)")
        return [Run(["zfs", "create", dataset], undo_argv=["zfs", "destroy", dataset])]
    if not spec.startswith("/"):
        raise ConfigError(None, "--datastore", spec, "expected /DIRECTORY or zfs:POOL/DATASET")
    validate.plain_path(None, "--datastore", spec)
    path = Path(spec)
    if path.exists() or path.is_symlink():
        raise Conflict(f"{spec} exists already: a tenant's datastore is new (for an existing one: hivectl "
                       "datastore add)")
    if not path.parent.is_dir():
        raise NotFound(f"{path.parent} does not exist (the tenant's datastore directory is made in it)")
    return [MakeDir(path, 0o755)]


def plan_create(store: Store, host: Host, request: TenantRequest) -> Plan:
    """The whole tenant in one plan (module docstring); every value checked before anything is planned."""
    from hivectl.net.ops import CreateRequest, SwitchOps

    store.require_initialised()
    name = check_name(request.name)
    if record_path(store, name).exists():
        raise Conflict(f"tenant {name} already exists")
    system = store.system()
    if name == "default" or name in system.get("datastore_list").split():
        raise Conflict(f"datastore {name} already exists: a tenant's datastore takes the tenant's name")
    spec = request.datastore
    if "," in spec or " " in spec:
        raise ConfigError(None, "--datastore", spec, "datastore paths cannot contain ',' or spaces")
    vlan = validate.vlan(None, "--vlan", request.vlan)
    if vlan == 0:
        raise ConfigError(None, "--vlan", request.vlan, "a tenant's VLAN is 1 to 4094")
    memory = validate.memory(None, "--memory", request.memory)
    user = _account_exists("user", request.user) if request.user else None
    group = _account_exists("group", request.group) if request.group else None
    rule = rctl_rule(host, name, user, memory)

    switches = SwitchOps(store, host)
    switch_plan = switches.plan_create(CreateRequest(name, "standard", request.interface, str(vlan)))
    record = {"datastore": name, "path": spec, "switch": name, "vlan": str(vlan),
              "interface": request.interface or "", "memory": request.memory, "user": user or "",
              "group": group or "", "rctl": rule or ""}
    text = "# hivectl tenant (hivectl tenant create); docs/security.md\n" + "".join(
        f'{k}="{v}"\n' for k, v in record.items())
    for key, value in record.items():
        check_value(None, f"--{key}", value)  # what the record file cannot carry is refused here

    plan = Plan()
    if not tenants_dir(store).is_dir():
        plan.add(MakeDir(tenants_dir(store), 0o755))
    path = record_path(store, name)
    plan.add(CreateFile(path, text, ["tee", str(path)], 0o644))
    plan.extend(_datastore_steps(store, name, spec))

    def add_datastore(rc: RcFile) -> None:
        if name in rc.get("datastore_list").split():
            raise Conflict(f"datastore {name} already exists")
        rc.list_add("datastore_list", name)
        rc.set(f"path_{name}", spec)

    conf = store.system_conf_path
    plan.add(config_edit(conf, add_datastore, [["sysrc", "-f", str(conf), f"datastore_list+={name}",
                                                 f"path_{name}={spec}"]]))
    plan.extend(switch_plan.actions)
    if rule is not None:
        plan.add(Run(["rctl", "-a", rule], undo_argv=["rctl", "-r", rule]))
    root = store.root
    for subject in Tenant(name, record).subjects():
        plan.add(_grant_step("grant", root, acl.make_grant("operator", f"/datastores/{name}", subject)))
    return plan


def _grant_step(verb: str, root: Path, grant: acl.Grant) -> Call:
    """A grant (or revocation) as a plan step, shown as the ``hivectl acl`` command that does it."""
    def add() -> None:
        acl.add(root, grant)

    def remove() -> None:
        acl.remove(root, grant)

    do, undo = (add, remove) if verb == "grant" else (remove, add)
    return Call(["hivectl", "acl", verb, *grant.line().split()], do, undo)


def tenant_guests(store: Store, tenant: Tenant) -> list[str]:
    """The guests in the tenant's datastore."""
    try:
        datastore = store.datastore(tenant.get("datastore"))
    except NotFound:
        return []
    return [ref.name for ref in store.iter_guests([datastore])]


def plan_destroy(store: Store, host: Host, name: str) -> tuple[Plan, str]:
    """Undo a tenant but its data; refused while its datastore holds a guest. Returns the plan and a note."""
    from hivectl.net.ops import SwitchOps

    tenant = load(store, name)
    guests = tenant_guests(store, tenant)
    if guests:
        raise Conflict(f"tenant {name} still has guests in its datastore: {', '.join(guests)} (destroy or move "
                       "them first: a tenant's destroy never deletes a disk)")
    plan = Plan()
    root = store.root
    granted = acl.load(root)
    for subject in tenant.subjects():
        grant = acl.make_grant("operator", f"/datastores/{name}", subject)
        if grant in granted:
            plan.add(_grant_step("revoke", root, grant))
    rule = tenant.get("rctl")
    if rule and host.platform == "freebsd":
        plan.add(Run(["rctl", "-r", rule], undo_argv=["rctl", "-a", rule]))
    switches = SwitchOps(store, host)
    if switches.config.exists(tenant.get("switch")):
        plan.extend(switches.plan_destroy(tenant.get("switch")).actions)
    datastore = tenant.get("datastore")
    if datastore in store.system().get("datastore_list").split():
        from hivectl.ops.system import plan_datastore_remove

        plan.extend(plan_datastore_remove(store, datastore).actions)
    path = record_path(store, name)
    text = read_text(path)

    def forget() -> None:
        path.unlink()

    def restore() -> None:
        from hivectl.rcfile import atomic_write

        atomic_write(path, text)

    plan.add(Call(["rm", str(path)], forget, restore))
    return plan, f"tenant {name}: its data ({tenant.get('path')}) is kept; remove it yourself if it is not needed"


def _os_platform_target(host: Host, kind: str, name: str) -> Path:
    """Where ``--install`` writes: the sudoers.d drop-in or doas.conf of the platform."""
    etc = "/usr/local/etc" if host.platform == "freebsd" else "/etc"
    return Path(f"{etc}/sudoers.d/hivectl-{name}") if kind == "sudo" else Path(f"{etc}/doas.conf")


OPERATOR_COMMANDS = OPERATOR_OPERATIONS  # what the rules allow: the operator role's operations of issue 11


def rules_text(tenant: Tenant, guests: list[str], kind: str, command: str) -> str:
    """sudoers(5) or doas.conf(5) lines allowing exactly the operator commands on each guest, nothing else.

    Every command is spelled with its arguments, which both tools then match exactly (sudoers(5),
    "Cmnd_List": a command with arguments matches only those arguments; doas.conf(5), ``args``: with no
    arguments after it, none are allowed), so ``start web -f`` or ``start web other`` are not allowed.
    """
    if kind not in ("sudo", "doas"):
        raise UsageError(f"tenant rules: {kind!r}: expected sudo or doas")
    if not command.startswith("/") or any(c in command for c in " \t\n,:=\\\"'#"):
        raise ConfigError(None, "--command", command, "expected the absolute path of hivectl, without blanks or "
                                                      "special characters")
    subjects = tenant.subjects()
    lines = [f"# hivectl tenant {tenant.name}: start, stop, console and snapshot of its guests, nothing else",
             f"# (hivectl tenant rules {tenant.name} --{kind}; docs/security.md). hivectl itself also checks the",
             "# invoking user's grants. Generate again after adding or removing the tenant's guests."]
    if not subjects:
        lines.append("# the tenant has no --user or --group: no rule")
    if not guests:
        lines.append("# the tenant has no guests yet: no rule")
    if kind == "sudo" and subjects and guests:
        alias = f"HIVECTL_{tenant.name.upper()}"
        commands = [f"{command} {verb} {guest}" for guest in guests for verb in OPERATOR_COMMANDS]
        lines.append(f"Cmnd_Alias {alias} = " + ", \\\n    ".join(commands))
        for subject in subjects:
            who = f"%{subject[1:]}" if subject.startswith("@") else subject
            lines.append(f"{who} ALL = (root) NOPASSWD: {alias}")
    elif kind == "doas" and subjects and guests:
        for subject in subjects:
            who = f":{subject[1:]}" if subject.startswith("@") else subject
            lines += [f"permit nopass {who} as root cmd {command} args {verb} {guest}"
                      for guest in guests for verb in OPERATOR_COMMANDS]
    return "\n".join(lines) + "\n"


def _marked(name: str) -> tuple[str, str]:
    return f"# BEGIN hivectl tenant {name}", f"# END hivectl tenant {name}"


def merged_doas(current: str, name: str, block: str) -> str:
    """doas.conf with the tenant's block (between its markers) replaced, or appended; the rest kept as it is."""
    begin, end = _marked(name)
    lines = current.split("\n") if current else []
    if begin in lines and end in lines[lines.index(begin):]:
        start = lines.index(begin)
        stop = lines.index(end, start)
        lines[start:stop + 1] = [begin, *block.rstrip("\n").split("\n"), end]
        return "\n".join(lines)
    prefix = current if not current or current.endswith("\n") else current + "\n"
    return f"{prefix}{begin}\n{block}{end}\n"


def install_rules(host: Host, target: Path, text: str, kind: str) -> None:
    """Replace ``target`` atomically with ``text``, after the tool's own check of the new file.

    The new file is written next to the target under a name with a '.' (which sudo's ``@includedir``
    skips, sudoers(5)), mode 0440 for sudo (what visudo leaves) and the current mode or 0600 for doas,
    fsync'd, checked with ``visudo -c -f FILE`` or ``doas -C FILE`` where the tool is installed, then
    renamed over the target. A file the check refuses is removed and nothing changes.
    """
    import contextlib
    import tempfile

    if not target.parent.is_dir():
        raise NotFound(f"{target.parent} does not exist (is {kind} installed?)")
    mode = 0o440 if kind == "sudo" else 0o600
    with contextlib.suppress(FileNotFoundError):
        if kind == "doas":
            mode = os.stat(target).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        checker = ["visudo", "-c", "-f", tmp] if kind == "sudo" else ["doas", "-C", tmp]
        if host.which(checker[0]) is not None:
            checked = host.run(checker, check=False)
            if checked.status != 0:
                why = (checked.stderr or checked.stdout).strip().replace(tmp, str(target))
                raise ConfigError(target, "rules", "", f"{checker[0]} refuses the new rules: {why}")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def rules(store: Store, host: Host, name: str, kind: str, command: str, install: bool = False,
          target: Path | None = None, dry_run: bool = False) -> tuple[str, Path | None]:
    """The tenant's rules text, and where it was installed (None when only shown)."""
    tenant = load(store, name)
    text = rules_text(tenant, tenant_guests(store, tenant), kind, command)
    if not install:
        return text, None
    where = target or _os_platform_target(host, kind, name)
    if kind == "doas":
        try:
            current = read_text(where)
        except FileNotFoundError:
            current = ""
        text = merged_doas(current, name, text)
    if not dry_run:
        install_rules(host, where, text, kind)
    return text, where
