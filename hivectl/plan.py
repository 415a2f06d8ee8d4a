"""Plans: ordered host actions, printed by ``--dry-run`` and applied with rollback on failure.

An ``Action`` knows how to show itself as the command an administrator would type (``argv``), how to
apply itself, and, where it makes something new, how to undo itself. ``Plan.apply`` undoes the actions it
already applied, newest first, when a later one fails: a failed ``create`` leaves no half-made guest.

Actions that are cheaper or safer in-process (directories, sparse files, modes, config files) are done in
Python but still shown as their FreeBSD command, so a dry run tells the whole truth.

A plan is made from what the files said when it was made, and applied later. An edit of a config file
that other commands may edit at the same moment is therefore an ``EditFile``: it holds the file's lock
(``hivectl.safety.filelock``), re-reads the file, redoes the edit (and its checks) on what it finds, and
writes, so a concurrent edit is never lost (docs/reliability.md, "Concurrent edits").
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hivectl.host.base import CommandFailed, Host
from hivectl.rcfile import RcFile, atomic_create_bytes, atomic_write
from hivectl.records import field, record
from hivectl.safety.filelock import locked

RETRIES = 4
RETRY_DELAY = 0.25


class Action:
    """One step of a plan."""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def argvs(self) -> list[list[str]]:
        """Every command this step stands for (one for most steps)."""
        return [self.argv()]

    def apply(self, host: Host) -> None:
        raise NotImplementedError

    def undo(self, host: Host) -> None:
        """Reverse ``apply``; the default is that nothing needs undoing."""


@record
class Run(Action):
    """Run a host command; ``undo_argv`` (if given) reverses it after a later failure."""

    command: list[str]
    undo_argv: list[str] | None = None
    input_text: str | None = None
    retry_when: str = ""  # retry (a few times, briefly) when the command's error contains this text

    def argv(self) -> list[str]:
        return list(self.command)

    def apply(self, host: Host) -> None:
        for attempt in range(RETRIES + 1):
            try:
                host.run(self.command, input_text=self.input_text)
                return
            except CommandFailed as error:
                if not self.retry_when or self.retry_when not in error.result.stderr or attempt == RETRIES:
                    raise
                time.sleep(RETRY_DELAY * (attempt + 1))

    def undo(self, host: Host) -> None:
        if self.undo_argv:
            host.run(self.undo_argv, check=False)


def undo_all(done: list[Action], host: Host) -> None:
    """Undo the applied ``done`` actions, newest first, best effort: the error that stopped the apply is
    the one worth reporting, so a failing undo does not hide it."""
    for action in reversed(done):
        try:
            action.undo(host)
        except Exception:  # noqa: S112 - best effort: the original error is what matters
            continue


@record
class MakeDir(Action):
    """Create a directory (and only remove it on undo if this action created it)."""

    path: Path
    mode: int = 0o755
    _made: tuple[int, int] | None = field(default=None, repr=False)  # (st_dev, st_ino) of what mkdir made

    def argv(self) -> list[str]:
        return ["mkdir", "-m", f"{self.mode:o}", str(self.path)]

    def apply(self, host: Host) -> None:
        os.mkdir(self.path, self.mode)
        info = os.lstat(self.path)
        self._made = (info.st_dev, info.st_ino)

    def undo(self, host: Host) -> None:
        """Remove the directory only if it is still the one mkdir made: a directory that was there before
        (mkdir failed), or one renamed into its place since (a published guest), is never removed."""
        if self._made is None:
            return
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == self._made and stat.S_ISDIR(info.st_mode):
            import shutil  # with its compression modules, only for this one action

            shutil.rmtree(self.path, ignore_errors=True)


@record
class SparseFile(Action):
    """Create a new sparse file of ``size`` bytes; refuses to touch an existing file (never lose a disk)."""

    path: Path
    size: int
    size_text: str
    mode: int = 0o600
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return ["truncate", "-s", self.size_text, str(self.path)]

    def apply(self, host: Host) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)
        self._created = True
        try:
            os.ftruncate(fd, self.size)
            os.fchmod(fd, self.mode)
        finally:
            os.close(fd)

    def undo(self, host: Host) -> None:
        if self._created:
            self.path.unlink(missing_ok=True)


@record
class Chmod(Action):
    path: Path
    mode: int

    def argv(self) -> list[str]:
        return ["chmod", f"{self.mode:o}", str(self.path)]

    def apply(self, host: Host) -> None:
        os.chmod(self.path, self.mode)


@record
class WriteFile(Action):
    """Write a whole file atomically. Shown as the equivalent command given by the caller."""

    path: Path
    content: str
    shown_as: list[str]
    mode: int = 0o644
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return list(self.shown_as)

    def apply(self, host: Host) -> None:
        self._created = not self.path.exists()
        atomic_write(self.path, self.content, self.mode)

    def undo(self, host: Host) -> None:
        if self._created:
            self.path.unlink(missing_ok=True)


@record
class CreateFile(Action):
    """Create a file only if its name is free when applied (``hivectl.rcfile.atomic_create_bytes``).

    For files the administrator owns once they exist (sample templates, ``null.iso``): a plan made when
    the name was free may be applied after someone wrote it, and must then leave that file alone. The
    file appears whole or not at all. Undo removes it only if it is still the file this step made.
    """

    path: Path
    content: str
    shown_as: list[str]
    mode: int = 0o644
    _made: tuple[int, int] | None = field(default=None, repr=False)

    def argv(self) -> list[str]:
        return list(self.shown_as)

    def apply(self, host: Host) -> None:
        self._made = atomic_create_bytes(self.path, self.content.encode("utf-8"), self.mode)

    def undo(self, host: Host) -> None:
        if self._made is None:
            return
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == self._made:
            self.path.unlink(missing_ok=True)


@record
class Edited:
    """What an edit makes of a file's current text: the new text and the host steps it needs first."""

    text: str | None  # None: leave the file as it is
    actions: list[Action] = field(default_factory=list)  # applied under the lock, before the write


def read_text(path: Path) -> str | None:
    """A file's text exactly as stored (no newline translation), None when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None


@record
class EditFile(Action):
    """A read-modify-write of a config file that cannot lose a concurrent edit.

    ``edit`` is called under the file's lock with the file's text as it is *now* (None if absent) and
    redoes the change on it, re-checking whatever the change depends on (a switch name still free, the
    next free ``diskN``...): it raises to refuse. The host steps it returns are applied under the same lock
    before the file is written, so a new disk and the config line naming it cannot be split by another
    edit. ``shown`` is the plan-time rendering (the ``sysrc`` commands), computed from the file as it was.

    Undo (a later step of the plan failed) restores the previous text only if the file still holds what
    this step wrote: an edit made by someone else since then is never overwritten.
    """

    path: Path
    edit: Callable[[str | None], Edited]
    shown: list[list[str]]
    mode: int = 0o644
    _written: tuple[str | None, str] | None = field(default=None, repr=False)
    _done: list[Action] = field(default_factory=list, repr=False)

    def argv(self) -> list[str]:
        return list(self.shown[-1]) if self.shown else []

    def argvs(self) -> list[list[str]]:
        return [list(argv) for argv in self.shown]

    def apply(self, host: Host) -> None:
        with locked(self.path):
            before = read_text(self.path)
            result = self.edit(before)
            done: list[Action] = []
            try:
                for action in result.actions:
                    action.apply(host)
                    done.append(action)
                if result.text is not None and result.text != before:
                    atomic_write(self.path, result.text, self.mode)
                    self._written = (before, result.text)
            except BaseException:
                undo_all(done, host)
                raise
            self._done = done

    def undo(self, host: Host) -> None:
        with locked(self.path):
            if self._written is not None and read_text(self.path) == self._written[1]:
                before = self._written[0]
                if before is None:
                    self.path.unlink(missing_ok=True)
                else:
                    atomic_write(self.path, before, self.mode)
            for action in reversed(self._done):
                try:
                    action.undo(host)
                except Exception:  # noqa: S112 - best effort
                    continue


def rc_edit(path: Path, change: Callable[[RcFile], list[Action] | None]) -> Callable[[str | None], Edited]:
    """Adapt a change of an ``RcFile`` (sysrc-style: every other line kept) to ``EditFile``'s ``edit``."""

    def edit(text: str | None) -> Edited:
        rc = RcFile(path, text or "")
        untouched = rc.text()
        actions = change(rc) or []
        return Edited(None if rc.text() == untouched else rc.text(), actions)

    return edit


def config_edit(path: Path, change: Callable[[RcFile], list[Action] | None], shown: list[list[str]],
                mode: int = 0o644) -> EditFile:
    """An ``EditFile`` of a vm-bhyve config file whose change is made on an ``RcFile``."""
    return EditFile(path, rc_edit(path, change), shown, mode)


@record
class Call(Action):
    """An in-process step with an explicit display form (renames, removals)."""

    shown_as: list[str]
    do: Callable[[], None]
    reverse: Callable[[], None] | None = None

    def argv(self) -> list[str]:
        return list(self.shown_as)

    def apply(self, host: Host) -> None:
        self.do()

    def undo(self, host: Host) -> None:
        if self.reverse is not None:
            self.reverse()


@record
class Plan:
    """An ordered list of actions."""

    actions: list[Action] = field(default_factory=list)

    def add(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    def extend(self, actions: Iterable[Action]) -> None:
        self.actions.extend(actions)

    def argvs(self) -> list[list[str]]:
        """The commands of the plan, in order (a step may stand for several)."""
        return [argv for action in self.actions for argv in action.argvs()]

    def lines(self) -> list[str]:
        """The dry-run rendering: one JSON array of strings per command."""
        return [json.dumps(argv) for argv in self.argvs()]

    def apply(self, host: Host) -> None:
        """Apply every action in order; on failure undo the applied ones (newest first) and re-raise."""
        done: list[Action] = []
        try:
            for action in self.actions:
                action.apply(host)
                done.append(action)
        except BaseException:
            undo_all(done, host)
            raise


def render(argvs: Sequence[Sequence[str]]) -> list[str]:
    """Render bare argv lists the way plans render (for plans assembled elsewhere)."""
    return [json.dumps(list(a)) for a in argvs]
