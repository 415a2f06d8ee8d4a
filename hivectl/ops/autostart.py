"""Which guests start at boot, and in what order: ``vm_list`` in the host settings file, edited in place.

vm-bhyve (and ``hivectl startall``) start the guests of ``vm_list`` in order, ``vm_delay`` seconds apart.
Users had to edit rc.conf by hand to change it (churchers#335, freebsd#38); ``hivectl autostart`` does it
for them, in the file whose ``vm_list`` wins among those ``hivectl.hostconf.rc_files()`` names (on FreeBSD
/etc/rc.conf, rc.conf.local or rc.conf.d/vm, read in that order), else in the first one (``/etc/rc.conf``
on FreeBSD, ``/etc/hivectl.conf`` on Linux, the first of ``HIVECTL_RC_CONF`` when set), as sysrc(8) does.

That file belongs to the administrator and is *sourced by sh* at boot, so the edit is made the way
``sysrc`` makes it and with more care than a line-based editor would take:

- the file is read with a small sh scanner (quotes, backslashes, comments), so a ``vm_list=`` inside a
  quoted value or a comment is never mistaken for the assignment;
- exactly one plain assignment is rewritten, as ``vm_list="a b c"``; its indentation and trailing comment
  are kept, and so is every other byte of the file. A file without one gets the line appended;
- anything hivectl could only guess at is refused with the file, line and text: a second assignment, an
  assignment that is built from other values (``$vm_list``, ``${...}``, backquotes), ``+=``, one that spans
  lines or is followed by more commands, any other mention of ``vm_list``, an unterminated quote;
- the file is replaced atomically (same directory, fsync, rename) with its mode kept; a symlink is kept and
  its target written;
- the edit is planned from the file as read, then redone under the file's lock (``.rc.conf.lock`` next to
  it, ``hivectl.safety.filelock``) on the file as it is then, with every refusal above re-checked: two
  ``autostart add`` at once both land, and a line an administrator added meanwhile is kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError
from hivectl.hostconf import rc_files
from hivectl.plan import Edited, EditFile, Plan
from hivectl.runtime import guest_state
from hivectl.store import Store

KEY = "vm_list"
_MENTION = re.compile(r"(?<![A-Za-z0-9_])vm_list(?![A-Za-z0-9_])")
_ASSIGNMENT = re.compile(r"([ \t]*)vm_list(\+?=)(.*)", re.DOTALL)
# The one value form rewritten: a single double-quoted, single-quoted or bare word with nothing to expand.
_PLAIN_VALUE = re.compile(r"\"([^\"$`\\]*)\"|'([^']*)'|([^\s\"'$`\\;&|<>()#]*)")
_WORD_START = frozenset(" \t;&|()<>")


@dataclass(frozen=True)
class Statement:
    """One sh command line of the file: where it is, its code, and its trailing comment."""

    first: int  # 0-based line numbers
    last: int
    code: str
    comment: str


def statements(text: str, source: Path) -> list[Statement]:
    """Split sh text into command lines the way sh reads it: quotes and backslash-newlines join lines,
    ``#`` starts a comment only where a word starts. Raises ``ConfigError`` for an unterminated quote."""
    found: list[Statement] = []
    code: list[str] = []
    comment = ""
    quote = ""
    line = first = quote_line = 0
    word_start = True
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            code.append(c)
            if c == "\\" and quote == '"' and i + 1 < n:
                code.append(text[i + 1])
                line += text[i + 1] == "\n"
                i += 2
                continue
            if c == quote:
                quote = ""
            line += c == "\n"
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            code += [c, text[i + 1]]
            line += text[i + 1] == "\n"
            word_start = False
            i += 2
            continue
        if c in "'\"":
            quote, quote_line = c, line
            code.append(c)
            word_start = False
            i += 1
            continue
        if c == "#" and word_start:
            end = text.find("\n", i)
            end = n if end < 0 else end
            comment = text[i:end]
            i = end
            continue
        if c == "\n":
            found.append(Statement(first, line, "".join(code), comment))
            code, comment = [], ""
            line += 1
            first = line
            word_start = True
            i += 1
            continue
        code.append(c)
        word_start = c in _WORD_START
        i += 1
    if quote:
        raise ConfigError(f"{source} line {quote_line + 1}", "quote", quote,
                          "this quote is never closed, so sh cannot read the file; fix it first")
    if code or comment:
        found.append(Statement(first, line, "".join(code), comment))
    return found


@dataclass(frozen=True)
class VmList:
    """``vm_list`` as found in one settings file, with what is needed to rewrite it in place."""

    path: Path
    text: str | None  # None: the file does not exist yet
    words: list[str] = field(default_factory=list)
    line: int | None = None  # the assignment's 0-based line, None when the file has none
    indent: str = ""
    tail: str = ""  # blanks and comment after the value, kept on rewrite

    def render(self, words: Sequence[str]) -> str:
        """The whole file with ``vm_list`` set to ``words``; every other byte unchanged."""
        new_line = f'{self.indent}{KEY}="{" ".join(words)}"{self.tail}'
        text = self.text or ""
        if self.line is None:
            return text + ("\n" if text and not text.endswith("\n") else "") + new_line + "\n"
        lines = text.split("\n")
        lines[self.line] = new_line + ("\r" if lines[self.line].endswith("\r") else "")  # keep CRLF files CRLF
        return "\n".join(lines)


def _refuse(path: Path, statement: Statement, value: str, why: str) -> ConfigError:
    return ConfigError(f"{path} line {statement.first + 1}", KEY, value,
                       f"{why}; hivectl only rewrites one plain vm_list=\"...\" line, so edit the file by hand")


def parse(path: Path, text: str | None) -> VmList:
    """Find the one plain ``vm_list`` assignment of a settings file, or refuse (see the module docstring)."""
    if text is None:
        return VmList(path, None)
    assignments: list[tuple[Statement, re.Match[str]]] = []
    for statement in statements(text, path):
        if not _MENTION.search(statement.code):
            continue
        match = _ASSIGNMENT.fullmatch(statement.code)
        if match is None:
            raise _refuse(path, statement, statement.code.strip(), "vm_list is used here in a way that is not "
                          "a plain assignment")
        if match[2] == "+=":
            raise _refuse(path, statement, match[3].strip(), "vm_list is extended with '+=' here")
        assignments.append((statement, match))
    if len(assignments) > 1:
        where = ", ".join(str(s.first + 1) for s, _ in assignments)
        raise _refuse(path, assignments[1][0], assignments[1][1][3].strip(),
                      f"vm_list is assigned {len(assignments)} times (lines {where}) and sh keeps the last one")
    if not assignments:
        return VmList(path, text)
    statement, match = assignments[0]
    raw = match[3]
    stripped = raw.rstrip(" \t\r")
    value = _PLAIN_VALUE.fullmatch(stripped)
    if value is None:
        if "$" in stripped or "`" in stripped:
            why = "vm_list is built from other values here ($..., ${...} or `...`)"
        else:
            why = "the value is not one plain word, '...' or \"...\" (or more commands follow it)"
        raise _refuse(path, statement, stripped, why)
    if statement.last != statement.first:
        raise _refuse(path, statement, stripped, "the assignment spans several lines")
    words = next(g for g in value.groups() if g is not None).split()
    tail = raw[len(stripped):].rstrip("\r")
    if statement.comment:
        tail = (tail or " ") + statement.comment.rstrip("\r")
    return VmList(path, text, words, statement.first, match[1], tail)


def _read(path: Path) -> str | None:
    """The file's text exactly (no newline translation: a CRLF file must come back CRLF), None if absent."""
    try:
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise HivectlError(f"{path}: cannot read it: {error.strerror}") from None


def load() -> VmList:
    """``vm_list`` of the file hivectl edits: the last of the settings files that mentions ``vm_list``
    (its assignment is the one that wins), else the first file; that is where sysrc(8) writes too
    (``f_sysrc_set`` edits the file of the last assignment and appends to the first file otherwise), so
    a ``vm_list`` kept in /etc/rc.conf.d/vm is edited there."""
    target, text = _holder()
    return parse(target, text)


def _holder() -> tuple[Path, str | None]:
    files = rc_files()
    target, text = files[0], None
    for path in files:
        content = _read(path)
        if content is not None and _MENTION.search("".join(s.code for s in statements(content, path))):
            target, text = path, content
    return target, (text if text is not None else _read(target))


def kept_in() -> Path:
    """The file ``vm_list`` is read from and written to (see ``load``)."""
    return _holder()[0]


def _check_words(path: Path, words: Sequence[str]) -> None:
    for word in words:  # new names are valid guest names; older entries must at least survive double quotes
        if any(c in word for c in '"$`\\'):
            raise ConfigError(path, KEY, word, "this entry would change meaning inside double quotes; "
                                               "edit the file by hand")


def plan_write(found: VmList, change: Callable[[list[str]], list[str]]) -> Plan:
    """Change ``vm_list`` with ``change`` (old words to new); shown as the ``sysrc`` command an
    administrator would type, redone under the file's lock on the file as it is when applied."""
    words = change(list(found.words))
    _check_words(found.path, words)
    target = Path(os.path.realpath(found.path)) if found.path.is_symlink() else found.path

    def edit(text: str | None) -> Edited:
        now = parse(found.path, text)  # every refusal of parse() applies to the file as it is now
        new = change(list(now.words))
        _check_words(found.path, new)
        return Edited(None if new == now.words else now.render(new))

    return Plan([EditFile(target, edit, [["sysrc", "-f", str(found.path), f"{KEY}={' '.join(words)}"]])])


def plan_add(store: Store, names: Sequence[str], position: str | None = None) -> tuple[Plan, list[str]]:
    """Add guests to ``vm_list``: at the end, or from 1-based ``position`` on (moving them if listed).

    Returns the plan (empty when nothing changes) and the names that were already listed and stay put.
    """
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        store.get(name)  # validates the name; a guest that does not exist is an error
    found = load()
    words = found.words
    change: Callable[[list[str]], list[str]]
    if position is None:
        kept = [name for name in wanted if name in words]

        def change(now: list[str]) -> list[str]:
            return now + [name for name in wanted if name not in now]
    else:
        kept = []
        index = validate.integer(None, "--position", position, 1,
                                 len([word for word in words if word not in wanted]) + 1)

        def change(now: list[str]) -> list[str]:
            rest = [word for word in now if word not in wanted]
            at = min(index, len(rest) + 1)  # the list may have shrunk meanwhile
            return rest[: at - 1] + wanted + rest[at - 1 :]
    if change(list(words)) == words:
        return Plan(), kept
    return plan_write(found, change), kept


def plan_remove(names: Sequence[str]) -> tuple[Plan, list[str]]:
    """Remove names from ``vm_list`` (every occurrence). Returns the plan and the names that were not there.

    The guests need not exist any more: a destroyed guest's stale entry must stay removable.
    """
    unwanted = list(dict.fromkeys(validate.guest_name(None, "name", name) for name in names))
    found = load()
    absent = [name for name in unwanted if name not in found.words]
    if len(absent) == len(unwanted):
        return Plan(), absent
    return plan_write(found, lambda now: [word for word in now if word not in unwanted]), absent


@dataclass(frozen=True)
class Entry:
    """One ``vm_list`` entry as ``autostart list`` shows it."""

    order: int
    name: str
    datastore: str | None
    state: str

    def as_json(self) -> dict[str, Any]:
        return {"order": self.order, "name": self.name, "datastore": self.datastore, "state": self.state}


def entries(store: Store) -> list[Entry]:
    """What ``startall`` will start, in order (the settings as hivectl reads them, every file applied).

    Entries that are not guests (a typo, a destroyed guest) are shown as ``missing``: ``startall``
    reports and skips them.
    """
    result = []
    for order, name in enumerate(store.settings.vm_list, 1):
        if not validate.GUEST_NAME_RE.fullmatch(name) or ".." in name:
            result.append(Entry(order, name, None, "invalid name"))
            continue
        ref = store.find(name)
        if ref is None:
            result.append(Entry(order, name, None, "missing"))
            continue
        result.append(Entry(order, name, ref.datastore.name, guest_state(ref.directory, name).label()))
    return result
