"""vm-bhyve's ``key="value"`` configuration files: a reader with its quirks and a sysrc-like writer.

vm-bhyve reads every config file (guest, template, system.conf, rc.conf values) with a tiny shell parser,
and an existing host only keeps meaning the same thing if we read exactly as it does (vm-bhyve's ``lib/vm-config``):

- only lines that start with a lowercase ASCII letter count;
- everything from the first ``#`` is cut, even inside quotes (so ``#`` can never be part of a value);
- trailing blanks are stripped, then *every* double quote is deleted;
- the line is split at the first ``=`` and the key must match exactly (``cpu = 2`` defines ``cpu ``);
- the first occurrence of a key wins.

Writing imitates ``sysrc -f``: a key that exists is replaced in place on the line the reader uses, a new key
is appended, and every other line (comments, blank lines, unknown keys, odd formatting) is kept byte for
byte. The file is replaced atomically (temporary file in the same directory, fsync, rename), so a crash
never leaves a half-written config behind.
"""

from __future__ import annotations

import os

from hivectl.errors import SECRET_KEYS as SECRET_KEYS  # keys whose value is never readable by others
from hivectl.errors import ConfigError
from hivectl.safety.text import LINE_BREAKS

# Reading is on every command's path (``list`` reads a thousand files), writing is not: what only writing
# needs (re, tempfile, contextlib, process identity) is imported by the functions that write.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_FORBIDDEN_IN_VALUES = {'"': "a double quote", "#": "'#'", **LINE_BREAKS}


def parse_line(line: str) -> tuple[str, str] | None:
    """Return ``(key, value)`` for one line as vm-bhyve reads it, or None if the line defines nothing."""
    if not line or line[0] not in _LOWER:
        return None
    hash_at = line.find("#")
    if hash_at >= 0:
        line = line[:hash_at]
    line = line.rstrip(" \t\r\n").replace('"', "")
    eq = line.find("=")
    if eq < 0:
        return None
    return line[:eq], line[eq + 1 :]


def parse_text(text: str) -> dict[str, str]:
    """Parse a whole file's text into an ordered dict; the first definition of a key wins.

    Same result as ``parse_line`` on every line (tests/test_rcfile_parse.py), written for speed since
    ``list`` parses a thousand files (benchmarks/README.md): an assignment line starts with a lowercase
    letter and has an ``=`` before any ``#``; the key is what precedes the first ``=``, the value what
    follows it up to the first ``#``. Lines are split at ``\\n`` only, as sh's read does. The value's trailing
    blanks are stripped before its double quotes are deleted, as ``parse_line`` does (``a="x "`` is ``x ``
    with its space).
    """
    values: dict[str, str] = {}
    for line in text.split("\n"):
        head = line[:1]
        if head < "a" or head > "z":  # also skips an empty line ("" < "a")
            continue
        key, equals, value = line.partition("=")
        if not equals or "#" in key:
            continue
        if "#" in value:
            value = value[: value.find("#")]
        if '"' in key:
            key = key.replace('"', "")
        if key not in values:
            values[key] = value.rstrip(" \t\r").replace('"', "")
    return values


def read_text(path: Path | str) -> str:
    """A config file's text exactly as sh reads it: no newline translation (``newline=""``).

    Python's default text mode turns a lone ``\r`` into a line end, so ``uefi_vars="0<CR>yes"`` would read
    as ``0`` here while vm-bhyve's reader sees ``0<CR>yes``; kept as it is, the value is refused instead.
    """
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def read_values(path: Path) -> dict[str, str]:
    """Read and parse a file; a missing file is an empty config (vm-bhyve treats it the same way)."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return {}
    return parse_text(text)


def check_value(path: Path | str | None, key: str, value: str) -> None:
    """Refuse values the file format cannot carry: they would be silently changed on the next read."""
    for bad, what in _FORBIDDEN_IN_VALUES.items():
        if bad in value:
            raise ConfigError(path, key, value, f"values cannot contain {what} in vm-bhyve config files")


def check_key(path: Path | str | None, key: str) -> None:
    """Keys must be readable back: start with a lowercase letter, then letters, digits and ``_``."""
    if not key or key[0] not in _LOWER or not all(c.isascii() and (c.isalnum() or c == "_") for c in key):
        raise ConfigError(path, key, "", "keys must start with a-z and contain only letters, digits and '_'")


def holds_secret(text: str) -> bool:
    """True when ``text`` (a vm-bhyve config file) sets a key whose value is a secret (``vnc_password``)."""
    if not any(key in text for key in SECRET_KEYS):
        return False
    values = parse_text(text)
    return any(values.get(key) for key in SECRET_KEYS)


def collect_stale_temps(path: Path) -> None:
    """Remove temp files a killed writer of ``path`` left next to it (``.NAME.PID.RAND.tmp``).

    Only those whose writer (the pid in the name) no longer runs (``hivectl.host.identity.pid_alive``:
    a zombie has exited, so it counts as gone): a live writer's temp file is its
    own business. The next write of the same file is what collects them (docs/reliability.md).
    """
    import contextlib
    import re

    from hivectl.host.identity import pid_alive

    try:
        entries = os.listdir(path.parent)
    except OSError:
        return
    temp_name = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+\.tmp")
    for entry in entries:
        match = temp_name.fullmatch(entry)
        if match is None or match.group("name") != path.name or pid_alive(int(match.group("pid"))):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(path.parent / entry)


def _make_temp(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp(suffix, prefix, directory)`` without importing tempfile (and its random, shutil
    and their compression modules, which every ``start`` paid for): a new file made with O_EXCL and
    O_NOFOLLOW, mode 0600, named with 12 random hex digits; its descriptor and absolute path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        name = os.path.abspath(os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}"))
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name in {directory}")


def _write_temp(path: Path, data: bytes, mode: int) -> tuple[str, os.stat_result]:
    """``data`` in a new temp file next to ``path`` (named for the writer's pid, so a killed writer's is
    collected), with ``mode``, flushed and fsync'd: the one way both atomic writers below prepare a file."""
    import contextlib

    collect_stale_temps(path)
    fd, tmp = _make_temp(path.parent, f".{path.name}.{os.getpid()}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
            return tmp, os.fstat(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make a new name in ``directory`` (rename, link) durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644, private: bool = False) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename, fsync the directory.

    The mode of an existing file is kept (an administrator may have tightened it). ``private`` takes the
    group and other bits away from whichever mode applies: the file holds a secret.
    """
    import contextlib

    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode & 0o7777
    if private:
        mode &= ~0o077
    tmp, _ = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def atomic_create_bytes(path: Path, data: bytes, mode: int = 0o644) -> tuple[int, int] | None:
    """Create ``path`` holding ``data`` unless something is already there; never replace, never tear.

    For files hivectl offers but an administrator owns once they exist (``init``'s sample templates):
    the data goes to a temp file in the same directory (fsync'd), which is then given the final name with
    link(2). link(2) fails with EEXIST when the name exists, whatever it is (a file the administrator
    wrote meanwhile, a symlink, even a dangling one), so nothing is overwritten or written through, and
    the name appears only with its whole content (link(2), rename(2) in the FreeBSD and Linux manuals).
    Returns the (st_dev, st_ino) of the file made, or None when the name was taken (left as it is).
    """
    import contextlib

    tmp, info = _write_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_directory(path.parent)
    return (info.st_dev, info.st_ino)


def atomic_write(path: Path, data: str, mode: int = 0o644) -> None:
    """``atomic_write_bytes`` for text (UTF-8; undecodable bytes read from a file round-trip unchanged).

    A config that sets ``vnc_password`` is written readable by its owner only, whatever the mode asked for
    or found: guest configs are made from templates, rewritten by ``configure``, ``add`` and sysrc-style
    edits, and every one of those writes comes through here, so none can leave the password readable by
    every local user (vm-bhyve's ``sysrc -f`` writes leave it to the umask).
    """
    atomic_write_bytes(path, data.encode("utf-8", errors="surrogateescape"), mode, holds_secret(data))


class RcFile:
    """An editable config file that keeps every line it does not change.

    ``values`` is what vm-bhyve would read; edits go to ``lines`` and are only written by ``save()``.
    """

    def __init__(self, path: Path, text: str = "") -> None:
        self.path = path
        self.lines: list[str] = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.values: dict[str, str] = parse_text(text)

    @classmethod
    def load(cls, path: Path) -> RcFile:
        """Load ``path``; a missing file starts empty and is created by ``save()``."""
        try:
            text = read_text(path)
        except FileNotFoundError:
            text = ""
        return cls(path, text)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self.values.items())

    def _line_index(self, key: str) -> int | None:
        for index, line in enumerate(self.lines):
            parsed = parse_line(line)
            if parsed is not None and parsed[0] == key:
                return index
        return None

    def set(self, key: str, value: str) -> None:
        """Set ``key`` like ``sysrc -f``: in place if present, appended otherwise."""
        check_key(self.path, key)
        check_value(self.path, key, value)
        new_line = f'{key}="{value}"'
        index = self._line_index(key)
        if index is None:
            self.lines.append(new_line)
        else:
            self.lines[index] = new_line
        self.values = parse_text("\n".join(self.lines))

    def unset(self, key: str) -> bool:
        """Remove every line defining ``key`` (``sysrc -x``); True if something was removed."""
        kept = [line for line in self.lines if (parse_line(line) or ("", ""))[0] != key]
        removed = len(kept) != len(self.lines)
        self.lines = kept
        self.values = parse_text("\n".join(self.lines))
        return removed

    def list_add(self, key: str, word: str) -> None:
        """``sysrc key+=word``: add a word to a space-separated list unless it is already there."""
        words = self.get(key).split()
        if word not in words:
            words.append(word)
        self.set(key, " ".join(words))

    def list_remove(self, key: str, word: str) -> None:
        """``sysrc key-=word``: remove a word from a space-separated list (the key stays, maybe empty)."""
        words = [w for w in self.get(key).split() if w != word]
        self.set(key, " ".join(words))

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    def save(self, mode: int = 0o644) -> None:
        atomic_write(self.path, self.text(), mode)
