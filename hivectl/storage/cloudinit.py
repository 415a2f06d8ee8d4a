"""cloud-init NoCloud seeds: ``NAME/.cloud-init/{meta-data,user-data,network-config}`` and ``seed.iso``.

The file formats are vm-bhyve's (``vm create -C``) so guests created by either tool look the same, with
three fixes users asked for:

- ``network-config`` covers *every* NIC, each matched by its MAC (vm-bhyve: only the first);
  ``-n`` may be repeated, the n-th one configuring ``network<n-1>``;
- default routes are written as ``routes:`` (``gateway4:`` is deprecated and broke OpenBSD, churchers#559);
- ``seed.iso`` is rebuilt whenever a cloud-init file or the guest's config (NICs, MACs, uuid) is newer
  than it (vm-bhyve builds it once and never again, churchers#338). ``ensure_seed`` is what the
  supervisor calls before every boot.

``meta-data`` and ``network-config`` are *generated* files: their first line says so, and as long as it is
there hivectl rewrites them from the guest's config (a clone gets its own instance-id and MACs). Delete
that line to keep hand edits; ``user-data`` is never rewritten.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError, UsageError
from hivectl.model import backing
from hivectl.model.devices import disk as disk_keys
from hivectl.model.guest import GuestConfig, Nic
from hivectl.model.identity import new_mac
from hivectl.model.layout import SEED
from hivectl.patterns import Pattern
from hivectl.plan import Action, Call, MakeDir, WriteFile
from hivectl.rcfile import RcFile, atomic_write_bytes
from hivectl.records import field, record
from hivectl.store import GuestRef

CLOUD_DIR = ".cloud-init"
SEED_FILES = ("meta-data", "user-data", "network-config", "vendor-data")
GENERATED = "# hivectl: generated"
_META_HEADER = f"{GENERATED}; rewritten when the guest's uuid or name changes (delete this line to keep edits)"
_NET_HEADER = f"{GENERATED}; rewritten when the guest's NICs change (delete this line to keep edits)"
_NET_SPEC = Pattern(r"# hivectl-net([0-9]+): (.*)")
NET_KEYS = ("interface", "ip", "gateway4", "gateway6", "nameservers", "searchdomains", "hostname")
_HOSTNAME = Pattern(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*")
_IFNAME = Pattern(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")
_KEY_TYPE = Pattern(r"(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)(-cert-v01@openssh\.com)?")
_MAX_USER_DATA = 16 << 20


@record(frozen=True)
class NetSpec:
    """One ``-n`` option, validated: how to configure one NIC."""

    text: str
    interface: str = ""
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()
    gateway4: str = ""
    gateway6: str = ""
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    hostname: str = ""


@record
class CloudInitRequest:
    """What ``create -C`` was given."""

    keyfile: Path | None = None
    userdata: Path | None = None
    netconfig: list[str] = field(default_factory=list)


def parse_netconfig(text: str, key: str = "-n", source: str | Path | None = None) -> NetSpec:
    """``interface=vtnet0;ip=10.0.0.5/24,fd00::5/64;gateway4=10.0.0.1;nameservers=1.1.1.1;...``.

    Every key is checked; an unknown or repeated key, or an empty value, is an error naming it.
    """
    if any(ord(c) < 32 for c in text):
        raise ConfigError(source, key, text, "control characters are not allowed")
    seen: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise ConfigError(source, key, text, f"{item!r}: expected key=value")
        if name not in NET_KEYS:
            raise ConfigError(source, key, text, f"unknown key {name!r}; known keys: {', '.join(NET_KEYS)}")
        if name in seen:
            raise ConfigError(source, key, text, f"{name} is given twice")
        seen[name] = value
    where = f"{key} {text}"
    interface = seen.get("interface", "")
    if interface and not _IFNAME.fullmatch(interface):
        raise ConfigError(source, where, interface, "interface: expected an interface name like eth0 or vtnet0")
    addresses = tuple(validate.cidr(source, "ip", a.strip()) for a in seen.get("ip", "").split(",") if a.strip())
    gateways: dict[str, str] = {}
    for family, version in (("gateway4", 4), ("gateway6", 6)):
        value = seen.get(family, "")
        if not value:
            continue
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ConfigError(source, family, value, f"expected an IPv{version} address") from None
        if address.version != version:
            raise ConfigError(source, family, value, f"expected an IPv{version} address")
        if not any(a.version == version for a in addresses):
            raise ConfigError(source, family, value, f"a default route needs a static IPv{version} address in ip=")
        gateways[family] = str(address)
    nameservers = []
    for server in seen.get("nameservers", "").split(","):
        if server.strip():
            try:
                nameservers.append(str(ipaddress.ip_address(server.strip())))
            except ValueError:
                raise ConfigError(source, "nameservers", server, "expected IP addresses separated by ','") from None
    search = []
    for domain in seen.get("searchdomains", "").split(","):
        if domain.strip():
            if not _HOSTNAME.fullmatch(domain.strip()):
                raise ConfigError(source, "searchdomains", domain, "expected domain names separated by ','")
            search.append(domain.strip())
    hostname = seen.get("hostname", "")
    if hostname and not _HOSTNAME.fullmatch(hostname):
        raise ConfigError(source, "hostname", hostname, "expected a host name (letters, digits, '-', '.')")
    return NetSpec(text.strip(), interface, addresses, gateways.get("gateway4", ""), gateways.get("gateway6", ""),
                   tuple(nameservers), tuple(search), hostname)


def authorized_keys(path: Path) -> list[str]:
    """The public keys of an ``authorized_keys``-style file: every non-empty line not starting with ``#``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HivectlError(f"{path}: cannot read the key file: {error}") from None
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        # An authorized_keys line may start with options; the key type is the first word that looks like one.
        if not any(_KEY_TYPE.fullmatch(w) for w in words[:-1]) or any(ord(c) < 32 for c in line):
            raise ConfigError(path, f"line {number}", line[:40], "not an OpenSSH public key (ssh-ed25519 AAAA...)")
        keys.append(line)
    if not keys:
        raise ConfigError(path, "-k", str(path), "the key file holds no public key")
    return keys


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value)


def meta_data(uuid: str, hostname: str) -> str:
    return f"{_META_HEADER}\ninstance-id: {uuid}\nlocal-hostname: {hostname}\n"


def user_data(keys: list[str]) -> str:
    """vm-bhyve's generated ``#cloud-config`` (the first line must stay exactly that)."""
    lines = ["#cloud-config", "resize_rootfs: True", "manage_etc_hosts: localhost"]
    if keys:
        lines.append("ssh_authorized_keys:")
        lines.extend(f"  - {_q(k)}" for k in keys)
    return "\n".join(lines) + "\n"


def network_config(nics: list[Nic], specs: dict[int, NetSpec]) -> str:
    """netplan v2 with one ethernet per NIC, matched by MAC; ``specs`` configure NICs by index."""
    lines = [_NET_HEADER]
    lines += [f"# hivectl-net{index}: {spec.text}" for index, spec in sorted(specs.items())]
    lines += ["version: 2", "ethernets:"]
    for nic in nics:
        if not nic.mac:
            continue
        spec = specs.get(nic.index)
        lines += [f"  id{nic.index}:", "    match:", f"      macaddress: {_q(nic.mac.lower())}"]
        if spec is None:
            lines += ["    dhcp4: true", "    dhcp6: true", "    accept-ra: true"]
            if nic.index:
                lines.append("    optional: true")
            continue
        lines.append(f"    set-name: {_q(spec.interface or f'eth{nic.index}')}")
        has4 = any(a.version == 4 for a in spec.addresses)
        has6 = any(a.version == 6 for a in spec.addresses)
        if spec.addresses:
            lines.append("    addresses:")
            lines += [f"      - {_q(str(a))}" for a in spec.addresses]
        lines.append(f"    dhcp4: {'false' if has4 else 'true'}")
        lines.append(f"    dhcp6: {'false' if has6 else 'true'}")
        if not has6:
            lines.append("    accept-ra: true")
        routes = [(to, via) for to, via in (("0.0.0.0/0", spec.gateway4), ("::/0", spec.gateway6)) if via]
        if routes:
            lines.append("    routes:")
            for to, via in routes:
                lines += [f"      - to: {_q(to)}", f"        via: {_q(via)}"]
        if spec.nameservers or spec.search:
            lines.append("    nameservers:")
            if spec.nameservers:
                lines.append(f"      addresses: [{', '.join(_q(s) for s in spec.nameservers)}]")
            if spec.search:
                lines.append(f"      search: [{', '.join(_q(s) for s in spec.search)}]")
    return "\n".join(lines) + "\n"


def _hostname(name: str, specs: dict[int, NetSpec]) -> str:
    for _, spec in sorted(specs.items()):
        if spec.hostname:
            return spec.hostname
    return name


def _stored_specs(path: Path) -> dict[int, NetSpec]:
    """The ``-n`` options recorded in a generated network-config (so it can be regenerated)."""
    specs: dict[int, NetSpec] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return specs
    for line in lines:
        match = _NET_SPEC.fullmatch(line)
        if match:
            specs[int(match.group(1))] = parse_netconfig(match.group(2), f"hivectl-net{match.group(1)}", path)
    return specs


def _is_generated(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith(GENERATED)
    except OSError:
        return False


def plan_cloud_init(ref: GuestRef, conf: RcFile, req: CloudInitRequest, taken_macs: set[str]) -> list[Action]:
    """``create -C``: validate the inputs, finish ``conf`` (a MAC on every NIC, the seed disk) and return the
    actions that write ``.cloud-init/`` and ``seed.iso``. Nothing is touched until the plan is applied."""
    if req.keyfile is not None and req.userdata is not None:
        raise UsageError("-k and -u cannot be used together: -u gives the whole user-data")
    keys = authorized_keys(req.keyfile) if req.keyfile is not None else []
    if req.userdata is not None:
        try:
            user_text = req.userdata.read_bytes()
        except OSError as error:
            raise HivectlError(f"{req.userdata}: cannot read user-data: {error}") from None
        if not user_text.strip() or len(user_text) > _MAX_USER_DATA:
            raise ConfigError(req.userdata, "-u", str(req.userdata), "user-data must be non-empty and below 16 MiB")
        user = user_text.decode("utf-8", errors="surrogateescape")
    else:
        user = user_data(keys)
    specs = {index: parse_netconfig(text) for index, text in enumerate(req.netconfig)}
    if sum(1 for s in specs.values() if s.hostname) > 1:
        raise UsageError("hostname= may be given in only one -n option")

    config = GuestConfig(conf, ref.name)
    taken = set(taken_macs)
    for nic in config.nics:
        if not nic.mac:
            mac = new_mac(taken)
            taken.add(mac)
            conf.set(f"network{nic.index}_mac", mac)
    nics = GuestConfig(conf, ref.name).nics
    if len(specs) > len(nics):
        raise UsageError(f"{len(specs)} -n options given but the guest has {len(nics)} network interfaces")
    index = config.next_free("disk", "name")
    conf.set(f"disk{index}_type", disk_keys.CD)
    conf.set(f"disk{index}_name", SEED)
    conf.set(f"disk{index}_dev", backing.FILE.name)

    directory = ref.directory / CLOUD_DIR
    files = {"meta-data": meta_data(conf.get("uuid"), _hostname(ref.name, specs)), "user-data": user,
             "network-config": network_config(nics, specs)}
    actions: list[Action] = [MakeDir(directory, 0o700)]
    for name, text in files.items():
        target = directory / name
        source = req.userdata if name == "user-data" and req.userdata is not None else None
        shown = ["cp", str(source), str(target)] if source else ["tee", str(target)]
        actions.append(WriteFile(target, text, shown, 0o600))
    seed = ref.layout.seed
    actions.append(Call(_makefs_argv(ref), lambda: write_seed(ref), lambda: seed.unlink(missing_ok=True)))
    return actions


def _makefs_argv(ref: GuestRef) -> list[str]:
    """How FreeBSD would build the seed (what vm-bhyve runs); we build it in-process."""
    return ["makefs", "-t", "cd9660", "-o", "R,L=cidata", str(ref.layout.seed),
            str(ref.directory / CLOUD_DIR)]


def write_seed(ref: GuestRef) -> None:
    """Build ``seed.iso`` from the files in ``.cloud-init/`` (atomically, mode 0600)."""
    directory = ref.directory / CLOUD_DIR
    files: dict[str, bytes] = {}
    newest = 0.0
    for name in SEED_FILES:
        path = directory / name
        try:
            files[name] = path.read_bytes()
            newest = max(newest, path.stat().st_mtime)
        except FileNotFoundError:
            continue
    if "meta-data" not in files:
        raise HivectlError(f"{directory / 'meta-data'} is missing; cloud-init needs it to find the seed")
    from datetime import UTC, datetime  # only when a seed is built, not on every start's plan

    when = datetime.fromtimestamp(newest or 0, UTC)
    from hivectl.storage.iso9660 import build_iso  # struct, datetime: only when a seed is built

    atomic_write_bytes(ref.layout.seed, build_iso(files, "cidata", when), 0o600)


def regenerate(ref: GuestRef, config: GuestConfig) -> dict[str, str]:
    """The generated files whose text would change with the current config (name → new text)."""
    directory = ref.directory / CLOUD_DIR
    changes: dict[str, str] = {}
    net_path = directory / "network-config"
    specs = _stored_specs(net_path) if _is_generated(net_path) else {}
    if _is_generated(net_path):
        text = network_config(config.nics, specs)
        if net_path.read_text(encoding="utf-8") != text:
            changes["network-config"] = text
    meta_path = directory / "meta-data"
    if _is_generated(meta_path):
        text = meta_data(config.get("uuid"), _hostname(ref.name, specs))
        if meta_path.read_text(encoding="utf-8") != text:
            changes["meta-data"] = text
    return changes


def ensure_seed(ref: GuestRef, config: GuestConfig | None = None, force: bool = False) -> Action | None:
    """The action that brings ``seed.iso`` up to date before a boot, or None when it already is.

    The seed is rebuilt when it is missing, when any cloud-init file or the guest's config is newer than
    it, or when a generated file would change (new MAC, new NIC, new uuid). ``config`` is the config the
    boot will use (a start plan passes the one with the identity it is about to write; default: the file
    as it is), and ``force`` says that the config file is about to change, which makes the seed stale.
    """
    directory = ref.directory / CLOUD_DIR
    if not directory.is_dir():
        return None
    config = config if config is not None else ref.config()
    changes = regenerate(ref, config)
    seed = ref.layout.seed
    try:
        built = seed.stat().st_mtime_ns
    except FileNotFoundError:
        built = -1
    inputs = [ref.conf_path] + [directory / n for n in SEED_FILES]
    newest = max((p.stat().st_mtime_ns for p in inputs if p.exists()), default=0)
    if not changes and built >= newest and not force:
        return None

    def rebuild() -> None:
        for name, text in changes.items():
            atomic_write_bytes(directory / name, text.encode("utf-8"), 0o600)
        write_seed(ref)

    return Call(_makefs_argv(ref), rebuild)


def seed_is_current(ref: GuestRef) -> bool:
    """True when no rebuild is needed (used by ``info`` and tests)."""
    return ensure_seed(ref) is None
