"""Guest tags (vm-bhyve 1.8 ``vm tags``): the space-separated guest key ``tags``.

Tags are labels for grouping guests (``hivectl list -t prod``, ``hivectl tags find prod``). They live in
the guest's own config file, so vm-bhyve sees the same tags. Edits behave like ``sysrc -f FILE tags+=``
and ``tags-=``: a tag is added once, removing an absent tag changes nothing, and every other line of the
file is kept. Only the tags being added are validated: an odd tag written by hand (or by an older
vm-bhyve with its longer names) can still be removed.

Unlike vm-bhyve, ``find`` matches whole tags (vm-bhyve's ``grep -w`` also finds ``web`` in ``web-prod``)
and reads each config file once instead of running ``sysrc`` per guest.

An edit is planned from the file as read, and applied as an ``EditFile``: under the config's lock the file
is read again and the same tags are added to (or removed from) what it holds then, so two ``tags add`` at
once both land (docs/reliability.md, "Concurrent edits").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError
from hivectl.ops.listing import Row, list_guests
from hivectl.plan import Plan, config_edit
from hivectl.rcfile import RcFile
from hivectl.store import GuestRef, Store

KEY = "tags"


def check_tags(tags: Sequence[str]) -> list[str]:
    """Validate tags given on the command line: vm-bhyve holds tags to its guest-name rule, hivectl to its own
    (letters, digits, '.', '_', '-'), so a tag never carries anything a shell or the file format reads."""
    return [validate.name(None, "tag", tag, "tag") for tag in tags]


def _load(ref: GuestRef) -> RcFile:
    try:
        return RcFile.load(ref.conf_path)
    except OSError as error:  # e.g. a 0600 config (it holds a VNC password) read by a non-root user
        raise HivectlError(f"{ref.conf_path}: cannot read it: {error.strerror}") from None


def current(ref: GuestRef) -> list[str]:
    """The guest's tags as vm-bhyve reads them (first ``tags=`` line, split at blanks)."""
    return _load(ref).get(KEY).split()


def _adding(wanted: list[str]) -> Callable[[list[str]], list[str]]:
    return lambda words: words + [tag for tag in wanted if tag not in words]


def _removing(unwanted: list[str]) -> Callable[[list[str]], list[str]]:
    return lambda words: [w for w in words if w not in unwanted]


def _plan(ref: GuestRef, conf: RcFile, change: Callable[[list[str]], list[str]]) -> Plan:
    """A sysrc-style rewrite of ``tags``, shown as the ``sysrc`` command that would make it from ``conf``
    and redone on the file's current text when applied."""

    def apply(rc: RcFile) -> None:
        words = rc.get(KEY).split()
        new = change(words)
        if new != words:
            rc.set(KEY, " ".join(new))

    value = " ".join(change(conf.get(KEY).split()))
    return Plan([config_edit(ref.conf_path, apply, [["sysrc", "-f", str(ref.conf_path), f"{KEY}={value}"]])])


def plan_add(ref: GuestRef, tags: Sequence[str]) -> tuple[Plan, list[str]]:
    """Add tags after the ones the guest has (order kept, no duplicates).

    Returns the plan (empty when there is nothing to add) and the tags the guest already had.
    """
    wanted = list(dict.fromkeys(check_tags(tags)))
    conf = _load(ref)
    words = conf.get(KEY).split()
    present = [tag for tag in wanted if tag in words]
    if len(present) == len(wanted):
        return Plan(), present
    return _plan(ref, conf, _adding(wanted)), present


def plan_remove(ref: GuestRef, tags: Sequence[str]) -> tuple[Plan, list[str]]:
    """Remove tags; returns the plan (empty when there is nothing to do) and the tags the guest did not have.

    The words are not held to the tag rules: a tag written by hand or by vm-bhyve (whose names may be
    longer) must stay removable. They only have to be single words, as every tag in the file is.
    """
    for tag in tags:
        if not tag or any(c.isspace() for c in tag):
            raise ConfigError(None, "tag", tag, "a tag is one word (tags are separated by blanks)")
    unwanted = list(dict.fromkeys(tags))
    conf = _load(ref)
    words = conf.get(KEY).split()
    absent = [tag for tag in unwanted if tag not in words]
    if len(absent) == len(unwanted):
        return Plan(), absent
    return _plan(ref, conf, _removing(unwanted)), absent


def find(store: Store, tag: str) -> list[Row]:
    """Every guest carrying ``tag`` exactly, across datastores, in ``list`` order."""
    validate.name(None, "tag", tag, "tag")
    return list_guests(store, tag=tag)
