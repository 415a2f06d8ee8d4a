"""``hivectld``: start the daemon (arguments, sockets, uvicorn).

Where it listens, in order of precedence: the command line, then vm_dir/.config/system.conf (vm-bhyve's
settings file, read as ``hivectl get`` reads it), then the defaults:

=====================  ==========================  =================================================
option                 system.conf key             default
=====================  ==========================  =================================================
``--socket PATH``      ``hivectld_socket``         ``vm_dir/.config/hivectld.sock``
``--group NAME``       ``hivectld_group``          the daemon's own group (so only root may connect)
``--listen HOST:PORT`` ``hivectld_listen``         none: TCP is off
``--tls-cert/--key``   ``hivectld_tls_cert/_key``  none: required with ``--listen``
=====================  ==========================  =================================================

The unix socket is created mode 0660 (under a umask that never lets it be wider) and given to the group;
a stale socket file of a dead daemon is replaced, a live daemon's is refused. TCP is only served with TLS:
without a certificate and key ``--listen`` is refused, because a bearer token sent in clear is anyone's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hivectl.errors import ConfigError, HivectlError

log = logging.getLogger("hivectld")

SUN_PATH_MAX = 104  # FreeBSD's sockaddr_un.sun_path (Linux allows 108): the stricter of the two


@dataclass(frozen=True)
class Listen:
    """Where the daemon listens."""

    socket: Path
    group: str | None
    tcp: tuple[str, int] | None
    tls_cert: Path | None
    tls_key: Path | None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hivectld", description="hivectl's REST daemon (docs/api.md)")
    parser.add_argument("--vm-dir", help="vm_dir (default: as hivectl finds it: rc.conf, HIVECTL_VM_DIR)")
    parser.add_argument("--driver", choices=["bhyve", "qemu"], help="driver (default: the platform's)")
    parser.add_argument("--socket", help="unix socket path (system.conf hivectld_socket)")
    parser.add_argument("--group", help="group owning the socket (system.conf hivectld_group)")
    parser.add_argument("--listen", help="also listen on HOST:PORT over TLS (system.conf hivectld_listen)")
    parser.add_argument("--tls-cert", help="TLS certificate (PEM) for --listen (system.conf hivectld_tls_cert)")
    parser.add_argument("--tls-key", help="TLS private key (PEM) for --listen (system.conf hivectld_tls_key)")
    parser.add_argument("--workers", type=int, default=4, help="threads running background operations")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(list(argv))


def _setting(values: dict[str, str], key: str, given: str | None) -> str | None:
    return given if given else (values.get(key) or None)


def resolve(args: argparse.Namespace, vm_dir: Path) -> Listen:
    """Where to listen: the arguments over system.conf over the defaults; every value checked."""
    from hivectl.rcfile import RcFile

    conf = vm_dir / ".config" / "system.conf"
    values = dict(RcFile.load(conf).values) if conf.is_file() else {}
    source = str(conf)

    def origin(key: str, given: str | None) -> str:
        return "command line" if given else source

    path = Path(_setting(values, "hivectld_socket", args.socket) or vm_dir / ".config" / "hivectld.sock")
    if not path.is_absolute() or len(os.fsencode(path)) >= SUN_PATH_MAX:
        raise ConfigError(origin("hivectld_socket", args.socket), "hivectld_socket", str(path),
                          f"must be an absolute path shorter than {SUN_PATH_MAX} bytes")
    group = _setting(values, "hivectld_group", args.group)
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise ConfigError(origin("hivectld_group", args.group), "hivectld_group", group,
                              "no such group") from None
    tcp = None
    listen = _setting(values, "hivectld_listen", args.listen)
    cert = _setting(values, "hivectld_tls_cert", args.tls_cert)
    key = _setting(values, "hivectld_tls_key", args.tls_key)
    if listen is not None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(origin("hivectld_listen", args.listen), "hivectld_listen", listen,
                              "expected HOST:PORT")
        if cert is None or key is None:
            raise ConfigError(origin("hivectld_listen", args.listen), "hivectld_listen", listen,
                              "TCP is served with TLS only: set hivectld_tls_cert and hivectld_tls_key")
        for name, value in (("hivectld_tls_cert", cert), ("hivectld_tls_key", key)):
            if not Path(value).is_file():
                raise ConfigError(source, name, value, "no such file")
        tcp = (host.strip("[]"), int(port))
    return Listen(path, group, tcp, Path(cert) if cert else None, Path(key) if key else None)


def _live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def unix_listener(path: Path, group: str | None) -> socket.socket:
    """The listening socket at ``path``, mode 0660, owned by ``group``."""
    if not path.parent.is_dir():
        raise HivectlError(f"{path.parent} does not exist: run 'hivectl init' first")
    with contextlib.suppress(FileNotFoundError):
        st = path.lstat()
        if not stat.S_ISSOCK(st.st_mode):
            raise HivectlError(f"{path}: exists and is not a socket")
        if _live(path):
            raise HivectlError(f"{path}: another hivectld is listening there")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # the socket is born 0660 at most: never a moment when others may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="hivectld: %(levelname)s: %(message)s")
    try:
        import uvicorn
    except ImportError:
        log.error("needs the 'daemon' extra: pip install 'hivectl[daemon]'")
        return 1
    from hivectl.daemon.app import create_app
    from hivectl.daemon.peer import PeerH11Protocol

    try:
        app = create_app(args.vm_dir, args.driver, workers=args.workers)
        where = resolve(args, Path(app.state.root))
        listener = unix_listener(where.socket, where.group)
    except HivectlError as error:
        log.error("%s", error)  # the format prints "hivectld: ERROR: " before it
        return 1
    servers = [uvicorn.Server(uvicorn.Config(app, http=PeerH11Protocol, log_level=args.log_level,
                                             access_log=args.log_level == "debug"))]
    sockets = [[listener]]
    if where.tcp is not None:
        family = socket.AF_INET6 if ":" in where.tcp[0] else socket.AF_INET
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(where.tcp)
        tcp.listen(128)
        servers.append(uvicorn.Server(uvicorn.Config(app, http=PeerH11Protocol, lifespan="off",
                                                     ssl_certfile=str(where.tls_cert), ssl_keyfile=str(where.tls_key),
                                                     log_level=args.log_level, access_log=False)))
        sockets.append([tcp])
    log.info("listening on %s%s", where.socket, f" and https://{where.tcp[0]}:{where.tcp[1]}" if where.tcp else "")

    async def serve() -> None:
        await asyncio.gather(*(server.serve(sockets=s) for server, s in zip(servers, sockets, strict=True)))

    try:
        asyncio.run(serve())
    finally:
        with contextlib.suppress(OSError):
            if where.socket.is_socket():
                where.socket.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
