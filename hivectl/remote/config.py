"""The remotes of a host: ``vm_dir/.config/remotes.json``, a file of hivectl's own (vm-bhyve has none).

Each remote is a name, an ``ssh://[user@]host[:port]`` URL and, optionally, the path of ``hivectl`` on the
remote (``--command``), the private key to log in with (``--identity``) and a known_hosts file
(``--known-hosts``). Every value reaches an ``ssh`` argv (hivectl/remote/ssh.py), so each is checked at the
edge, on ``remote add`` and again on every read, with an error that names the file, the key and the value:
a URL such as ``ssh://-oProxyCommand=...`` would otherwise be read by ssh as an option (ssh(1): the
destination is ``[user@]hostname`` or a URI ``ssh://[user@]hostname[:port]``), and a command with shell
words in it would run on the remote, whose shell reads the command ssh sends.

The file is replaced atomically under its lock (hivectl/rcfile.py, hivectl/safety/filelock.py), so two
concurrent ``remote add`` runs both land.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hivectl.errors import ConfigError, Conflict, NotFound

FILE_NAME = "remotes.json"
VERSION = 1

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
RESERVED = frozenset({"local"})  # ``list --all-remotes`` labels this host's own rows "local"
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_URL = re.compile(r"ssh://(?:(?P<user>[^@/?#\[\]]*)@)?(?P<host>\[[^\]/?#]*\]|[^:/?#@\[\]]*)(?::(?P<port>[^/?#]*))?/?\Z")
# A remote command is a path (or a bare program name ssh's remote shell finds on PATH): no shell words.
_COMMAND = re.compile(r"[A-Za-z0-9_./+-]+\Z")


@dataclass(frozen=True)
class RemoteSpec:
    """One remote as stored: where it is and how to log in and run hivectl there."""

    name: str
    url: str
    user: str | None
    host: str  # a hostname, an IPv4 address or an IPv6 address (without brackets)
    port: int | None
    command: str = "hivectl"
    identity: str | None = None
    known_hosts: str | None = None

    def stored(self) -> dict[str, Any]:
        """The entry as the file keeps it (the URL, not its parts: they are derived on every read)."""
        entry = asdict(self)
        for derived in ("name", "user", "host", "port"):
            entry.pop(derived)
        return {k: v for k, v in entry.items() if v is not None}

    @property
    def destination(self) -> str:
        """``user@host:port`` as people write it (for messages)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}{f':{self.port}' if self.port else ''}"


def check_name(source: str | Path | None, key: str, name: str) -> str:
    if not NAME.match(name):
        raise ConfigError(source, key, name, "a remote's name is letters, digits, '.', '_' and '-' (up to 63), "
                                             "starting with a letter or digit")
    if name in RESERVED:
        raise ConfigError(source, key, name, "reserved: 'list --all-remotes' names this host so")
    return name


def parse_url(source: str | Path | None, key: str, url: str) -> tuple[str | None, str, int | None]:
    """``(user, host, port)`` of ``ssh://[user@]host[:port]``; ``ConfigError`` for anything else."""
    match = _URL.match(url)
    if match is None:
        raise ConfigError(source, key, url, "expected ssh://[user@]host[:port]")
    user, host, port = match.group("user"), match.group("host"), match.group("port")
    if user is not None and not _USER.match(user):
        raise ConfigError(source, key, url, f"user {user!r}: letters, digits, '.', '_' and '-', not first a "
                                            "digit, '-' or '.'")
    if host.startswith("["):
        try:
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ConfigError(source, key, url, f"host {host}: not an IPv6 address") from None
    elif not _HOSTNAME.match(host):
        raise ConfigError(source, key, url, f"host {host!r}: not a host name or address")
    number: int | None = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536 or port.startswith("0"):
            raise ConfigError(source, key, url, f"port {port!r}: a number from 1 to 65535")
        number = int(port)
    return user, host, number


def check_command(source: str | Path | None, key: str, command: str) -> str:
    if not _COMMAND.match(command) or command.startswith("-"):
        raise ConfigError(source, key, command, "the remote hivectl is a path of letters, digits and ./_+- "
                                                "(no spaces or shell characters), not starting with '-'")
    return command


def check_local_file(source: str | Path | None, key: str, path: str) -> str:
    """An ``--identity``/``--known-hosts`` file: absolute (ssh reads it from any directory), one line."""
    if not path.startswith("/") or any(c in path for c in "\0\n\r"):
        raise ConfigError(source, key, path, "expected an absolute path")
    return path


def spec(source: str | Path | None, name: str, entry: dict[str, Any], prefix: str | None = None) -> RemoteSpec:
    """One entry checked: every value as ``remote add`` checks it. Keys are named ``remotes.NAME.KEY`` in
    the file; the command line passes ``prefix=""`` (its keys are ``NAME``, ``url``, ``command``...)."""
    where = f"remotes.{name}." if prefix is None else prefix
    check_name(source, "remotes" if prefix is None else "NAME", name)
    unknown = sorted(set(entry) - {"url", "command", "identity", "known_hosts"})
    if unknown:
        raise ConfigError(source, where + unknown[0], str(entry[unknown[0]]), "unknown key")
    fields: dict[str, str | None] = {}
    for key in ("url", "command", "identity", "known_hosts"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(source, where + key, json.dumps(value), "expected a string")
        fields[key] = value
    url = fields["url"]
    if url is None:
        raise ConfigError(source, where + "url", "", "missing")
    user, host, port = parse_url(source, where + "url", url)
    command = check_command(source, where + "command", fields["command"] or "hivectl")
    identity, known = fields["identity"], fields["known_hosts"]
    return RemoteSpec(name, url, user, host, port, command,
                      check_local_file(source, where + "identity", identity) if identity is not None else None,
                      check_local_file(source, where + "known_hosts", known) if known is not None else None)


def path_of(config_dir: Path) -> Path:
    return config_dir / FILE_NAME


def load(config_dir: Path) -> dict[str, RemoteSpec]:
    """Every remote of the file (none when there is no file), each checked."""
    path = path_of(config_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(path, "(file)", "", f"not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("remotes"), dict):
        raise ConfigError(path, "version", str(data.get("version") if isinstance(data, dict) else ""),
                          f"expected {{\"version\": {VERSION}, \"remotes\": {{...}}}}")
    found = {}
    for name, entry in data["remotes"].items():
        if not isinstance(entry, dict):
            raise ConfigError(path, f"remotes.{name}", json.dumps(entry), "expected an object")
        found[name] = spec(path, name, entry)
    return found


def _save(config_dir: Path, remotes: dict[str, RemoteSpec]) -> None:
    from hivectl.rcfile import atomic_write

    document = {"version": VERSION, "remotes": {n: remotes[n].stored() for n in sorted(remotes)}}
    atomic_write(path_of(config_dir), json.dumps(document, indent=2) + "\n", 0o600)


def add(config_dir: Path, new: RemoteSpec, replace: bool = False) -> None:
    """Add ``new`` (``Conflict`` if the name is taken, unless ``replace``), under the file's lock."""
    from hivectl.safety.filelock import locked

    config_dir.mkdir(parents=True, exist_ok=True)
    path = path_of(config_dir)
    with locked(path):
        remotes = load(config_dir)
        if new.name in remotes and not replace:
            raise Conflict(f"remote {new.name!r} exists ({remotes[new.name].url}); remove it first")
        remotes[new.name] = new
        _save(config_dir, remotes)


def remove(config_dir: Path, name: str) -> RemoteSpec:
    """Remove the remote ``name`` and return it; ``NotFound`` if there is none."""
    from hivectl.safety.filelock import locked

    path = path_of(config_dir)
    with locked(path):
        remotes = load(config_dir)
        if name not in remotes:
            raise NotFound(f"no remote {name!r} (see 'hivectl remote list')")
        gone = remotes.pop(name)
        _save(config_dir, remotes)
    return gone


def get(config_dir: Path, name: str) -> RemoteSpec:
    remotes = load(config_dir)
    if name not in remotes:
        raise NotFound(f"no remote {name!r} (see 'hivectl remote list')")
    return remotes[name]


def rows(config_dir: Path) -> list[dict[str, Any]]:
    """``remote list --json``: each remote's name, URL, command, identity and known_hosts file."""
    return [{"name": r.name, "url": r.url, "command": r.command, "identity": r.identity,
             "known_hosts": r.known_hosts} for r in load(config_dir).values()]


def add_checked(config_dir: Path, name: str, url: str, command: str | None = None, identity: str | None = None,
                known_hosts: str | None = None, dry_run: bool = False) -> RemoteSpec:
    """``remote add``: every value checked as the command line gives it (keys ``NAME``, ``url``, ``command``,
    ``identity``, ``known_hosts``), the key files present; recorded unless ``dry_run``."""
    entry = {"url": url, "command": command, "identity": identity, "known_hosts": known_hosts}
    new = spec(None, name, {k: v for k, v in entry.items() if v is not None}, prefix="")
    for key, path in (("identity", new.identity), ("known_hosts", new.known_hosts)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(None, key, path, "no such file")
    if dry_run:
        if new.name in load(config_dir):
            raise Conflict(f"remote {new.name!r} exists; remove it first")
    else:
        add(config_dir, new)
    return new


def remove_checked(config_dir: Path, name: str, dry_run: bool = False) -> RemoteSpec:
    """``remote remove``: the name checked; forgotten unless ``dry_run`` (nothing on the remote changes)."""
    check_name(None, "NAME", name)
    return get(config_dir, name) if dry_run else remove(config_dir, name)
