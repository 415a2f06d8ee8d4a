"""Plans: ordered host actions, printed by ``--dry-run`` and applied with rollback on failure.

An ``Action`` knows how to show itself as the command an administrator would type (``argv``), how to
apply itself, and, where it makes something new, how to undo itself. ``Plan.apply`` undoes the actions it
already applied, newest first, when a later one fails: a failed ``create`` leaves no half-made guest.

Actions that are cheaper or safer in-process (directories, sparse files, modes, config files) are done in
Python but still shown as their FreeBSD command, so a dry run tells the whole truth.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.host.base import CommandFailed, Host
from hivectl.rcfile import atomic_write

RETRIES = 4
RETRY_DELAY = 0.25


class Action:
    """One step of a plan."""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def apply(self, host: Host) -> None:
        raise NotImplementedError

    def undo(self, host: Host) -> None:
        """Reverse ``apply``; the default is that nothing needs undoing."""


@dataclass
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


@dataclass
class MakeDir(Action):
    """Create a directory (and only remove it on undo if this action created it)."""

    path: Path
    mode: int = 0o755
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return ["mkdir", "-m", f"{self.mode:o}", str(self.path)]

    def apply(self, host: Host) -> None:
        os.mkdir(self.path, self.mode)
        self._created = True

    def undo(self, host: Host) -> None:
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)


@dataclass
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


@dataclass
class Chmod(Action):
    path: Path
    mode: int

    def argv(self) -> list[str]:
        return ["chmod", f"{self.mode:o}", str(self.path)]

    def apply(self, host: Host) -> None:
        os.chmod(self.path, self.mode)


@dataclass
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


@dataclass
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


@dataclass
class Plan:
    """An ordered list of actions."""

    actions: list[Action] = field(default_factory=list)

    def add(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    def extend(self, actions: Iterable[Action]) -> None:
        self.actions.extend(actions)

    def lines(self) -> list[str]:
        """The dry-run rendering: one JSON array of strings per action."""
        return [json.dumps(action.argv()) for action in self.actions]

    def apply(self, host: Host) -> None:
        """Apply every action in order; on failure undo the applied ones (newest first) and re-raise."""
        done: list[Action] = []
        try:
            for action in self.actions:
                action.apply(host)
                done.append(action)
        except BaseException:
            for action in reversed(done):
                try:
                    action.undo(host)
                except Exception:  # noqa: S112 - best effort: the original error is what matters
                    continue
            raise


def render(argvs: Sequence[Sequence[str]]) -> list[str]:
    """Render bare argv lists the way plans render (for plans assembled elsewhere)."""
    return [json.dumps(list(a)) for a in argvs]
