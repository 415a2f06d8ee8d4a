"""Who is at the other end of a unix socket, as the kernel says (never as the caller says).

Linux: SO_PEERCRED (socket(7)) gives the peer's uid and gid at connect(2), SO_PEERGROUPS its
supplementary groups. FreeBSD: LOCAL_PEERCRED (unix(4)) gives a ``struct xucred``: uid and up to
XU_NGROUPS (16) groups, the first being the effective gid.
"""

from __future__ import annotations

import os
import socket
import sys

from hivectl.records import record

SO_PEERGROUPS = 59  # Linux >= 4.13, include/uapi/asm-generic/socket.h (not exported by Python's socket)
XUCRED_SIZE = 76  # struct xucred: u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]; ...


@record(frozen=True)
class Peer:
    """The connecting process's credentials; ``groups`` includes ``gid``."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def peer_of(conn: socket.socket) -> Peer:
    """The credentials of the process connected to ``conn`` (OSError where the platform has no way)."""
    order = sys.byteorder
    if hasattr(socket, "SO_PEERCRED"):
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)  # struct ucred {pid, uid, gid}
        uid, gid = int.from_bytes(raw[4:8], order), int.from_bytes(raw[8:12], order)
        return Peer(uid, gid, (gid, *_linux_groups(conn, uid, gid)))
    if sys.platform.startswith("freebsd"):
        raw = conn.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), XUCRED_SIZE)
        uid = int.from_bytes(raw[4:8], order)
        count = int.from_bytes(raw[8:10], order, signed=True)
        groups = tuple(int.from_bytes(raw[12 + 4 * i:16 + 4 * i], order) for i in range(max(0, min(count, 16))))
        if not groups:
            raise OSError("LOCAL_PEERCRED gave no groups")
        return Peer(uid, groups[0], groups)
    raise OSError(f"no peer credentials on {sys.platform}")


def _linux_groups(conn: socket.socket, uid: int, gid: int) -> tuple[int, ...]:
    """The peer's supplementary groups: SO_PEERGROUPS, else the user database's (getgrouplist(3))."""
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 1024)
        return tuple(int.from_bytes(raw[i:i + 4], sys.byteorder) for i in range(0, len(raw) - 3, 4))
    except OSError:
        import pwd

        try:
            return tuple(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
        except KeyError:
            return ()


def become(peer: Peer) -> None:
    """Take ``peer``'s credentials for good (this process is root): groups, then gid, then uid."""
    os.setgroups(list(dict.fromkeys(peer.groups)))
    os.setgid(peer.gid)
    os.setuid(peer.uid)
