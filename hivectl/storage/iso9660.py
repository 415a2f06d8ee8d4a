"""A minimal ISO 9660 writer for cloud-init NoCloud seeds (a flat root directory of small files).

Why our own: hivectl's runtime has no third-party dependencies, and neither ``makefs`` (FreeBSD) nor
``genisoimage``/``xorriso`` (Linux) can be assumed on a host. A seed needs very little of the standard:

- one root directory holding a handful of regular files;
- ISO 9660 names are 8.3 upper case, so the real names (``meta-data``, ``network-config``) are carried
  twice: as Rock Ridge ``NM`` entries (what FreeBSD's cd9660 and Linux's isofs read, and what
  vm-bhyve's ``makefs -o R`` writes) and in a Joliet tree (what genisoimage ``-J`` writes; Windows
  guests with cloudbase-init read it);
- the volume label is written as given (``cidata``), like makefs and genisoimage do.

The layout is fixed: system area, primary and Joliet volume descriptors, terminator, four path tables,
the two root directories, the Rock Ridge ``ER`` continuation block, then the file data. The output is a
pure function of the inputs (names, contents, time), so a rebuilt seed with the same inputs is
byte-identical.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime

from hivectl import patterns
from hivectl.patterns import Pattern

SECTOR = 2048
_FIRST_DATA_SECTOR = 26  # 16 system area + 3 descriptors + 4 path tables + 2 roots + 1 continuation

_RR_ID = b"RRIP_1991A"
_RR_DES = b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
_RR_SRC = (b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY "
           b"VOLUME DESCRIPTOR FOR CONTACT INFORMATION.")

_VALID_NAME = Pattern(r"[A-Za-z0-9._-]{1,64}")


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _dir_date(when: datetime) -> bytes:
    """The 7-byte date of a directory record (UTC)."""
    return bytes([when.year - 1900, when.month, when.day, when.hour, when.minute, when.second, 0])


def _vd_date(when: datetime | None) -> bytes:
    """The 17-byte date of a volume descriptor; None means 'not specified'."""
    if when is None:
        return b"0" * 16 + b"\x00"
    return when.strftime("%Y%m%d%H%M%S").encode() + b"00\x00"


def _pad(text: bytes, size: int, fill: bytes = b" ") -> bytes:
    return text[:size].ljust(size, fill)


def _ucs2(text: str, size: int) -> bytes:
    """A Joliet identifier field: UCS-2 big-endian, padded with UCS-2 spaces."""
    data = text.encode("utf-16-be")[:size]
    return data + b"\x00 " * ((size - len(data)) // 2)


def _record(extent: int, length: int, when: datetime, flags: int, identifier: bytes, system_use: bytes = b"") -> bytes:
    """One directory record (ECMA-119 9.1); its length is always even."""
    base = 33 + len(identifier)
    pad = b"\x00" if len(identifier) % 2 == 0 else b""
    total = base + len(pad) + len(system_use)
    if total % 2:
        system_use += b"\x00"
        total += 1
    if total > 255:
        raise ValueError("directory record too long")
    return (bytes([total, 0]) + _both32(extent) + _both32(length) + _dir_date(when) + bytes([flags, 0, 0])
            + _both16(1) + bytes([len(identifier)]) + identifier + pad + system_use)


def _px(mode: int, links: int) -> bytes:
    """Rock Ridge POSIX attributes (RRIP 1.09 form, 36 bytes); owner root."""
    return b"PX" + bytes([36, 1]) + _both32(mode) + _both32(links) + _both32(0) + _both32(0)


def _rr(flags: int) -> bytes:
    return b"RR" + bytes([5, 1, flags])


def _nm(name: str) -> bytes:
    data = name.encode()
    return b"NM" + bytes([5 + len(data), 1, 0]) + data


def _short_names(names: list[str]) -> dict[str, str]:
    """Unique ISO 9660 level-1 file identifiers (``META_DAT.;1``) for the real names."""
    result: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        upper = name.upper()
        stem, ext = (upper.rsplit(".", 1)) if "." in upper[1:] else (upper, "")
        stem = patterns.sub(r"[^A-Z0-9_]", "_", stem)[:8] or "_"
        ext = patterns.sub(r"[^A-Z0-9_]", "_", ext)[:3]
        candidate = f"{stem}.{ext}"
        counter = 1
        while candidate in used:
            suffix = str(counter)
            candidate = f"{stem[:8 - len(suffix)]}{suffix}.{ext}"
            counter += 1
        used.add(candidate)
        result[name] = candidate + ";1"
    return result


def _directory(records: list[bytes]) -> bytes:
    """Records packed into sectors (a record never crosses a sector boundary)."""
    out = bytearray()
    for record in records:
        room = SECTOR - len(out) % SECTOR
        if len(record) > room:
            out += b"\x00" * room
        out += record
    return bytes(out)


def build_iso(files: Mapping[str, bytes], volume_id: str = "cidata", when: datetime | None = None) -> bytes:
    """An ISO 9660 image with Rock Ridge and Joliet holding ``files`` in its root directory.

    Names must be plain file names (letters, digits, ``.``, ``_``, ``-``); the volume id at most 32 ASCII
    characters (16 for the Joliet copy). Directories are limited to one sector each, which holds far more
    files than a cloud-init seed has.
    """
    when = (when or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    if len(volume_id) > 32 or not volume_id.isascii():
        raise ValueError(f"volume id {volume_id!r}: at most 32 ASCII characters")
    names = sorted(files)
    for name in names:
        if not _VALID_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"file name {name!r}: only letters, digits, '.', '_' and '-'")
    short = _short_names(names)

    # Where each file's data goes.
    extents: dict[str, int] = {}
    sector = _FIRST_DATA_SECTOR
    for name in sorted(names, key=lambda n: short[n]):
        extents[name] = sector
        sector += (len(files[name]) + SECTOR - 1) // SECTOR
    total_sectors = sector

    primary_root, joliet_root, continuation = 23, 24, 25
    er = b"ER" + bytes([8 + len(_RR_ID) + len(_RR_DES) + len(_RR_SRC), 1, len(_RR_ID), len(_RR_DES),
                        len(_RR_SRC), 1]) + _RR_ID + _RR_DES + _RR_SRC
    ce = b"CE" + bytes([28, 1]) + _both32(continuation) + _both32(0) + _both32(len(er))
    dir_mode, file_mode = 0o040555, 0o100444

    primary = [
        _record(primary_root, SECTOR, when, 2, b"\x00",
                b"SP" + bytes([7, 1, 0xBE, 0xEF, 0]) + _rr(0x01) + _px(dir_mode, 2) + ce),
        _record(primary_root, SECTOR, when, 2, b"\x01", _rr(0x01) + _px(dir_mode, 2)),
    ]
    for name in sorted(names, key=lambda n: short[n]):
        primary.append(_record(extents[name], len(files[name]), when, 0, short[name].encode(),
                               _rr(0x89) + _px(file_mode, 1) + _nm(name)))
    joliet = [_record(joliet_root, SECTOR, when, 2, b"\x00"), _record(joliet_root, SECTOR, when, 2, b"\x01")]
    for name in sorted(names, key=lambda n: n.encode("utf-16-be")):
        joliet.append(_record(extents[name], len(files[name]), when, 0, name.encode("utf-16-be")))
    primary_dir, joliet_dir = _directory(primary), _directory(joliet)
    if len(primary_dir) > SECTOR or len(joliet_dir) > SECTOR:
        raise ValueError("too many files for a one-sector root directory")

    def path_table(root: int, big_endian: bool) -> bytes:
        location = struct.pack(">I" if big_endian else "<I", root)
        parent = struct.pack(">H" if big_endian else "<H", 1)
        return bytes([1, 0]) + location + parent + b"\x00\x00"

    def descriptor(kind: int, root: int, tables: tuple[int, int], ident: bytes, joliet_vd: bool) -> bytes:
        def field(text: str, size: int) -> bytes:
            return _ucs2(text, size) if joliet_vd else _pad(text.encode(), size)

        vd = bytearray(SECTOR)
        vd[0:7] = bytes([kind]) + b"CD001" + b"\x01"
        vd[8:40] = field("", 32)
        vd[40:72] = ident
        vd[80:88] = _both32(total_sectors)
        if joliet_vd:
            vd[88:91] = b"%/E"
        vd[120:124] = _both16(1)
        vd[124:128] = _both16(1)
        vd[128:132] = _both16(SECTOR)
        vd[132:140] = _both32(10)
        vd[140:144] = struct.pack("<I", tables[0])
        vd[148:152] = struct.pack(">I", tables[1])
        vd[156:190] = _record(root, SECTOR, when, 2, b"\x00")
        vd[190:318] = field("", 128)
        vd[318:446] = field("", 128)
        vd[446:574] = field("", 128)
        vd[574:702] = field("HIVECTL", 128)
        vd[702:739] = field("", 37)[:37].ljust(37, b" ")
        vd[739:776] = field("", 37)[:37].ljust(37, b" ")
        vd[776:813] = field("", 37)[:37].ljust(37, b" ")
        vd[813:830] = _vd_date(when)
        vd[830:847] = _vd_date(when)
        vd[847:864] = _vd_date(None)
        vd[864:881] = _vd_date(None)
        vd[881] = 1
        return bytes(vd)

    image = bytearray(SECTOR * 16)
    image += descriptor(1, primary_root, (19, 20), _pad(volume_id.encode(), 32), False)
    image += descriptor(2, joliet_root, (21, 22), _ucs2(volume_id[:16], 32), True)
    image += (b"\xffCD001\x01").ljust(SECTOR, b"\x00")
    for table in (path_table(primary_root, False), path_table(primary_root, True),
                  path_table(joliet_root, False), path_table(joliet_root, True)):
        image += table.ljust(SECTOR, b"\x00")
    image += primary_dir.ljust(SECTOR, b"\x00")
    image += joliet_dir.ljust(SECTOR, b"\x00")
    image += er.ljust(SECTOR, b"\x00")
    for name in sorted(names, key=lambda n: short[n]):
        data = files[name]
        image += data
        if len(data) % SECTOR:
            image += b"\x00" * (SECTOR - len(data) % SECTOR)
    if len(image) != total_sectors * SECTOR:
        raise AssertionError("ISO layout arithmetic is wrong")
    return bytes(image)
