"""Host-wide operations: ``init``, system settings (``get``/``set``) and datastores.

Every change of ``system.conf`` is an ``EditFile`` (``hivectl.plan``): checked against the file when the
plan is made, then redone and re-checked on the file as it is under its lock, so a ``set``, a
``datastore add`` and a ``switch create`` running at once all land (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError, Conflict, NotFound, UsageError
from hivectl.host.base import Host
from hivectl.plan import CreateFile, Edited, EditFile, MakeDir, Plan, Run, config_edit
from hivectl.rcfile import RcFile
from hivectl.store import Store

# Settings an administrator may change with ``set`` (vm-bhyve's ``vm set``, vm(8)), with their checks.
SETTINGS: dict[str, tuple[str, ...] | None] = {
    "console": ("nmdm", "tmux"),
    "compress": None,
    "decompress": None,
    "suspend": ("yes", "no"),
    # hivectld's listener and console origins: free-form here, each checked by the daemon when it starts
    # (a ConfigError naming system.conf, the key and the value; hivectl/daemon/server.py, routes_console.py).
    "hivectld_socket": None,
    "hivectld_group": None,
    "hivectld_listen": None,
    "hivectld_tls_cert": None,
    "hivectld_tls_key": None,
    "hivectld_origins": None,
}

FREEBSD_MODULES = ("vmm", "nmdm", "if_bridge", "if_tuntap")


def shipped_templates() -> dict[str, str]:
    """The sample templates that ship with hivectl, by name."""
    folder = resources.files("hivectl") / "templates"
    return {item.name[:-5]: item.read_text(encoding="utf-8") for item in folder.iterdir()
            if item.name.endswith(".conf")}


def plan_init(store: Store, host: Host) -> Plan:
    """Make ``vm_dir`` usable and the host ready: directories, templates, kernel modules (idempotent).

    Sample templates are copied once, when ``.templates`` is created: a sample the administrator deleted
    stays deleted. Only ``default.conf`` comes back when it is missing, as vm-bhyve's ``util::setup``
    (lib/vm-util) does on every ``vm init``, so that a plain ``create`` works out of the box.
    """
    plan = Plan()
    root = store.root
    if not root.is_dir():
        raise NotFound(f"vm_dir {root} does not exist: create the directory (or ZFS dataset) first")
    new_templates = not store.templates_dir.is_dir()
    for sub in (".config", ".templates", ".iso", ".img"):
        if not (root / sub).is_dir():
            plan.add(MakeDir(root / sub))
    null_iso = root / ".config" / "null.iso"
    if not null_iso.exists():
        plan.add(CreateFile(null_iso, "", ["touch", str(null_iso)]))
    if not store.system_conf_path.exists():
        # Created only if still absent when applied: a concurrent command may have written it meanwhile.
        plan.add(EditFile(store.system_conf_path, _create_if_absent(""), [["touch", str(store.system_conf_path)]]))
    for name, text in sorted(shipped_templates().items()):
        target = store.templates_dir / f"{name}.conf"
        if not (new_templates or name == "default") or target.exists():
            continue
        # Created only if the name is still free when applied: an administrator's file is never replaced.
        plan.add(CreateFile(target, text, ["cp", "-n", f"<hivectl>/templates/{name}.conf", str(target)]))
    if host.platform == "freebsd":
        loaded = set()
        for module in FREEBSD_MODULES:
            if host.run(["kldstat", "-q", "-m", module], check=False).status == 0:
                loaded.add(module)
        for module in FREEBSD_MODULES:
            if module not in loaded:
                plan.add(Run(["kldload", "-n", module]))
        plan.add(Run(["sysctl", "net.link.tap.up_on_open=1"]))
    from hivectl.net.ops import plan_switch_init  # switches come back after every host boot

    plan.extend(plan_switch_init(store, host))
    return plan


def _create_if_absent(text: str) -> Callable[[str | None], Edited]:
    return lambda current: Edited(text if current is None else None)


def get_settings(store: Store, names: list[str]) -> list[tuple[str, str]]:
    system = store.system()
    wanted = list(SETTINGS) if not names or names == ["all"] else names
    for name in wanted:
        if name not in SETTINGS:
            raise UsageError(f"unknown setting {name!r}: known settings are {', '.join(SETTINGS)}")
    return [(name, system.get(name) or "-") for name in wanted]


def plan_set_settings(store: Store, assignments: list[str]) -> Plan:
    system = store.system()
    shown = ["sysrc", "-f", str(store.system_conf_path)]
    wanted: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r}: expected setting=value")
        if key not in SETTINGS:
            raise ConfigError(None, key, value, f"not a setting; known settings are {', '.join(SETTINGS)}")
        allowed = SETTINGS[key]
        if allowed is not None:
            validate.choice(None, key, value, allowed)
        system.set(key, value)  # validates the value for the file format
        wanted[key] = value
        shown.append(f"{key}={value}")

    def apply(rc: RcFile) -> None:
        for key, value in wanted.items():
            rc.set(key, value)

    return Plan([config_edit(store.system_conf_path, apply, [shown])])


def plan_datastore_add(store: Store, name: str, spec: str, kind: str = "") -> Plan:
    """``datastore add NAME /path|zfs:pool/ds`` (or ``iso``/``img`` stores); checks it exists first."""
    validate.name(None, "datastore", name, "datastore name")
    if kind:
        spec = f"{kind}:{spec}"
    system = store.system()
    if name == "default" or name in system.get("datastore_list").split():
        raise Conflict(f"datastore {name} already exists")
    datastore = store.parse_datastore(name, spec)  # resolves zfs mountpoints: fails if not mounted
    if not Path(datastore.path).is_dir():
        raise NotFound(f"{datastore.path} does not exist or is not a directory")
    if datastore.path.resolve() == store.root.resolve() and datastore.holds_guests:
        raise Conflict(f"{spec} is the default datastore (vm_dir) already")
    if "," in spec or " " in spec:
        raise ConfigError(None, "path", spec, "datastore paths cannot contain ',' or spaces")
    system.set(f"path_{name}", spec)  # validates the value for the file format

    def apply(rc: RcFile) -> None:
        if name in rc.get("datastore_list").split():  # added by another command since the plan was made
            raise Conflict(f"datastore {name} already exists")
        rc.list_add("datastore_list", name)
        rc.set(f"path_{name}", spec)

    shown = ["sysrc", "-f", str(store.system_conf_path), f"datastore_list+={name}", f"path_{name}={spec}"]
    return Plan([config_edit(store.system_conf_path, apply, [shown])])


def plan_datastore_remove(store: Store, name: str) -> Plan:
    """Forget a datastore (its files are never deleted)."""
    if name == "default":
        raise UsageError("the default datastore (vm_dir) cannot be removed")
    system = store.system()
    if name not in system.get("datastore_list").split():
        raise NotFound(f"datastore {name} does not exist")
    conf = str(store.system_conf_path)

    def apply(rc: RcFile) -> None:
        if name not in rc.get("datastore_list").split():  # removed by another command since the plan was made
            raise NotFound(f"datastore {name} does not exist")
        rc.list_remove("datastore_list", name)
        rc.unset(f"path_{name}")

    return Plan([config_edit(store.system_conf_path, apply, [["sysrc", "-f", conf, f"datastore_list-={name}"],
                                                             ["sysrc", "-f", conf, "-x", f"path_{name}"]])])


