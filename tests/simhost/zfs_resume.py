"""Resumable ``zfs send``/``zfs recv -s`` and user holds for the simulated ``zfs`` (zfs-send(8), zfs-receive(8),
zfs-hold(8) of OpenZFS 2.x as FreeBSD 14/15 ship it).

The stream: one header line ``SIMZFS2 {json}\\n`` (what the real stream's BEGIN record carries: the
snapshot's name and guid, the incremental source's guid, the object type, and here the payload's length and
digest, which the real stream checks record by record), then the payload (the JSON document of
``zfs.py``'s stream) from ``offset`` on: 0 for a new stream, the received byte count for ``zfs send -t``.

``zfs recv -s`` writes what it reads to a spool as it reads it (the real receive writes into the pool as it
goes, so a killed receive keeps what reached the pool): a receive that ends early, by a short stream or by
being killed, leaves that state behind, and ``receive_resume_token`` on the dataset received into names
it (a new dataset exists but is not mounted, as a real partially received one). ``zfs send -t TOKEN``
sends only the rest; ``zfs recv -A`` throws the state away; any other receive into that dataset is refused
while it exists. A state flag ``zfs_resume: false`` makes the stand-in an older ZFS without any of this
(zfs-fuse 0.7: no ``-s``, no ``-t``, no such property), so the fallback can be tested.

Holds: ``zfs hold TAG SNAP``, ``zfs release TAG SNAP``, ``zfs holds [-H] SNAP``; a held snapshot cannot be
destroyed ("dataset is busy"); ``userrefs`` counts the holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from . import paths, state

MAGIC2 = b"SIMZFS2 "
CHUNK = 16 << 10  # the receive writes to the pool at least this often


def resume_supported(st: dict[str, Any]) -> bool:
    return bool(st.get("zfs_resume", True))


# -- stream framing -----------------------------------------------------------------------------------------

def frame(header: dict[str, Any], payload: bytes, offset: int = 0) -> bytes:
    head = dict(header, size=len(payload), sha256=hashlib.sha256(payload).hexdigest(), offset=offset)
    return MAGIC2 + json.dumps(head, sort_keys=True).encode() + b"\n" + payload[offset:]


# -- tokens -------------------------------------------------------------------------------------------------

def make_token(meta: dict[str, Any], received: int) -> str:
    """``1-<crc>-<length>-<hex of the compressed fields>``, the shape of OpenZFS's resume tokens."""
    fields = {"toname": meta["toname"], "toguid": meta["toguid"], "fromguid": meta.get("fromguid"),
              "bytes": received, "object": 0, "offset": received}
    packed = zlib.compress(json.dumps(fields, sort_keys=True).encode())
    return f"1-{zlib.crc32(packed):x}-{len(packed):x}-{packed.hex()}"


def read_token(token: str) -> dict[str, Any] | None:
    parts = token.split("-")
    if len(parts) != 4 or parts[0] != "1":
        return None
    try:
        packed = bytes.fromhex(parts[3])
        if f"{zlib.crc32(packed):x}" != parts[1] or f"{len(packed):x}" != parts[2]:
            return None
        fields: dict[str, Any] = json.loads(zlib.decompress(packed))
    except (ValueError, zlib.error):
        return None
    return fields


# -- saved partial state ------------------------------------------------------------------------------------

def spool(name: str) -> tuple[Path, Path]:
    base = paths.root() / ".zfs-recv"
    key = name.replace("/", "%")
    return base / f"{key}.json", base / f"{key}.partial"


def saved(name: str) -> dict[str, Any] | None:
    meta_path, data_path = spool(name)
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    meta["received"] = data_path.stat().st_size if data_path.exists() else 0
    return meta


def token_of(name: str) -> str:
    meta = saved(name)
    return "-" if meta is None else make_token(meta, int(meta["received"]))


def discard(name: str) -> None:
    for path in spool(name):
        path.unlink(missing_ok=True)


# -- receive ------------------------------------------------------------------------------------------------

def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _read_line(fd: int) -> bytes:
    out = bytearray()
    while len(out) < (1 << 20):
        byte = os.read(fd, 1)
        if not byte or byte == b"\n":
            break
        out += byte
    return bytes(out)


def _target(args: list[str]) -> str:
    target = args[-1] if args else ""
    return target.partition("@")[0]


def receive(args: list[str], apply: Any) -> int:
    """``zfs receive`` of a framed stream; ``apply(args, document)`` receives a whole document under the
    state lock (zfs.py's receive). The stream is read before the lock is taken: a ``zfs send`` of the same
    host feeding this receive must be able to read the state meanwhile."""
    from .zfs import Pool, getopts, new_record, usage

    resumable = resume_supported(state.load())
    opts, rest = getopts("receive", args, ("AFhMnsuvdeo:x:" if resumable else "FhMnuvdeo:x:"))
    flags = {o for o, _ in opts}
    if "A" in flags:
        if len(rest) != 1:
            usage("receive", "missing filesystem argument")
        with state.transaction() as st:
            pool = Pool(st)
            name = rest[0]
            if saved(name) is None:
                return _fail(f"'{name}' does not have any resumable receive state to abort")
            discard(name)
            if pool.exists(name) and pool.ds[name].get("partial"):
                del pool.ds[name]
        return 0
    if not rest:
        usage("receive", "missing snapshot argument")
    if os.isatty(0):
        print("Error: Backup stream can not be read from a terminal.\nYou must redirect standard input.",
              file=sys.stderr)
        return 1
    fd = sys.stdin.fileno()
    first = _read_line(fd)
    plain = [a for a in args if a != "-s"] if "s" in flags else list(args)
    if not first.startswith(MAGIC2):  # an older document stream: read it whole
        rest_bytes = _read_all(fd)
        return int(apply(plain, first + rest_bytes))
    header: dict[str, Any] = json.loads(first[len(MAGIC2):])
    name = _target(rest)
    incremental = header.get("fromguid") is not None
    kind = "incremental stream" if incremental else "new filesystem stream"
    offset = int(header["offset"])
    meta = saved(name)
    if offset:
        if meta is None or meta["toguid"] != header["toguid"] or int(meta["received"]) != offset:
            return _fail(f"cannot receive resume stream: destination '{name}' has no matching partially "
                         "received state")
    elif meta is not None:
        return _fail(f"cannot receive {kind}: destination {name} contains partially-complete state from "
                     "\"zfs receive -s\".")
    if "s" in flags and not offset:
        with state.transaction() as st:
            pool = Pool(st)
            if incremental and not pool.exists(name):
                return _fail(f"cannot receive incremental stream: destination '{name}' does not exist")
            if not incremental:
                if pool.exists(name) and "F" not in flags:
                    return _fail(f"cannot receive new filesystem stream: destination '{name}' exists\n"
                                 "must specify -F to overwrite it")
                parent = pool.parent(name)
                if parent is None or not pool.exists(parent):
                    return _fail(f"cannot receive new filesystem stream: parent of '{name}' does not exist")
            meta_path, data_path = spool(name)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            meta = {"toname": header["toname"], "toguid": header["toguid"], "fromguid": header.get("fromguid"),
                    "size": header["size"], "sha256": header["sha256"], "args": plain, "placeholder": False}
            data_path.write_bytes(b"")
            if not incremental and not pool.exists(name):
                pool.ds[name] = new_record(pool, header.get("type", "filesystem"), {})
                pool.ds[name]["partial"] = True
                meta["placeholder"] = True
            meta_path.write_text(json.dumps(meta))
    keep = "s" in flags or bool(offset)
    if keep:
        meta = saved(name)
        assert meta is not None
        _, data_path = spool(name)
        out = os.open(data_path, os.O_WRONLY | os.O_APPEND)
        try:
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                os.write(out, chunk)  # unbuffered: a kill loses only what it had not read yet
        finally:
            os.close(out)
        payload = data_path.read_bytes()
    else:
        payload = _read_all(fd)
    if len(payload) != int(header["size"]) or hashlib.sha256(payload).hexdigest() != header["sha256"]:
        if keep:
            token = token_of(name)
            return _fail(f"cannot receive {kind}: checksum mismatch or incomplete stream.\n"
                         "Partially received snapshot is saved.\n"
                         "A resuming stream can be generated on the sending system by running:\n"
                         f"    zfs send -t {token}")
        return _fail(f"cannot receive {kind}: checksum mismatch or incomplete stream")
    if keep:
        meta = saved(name)
        assert meta is not None
        plain = list(meta["args"])
        if meta.get("placeholder"):
            with state.transaction() as st:
                Pool(st).ds.pop(name, None)
        discard(name)
    return int(apply(plain, payload))


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# -- holds --------------------------------------------------------------------------------------------------

def cmd_hold(pool: Any, args: list[str]) -> int:
    """``zfs hold [-r] TAG SNAPSHOT...``: every snapshot checked first, then all held (or none)."""
    return _change_holds(pool, "hold", args, "hold", "tag already exists on this dataset")


def cmd_release(pool: Any, args: list[str]) -> int:
    """``zfs release [-r] TAG SNAPSHOT...``: as ``hold``, the other way."""
    return _change_holds(pool, "release", args, "release hold from", "no such tag on this dataset")


def _change_holds(pool: Any, command: str, args: list[str], verb: str, refusal: str) -> int:
    """hold and release in one loop, as zfs(8) words them: a snapshot that already has the tag (hold) or
    lacks it (release) refuses the whole command before any snapshot changes."""
    from .zfs import fail, getopts, usage

    opts, rest = getopts(command, args, "r")
    if len(rest) < 2:
        usage(command, "missing tag or snapshot argument")
    tag, snaps = rest[0], rest[1:]
    adding = command == "hold"
    targets = _hold_targets(pool, snaps, any(o == "r" for o, _ in opts), verb)
    for snap in targets:
        if (tag in pool.ds[snap].get("holds", {})) == adding:
            fail(f"cannot {verb} snapshot '{snap}': {refusal}")
    for snap in targets:
        holds = pool.ds[snap].setdefault("holds", {})
        if adding:
            holds[tag] = int(time.time())
        else:
            del holds[tag]
    return 0


def cmd_holds(pool: Any, args: list[str]) -> int:
    from .zfs import getopts, usage

    opts, rest = getopts("holds", args, "Hpr")
    flags = {o for o, _ in opts}
    if not rest:
        usage("holds", "missing snapshot argument")
    rows = []
    for snap in _hold_targets(pool, rest, "r" in flags, "get holds of"):
        for tag, stamp in sorted(pool.ds[snap].get("holds", {}).items()):
            shown = str(stamp) if "p" in flags else time.strftime("%a %b %e %H:%M %Y", time.localtime(stamp))
            rows.append((snap, tag, shown))
    if "H" not in flags:
        print("NAME\tTAG\tTIMESTAMP")
    for row in rows:
        print("\t".join(row))
    return 0


def _hold_targets(pool: Any, snaps: list[str], recursive: bool, verb: str) -> list[str]:
    from .zfs import fail

    out: list[str] = []
    for snap in snaps:
        if "@" not in snap:
            fail(f"'{snap}' is not a snapshot")
        if not pool.exists(snap):
            fail(f"cannot {verb} snapshot '{snap}': dataset does not exist")
        base, _, name = snap.partition("@")
        out.append(snap)
        if recursive:
            out.extend(f"{d}@{name}" for d in pool.descendants(base) if pool.exists(f"{d}@{name}"))
    return out


def held(pool: Any, names: list[str]) -> str | None:
    """The first snapshot of ``names`` that has a hold (it cannot be destroyed)."""
    return next((n for n in names if "@" in n and n in pool.ds and pool.ds[n].get("holds")), None)
