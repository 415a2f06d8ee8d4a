"""Hostile input (issue 10, "values are values"): what the command line and the key table accept.

The edge checks and ``init`` first; the property-based test of every key and every command-line value
is below them.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from hivectl.cli.main import main
from tests.cli_helpers import hivectl

BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def run_main(*argv: str) -> tuple[int, str, str]:
    """``hivectl ARGV`` in this process: (status, stdout, stderr); any exception escapes (a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("bad", [*BREAKS, "\0", "\udcff"])
@pytest.mark.parametrize("argv", [["create", "-s", "1M", "g{}"], ["tags", "add", "g", "prod{}"],
                                  ["set", "compress=xz{}"], ["datastore", "add", "lan", "/tmp/x{}"]])
def test_nul_line_breaks_and_non_utf8_are_refused_at_the_edge(vmdir: Path, argv: list[str], bad: str) -> None:
    """Before the edge check, ``set compress=xz<U+2028>`` was written into system.conf (one key for
    vm-bhyve's sh, two lines for Python's splitlines) and ``create`` with a NUL ended in a traceback."""
    before = sorted(p.name for p in vmdir.rglob("*"))
    status, out, err = run_main(*[word.format(bad) for word in argv])
    assert status == 2, (status, out, err)
    assert err.count("\n") == 1 and err.startswith("hivectl: command line: argument "), err
    assert "cannot contain" in err or "UTF-8" in err
    assert sorted(p.name for p in vmdir.rglob("*")) == before


def test_a_line_break_in_a_real_argv_is_one_line_exit_2(vmdir: Path) -> None:
    done = hivectl("tags", "add", "g", "a\u2028b")
    assert done.status == 2 and done.err.count("\n") == 1, done.err
    assert "a line separator (U+2028)" in done.err


def test_init_does_not_restore_samples_the_admin_deleted(vmdir: Path) -> None:
    """vm-bhyve's ``vm init`` (lib/vm-util, util::setup) copies only default.conf, and only when it is
    missing; hivectl copies its samples once, when .templates is created. Before the fix every ``init``
    (run at each boot by rc.d) brought every deleted sample back."""
    templates = vmdir / ".templates"
    assert (templates / "debian.conf").is_file() and (templates / "windows.conf").is_file()
    (templates / "debian.conf").unlink()
    (templates / "windows.conf").unlink()
    (templates / "default.conf").unlink()
    (templates / "mine.conf").write_text('loader="uefi"\n')
    assert run_main("init")[0] == 0
    assert not (templates / "debian.conf").exists() and not (templates / "windows.conf").exists()
    assert (templates / "default.conf").is_file()  # as vm-bhyve: a plain 'create' keeps working
    assert (templates / "mine.conf").read_text() == 'loader="uefi"\n'
    status, out, _ = run_main("init", "--dry-run")
    assert status == 0 and "templates" not in out


def test_init_copies_every_sample_into_a_new_templates_directory(vmdir: Path) -> None:
    templates = vmdir / ".templates"
    for path in templates.iterdir():
        path.unlink()
    templates.rmdir()
    assert run_main("init")[0] == 0
    assert {"default.conf", "debian.conf", "windows.conf"} <= {p.name for p in templates.iterdir()}
