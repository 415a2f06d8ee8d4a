"""``hivectl import``: bring a guest made by hand under management, with the command line it ran.

The command line (``--bhyve``, with its ``--loader`` line) or the one found in a script (``--script``,
``hivectl/importer/script.py``) is read into bhyve's configuration keys, turned into a vm-bhyve config
(``hivectl/importer/convert.py``), and then checked the only way that proves something: the new guest is
planned exactly as ``hivectl start`` would plan it, the planned bhyve command line is read back into keys,
and the two are compared after the documented normalisations (``hivectl/importer/compare.py``,
docs/import.md). The loader line is compared the same way. Any difference is refused before anything is
written, naming the argument it comes from.

The guest directory is made like ``create`` makes one (a hidden staging directory, or dataset, published
by one rename); the config is its only content, plus a copy of the UEFI variable store when the line had
one. Disks are never copied, moved or created: the config points at them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hivectl import validate
from hivectl.drivers.base import BootRequest
from hivectl.drivers.bhyve.actions import CopyIfMissing
from hivectl.drivers.bhyve.driver import BhyveDriver
from hivectl.errors import ConfigError, HivectlError, UsageError
from hivectl.host.base import Host
from hivectl.importer import compare, loaders, script, tree
from hivectl.importer.convert import Converted, convert
from hivectl.importer.loaders import Loader
from hivectl.importer.words import ImportRefused, Where
from hivectl.model import backing
from hivectl.model.guest import GuestConfig
from hivectl.model.identity import new_uuid
from hivectl.model.staging import staging_name
from hivectl.net.names import vale_backend, vale_switch
from hivectl.net.port import Port
from hivectl.net.switches import SwitchConfig
from hivectl.net.switchtypes import registry
from hivectl.net.switchtypes.vale import TYPE as VALE
from hivectl.ops.guests import collect_plan, publish
from hivectl.plan import Plan, WriteFile
from hivectl.rcfile import RcFile
from hivectl.staging import MakeStaging
from hivectl.store import GuestRef, Store


@dataclass
class ImportRequest:
    """What to import: one bhyve command line (``bhyve``, and ``loader`` before it) or a ``script``."""

    bhyve: str | None = None
    loader: str | None = None
    script: Path | None = None
    line: int | None = None  # which bhyve command of the script (its line), when it has several
    name: str | None = None  # the guest's name; default: the VM name of the command line
    datastore: str = "default"
    directory: Path | None = None  # what relative paths are relative to (bhyve's working directory)


@dataclass
class ImportResult:
    name: str
    config: str  # the config file's text
    plan: Plan
    notes: list[str] = field(default_factory=list)  # what hivectl does differently, one line each
    planned: list[str] = field(default_factory=list)  # the bhyve command line hivectl will run
    install_media: str | None = None  # the line boots this installer: ``hivectl install NAME ISO`` runs it again


def _split(text: str, what: str) -> list[str]:
    """A command line given as one string, split into words as sh(1) would, never run by a shell."""
    try:
        words = shlex.split(text, comments=False)
    except ValueError as error:
        raise UsageError(f"{what}: cannot be split into words: {error}") from None
    if not words:
        raise UsageError(f"{what}: the command line is empty")
    return words


def _words(req: ImportRequest) -> tuple[list[str], int | None, list[str] | None, int | None]:
    if (req.bhyve is None) == (req.script is None):
        raise UsageError("give one of --bhyve 'bhyve ... NAME' or --script FILE")
    if req.bhyve is not None:
        loader = _split(req.loader, "--loader") if req.loader else None
        return _split(req.bhyve, "--bhyve"), None, loader, None
    if req.loader:
        raise UsageError("--loader goes with --bhyve; a script's own loader line is used with --script")
    assert req.script is not None
    try:
        text = req.script.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        raise HivectlError(f"{req.script}: {error.strerror}") from None
    found = script.find(text, str(req.script), req.line)
    return found.bhyve, found.bhyve_line, found.loader, found.loader_line


def _vale_switches(store: Store) -> dict[str, str]:
    """This host's vale switches by the id their ports carry (``md5(name)[:5]``, vm-bhyve's lib/vm-switch-vale)."""
    if not store.system_conf_path.is_file():
        return {}
    config = SwitchConfig.load(store.system_conf_path)
    return {vale_switch(sw.name)[len("vale"):]: sw.name for sw in config.all() if registry.get(sw.type) is VALE}


def _reader(host: Host):  # type: ignore[no-untyped-def]
    def read(path: str, where: Where) -> str:
        try:
            return host.devpath(path).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            raise ImportRefused(where, f"cannot read {path}: {error.strerror}") from None
    return read


def _config_text(values: dict[str, str], path: Path) -> str:
    rc = RcFile(path, "")
    for key, value in values.items():
        rc.set(key, value)
    return rc.text()


def _check_loader(wanted: Loader | None, planned_argv: list[str] | None, device_map: str | None,
                  original_map: str | None, base: Path) -> None:
    """The loader hivectl will run does what the imported one did (normalisations: docs/import.md)."""
    if wanted is None or not planned_argv:
        return
    planned = loaders.parse(planned_argv)
    if wanted.kind == "bhyveload":
        added = ("smbios.system.uuid", "autoboot_delay", "bhyve_vm_name")
        own = [e for e, _ in planned.env if e.partition("=")[0] not in added]
        given = [e for e, _ in wanted.env if e.partition("=")[0] not in added
                 and not e.startswith("vfs.root.mountfrom=p9fs:")]
        if own[:len(given)] != given:
            raise ImportRefused(wanted.where, f"hivectl would run bhyveload with -e {own}, not {given}")
        if [d for d, _ in planned.disks] != [str(base / d) for d, _ in wanted.disks] and wanted.host_dir is None:
            raise ImportRefused(wanted.where, f"hivectl would boot {[d for d, _ in planned.disks]}")
        if (planned.loader or ("",))[0] != (wanted.loader or ("",))[0]:
            raise ImportRefused(wanted.where, "hivectl would run another userboot loader (-l)")
    else:
        if (planned.root or ("host",))[0] != (wanted.root or ("host",))[0] and (wanted.root or ("host",))[0] != "host":
            raise ImportRefused(wanted.where, f"hivectl would run grub-bhyve -r {planned.root}")
        if original_map is not None and device_map is not None:
            lines = [" ".join(line.split()) for line in original_map.splitlines() if line.split()]
            if device_map.splitlines()[:len(lines)] != lines:
                raise ImportRefused(wanted.device_map[1] if wanted.device_map else wanted.where,
                                    f"hivectl's device map would be {device_map.splitlines()}")


def _verify(host: Host, store: Store, ref: GuestRef, config: GuestConfig, bhyve: tree.Tree,
            converted: Converted, loader: Loader | None, base: Path, original_map: str | None) -> list[str]:
    """Plan the imported guest as ``start`` would and compare; returns the planned bhyve command line."""
    ports = [Port(nic.index, vale_backend(nic.switch, nic.mac), nic.switch, vale_backend(nic.switch, nic.mac),
                  created=False) if nic.switch else Port(nic.index, nic.device, "", "", created=False)
             for nic in config.nics]
    driver = BhyveDriver(host, store, vnc_ports=lambda listen: 5900)
    # An install boot is compared with what ``hivectl install NAME ISO`` plans: the first boot with the medium.
    media = Path(converted.install_media) if converted.install_media is not None else None
    try:
        planned = driver.plan(BootRequest(ref, config, ports, media, True, False))
    except ConfigError as error:
        raise ImportRefused(None, f"the imported config would not start: {error}") from None
    argv = planned.boot.hypervisor
    files = {argv[2]: planned.config_text} if argv[1:2] == ["-k"] else None
    planned_tree, _, _ = tree.parse(argv, None, files)
    wanted = compare.imported(bhyve.values(), converted.added, ref.name, base)
    got = compare.canonical(planned_tree.values())
    for key, mine, theirs in compare.differences(wanted, got):
        entry = bhyve.keys.get(key) or next((e for k, e in bhyve.keys.items()
                                             if k.startswith(".".join(key.split(".")[:4]) + ".")), None)
        raise ImportRefused(entry.where if entry else None,
                            f"hivectl would run bhyve with {key}={theirs!r} where this line has {mine!r}")
    _check_loader(loader, planned.boot.loader, planned.device_map, original_map, base)
    return argv


def plan_import(host: Host, store: Store, req: ImportRequest) -> ImportResult:
    """Read, convert, verify and plan one import (see the module docstring)."""
    argv, line, loader_argv, loader_line = _words(req)
    bhyve, vm_name, name_where = tree.parse(argv, line)
    loader = loaders.parse(loader_argv, loader_line) if loader_argv else None
    name = req.name or vm_name
    try:
        validate.guest_name(None, "name", name, new=True)
    except ConfigError as error:
        raise ImportRefused(None if req.name else name_where, error.why) from None
    store.require_free(name)
    datastore = store.datastore(req.datastore)
    if not datastore.holds_guests:
        raise UsageError(f"datastore {datastore.name} is an {datastore.kind} store; guests cannot live there")
    base = req.directory or (req.script.parent if req.script else Path.cwd())
    read = _reader(host)
    custom = str(datastore.path / ".config" / "BHYVE_UEFI.fd")
    converted = convert(bhyve, vm_name, name, loader, base.absolute(), custom, read, _vale_switches(store))
    if "uuid" not in converted.values:
        converted.values["uuid"] = converted.added["uuid"] = new_uuid()
        converted.notes.append(f"no -U: uuid={converted.values['uuid']} (bhyve derived one from the host name)")

    for key, value in converted.values.items():
        if key.endswith("_name") and backing.of(converted.values.get(key[:-len("name")] + "dev", "")).host_path \
                and not host.devpath(value).exists():
            converted.notes.append(f"{key}: {value} does not exist (yet): bhyve cannot start the guest without it")

    final = GuestRef(name, datastore)
    config = GuestConfig(RcFile(final.conf_path, _config_text(converted.values, final.conf_path)), name)
    try:
        config.check()
    except HivectlError as error:
        raise ImportRefused(None, f"the imported config is not valid: {error}") from None
    original_map = None
    if loader is not None and loader.device_map is not None:
        original_map = read(str(base.absolute() / loader.device_map[0]) if not loader.device_map[0].startswith("/")
                            else loader.device_map[0], loader.device_map[1])
    planned = _verify(host, store, final, config, bhyve, converted, loader, base.absolute(), original_map)

    ref = final.staged(staging_name(name))
    text = _config_text(converted.values, ref.conf_path)
    plan = collect_plan(store, name, datastore)
    staging = MakeStaging(ref.directory, ref.dataset, ["zfs", "create", ref.dataset]) if ref.dataset \
        else MakeStaging(ref.directory)
    plan.add(staging)
    shown = ["sysrc", "-f", str(ref.conf_path),
             *(f"{k}={'(hidden)' if k == 'vnc_password' else v}" for k, v in converted.values.items())]
    plan.add(WriteFile(ref.conf_path, text, shown, 0o600 if "vnc_password" in converted.values else 0o644))
    if converted.vars_file is not None and converted.vars_file != str(final.layout.uefi_vars):
        local = host.devpath(converted.vars_file)
        if not local.is_file():
            raise ImportRefused(None, f"the UEFI variable store {converted.vars_file} does not exist")
        plan.add(CopyIfMissing(converted.vars_file, local, ref.layout.uefi_vars))
        converted.notes.append(f"the UEFI variable store {converted.vars_file} is copied to {final.layout.uefi_vars} "
                               "(the original stays)")
    plan.add(publish(staging, ref, final))
    if converted.install_media is not None:
        converted.notes.insert(0, f"this line boots an installer: run `hivectl install {name} "
                                  f"{converted.install_media}` (the config keeps nothing of the medium)")
    return ImportResult(name, _config_text(converted.values, final.conf_path), plan, converted.notes, planned,
                        converted.install_media)
