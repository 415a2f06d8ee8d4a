"""The guest layout (hivectl/model/layout.py) is the one place a guest's file names are spelt.

The guard test below reads every module of the package and fails when one spells a run-time file name
itself instead of asking the layout: that is how the names had drifted into six modules before.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hivectl.model import layout
from hivectl.model.layout import GuestLayout, is_runtime_file

PACKAGE = Path(layout.__file__).resolve().parent.parent

# Every file name the layout defines, except those that are also ordinary words (a command, a key value,
# the `tpm` key and device kind).
GUARDED = {
    value for key, value in vars(layout).items()
    if key.isupper() and isinstance(value, str) and value not in ("console", "restart", "tpm")
    and key not in ("VIRT_CONSOLE_PREFIX",)
} | set(layout.HYPERVISOR_LOGS)


def _spelt_names(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants (plain or inside f-strings) that are a guarded file name or a path ending in one.

    Prose (a help text saying ``NAME/bhyve.log``) has spaces and is not a path, so it is left alone."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            tail = text.rsplit("/", 1)[-1]
            if text in GUARDED or ("/" in text and not any(c.isspace() for c in text) and tail in GUARDED):
                found.append((node.lineno, text))
    return found


def test_no_module_spells_a_guest_file_name_itself() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(layout.__file__).resolve():
            continue
        for line, text in _spelt_names(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert offenders == [], "use hivectl.model.layout instead of spelling these names:\n" + "\n".join(offenders)


def test_the_guard_finds_a_spelt_name() -> None:
    """The guard must be able to fail: both spellings that were in the code before are caught."""
    tree = ast.parse('a = d / "run.lock"\nb = f"{d}/hivectl.state"\nc = "see the run.lock file"\n')
    assert _spelt_names(tree) == [(1, "run.lock"), (2, "/hivectl.state")]


def test_paths_are_in_the_guest_directory() -> None:
    guest = GuestLayout(Path("/vm/web"))
    assert guest.name == "web"
    assert guest.config == Path("/vm/web/web.conf")
    assert guest.run_lock == Path("/vm/web/run.lock")
    assert guest.suspend == Path("/vm/web/web.save")
    assert guest.hypervisor_log("bhyve") == Path("/vm/web/bhyve.log")
    assert guest.serial_socket("com1", True) == Path("/vm/web/console.sock")
    assert guest.serial_socket("com2", False) == Path("/vm/web/com2.sock")
    assert guest.virt_console("org.qemu.guest_agent.0") == Path("/vm/web/vtcon.org.qemu.guest_agent.0")


def test_a_staging_directory_keeps_the_guest_name() -> None:
    staged = GuestLayout(Path("/vm/.web.restore.x1"), "web")
    assert staged.config == Path("/vm/.web.restore.x1/web.conf")


def test_tmux_session_and_nmdm_follow_vm_bhyve() -> None:
    guest = GuestLayout(Path("/vm/db.prod"))
    assert guest.tmux_session == "db~prod"
    assert guest.nmdm_base(2) == "/dev/nmdm-db.prod.2"


@pytest.mark.parametrize(("dev", "name", "expected"), [
    ("file", "disk0.img", "/vm/web/disk0.img"),
    ("", "disk0.img", "/vm/web/disk0.img"),
    ("zvol", "disk0", "/dev/zvol/tank/vm/web/disk0"),
    ("sparse-zvol", "disk1", "/dev/zvol/tank/vm/web/disk1"),
    ("custom", "/dev/ada1", "/dev/ada1"),
    ("9p", "share=/srv", "share=/srv"),
])
def test_disk_path_follows_vm_bhyve(dev: str, name: str, expected: str) -> None:
    assert GuestLayout(Path("/vm/web"), dataset="tank/vm/web").disk_path(dev, name) == expected


def test_zvol_of_a_directory_guest_has_no_path() -> None:
    with pytest.raises(LookupError, match="not on a ZFS datastore"):
        GuestLayout(Path("/vm/web")).disk_path("zvol", "disk0")


@pytest.mark.parametrize("entry", ["run.lock", ".run.lock.guard", "hivectl.state", "console", "vm-bhyve.log",
                                   "vm-bhyve.log.0.gz", "bhyve.log", "qemu.log", "qmp.sock", "vtcon.com",
                                   "web.save", "seed.iso", "device.map", "bhyve.config", "restart"])
def test_run_time_files_are_not_copied(entry: str) -> None:
    assert is_runtime_file(entry, "web")


@pytest.mark.parametrize("entry", ["web.conf", "disk0.img", "uefi-vars.fd", ".cloud-init", "notes.txt"])
def test_guest_files_are_kept(entry: str) -> None:
    assert not is_runtime_file(entry, "web")


def test_every_run_time_name_the_layout_knows_is_filtered() -> None:
    """A new run-time file added to the layout must also be kept out of clones and backups."""
    guest = GuestLayout(Path("/vm/web"))
    run_time = [guest.run_lock, guest.lock_guard, guest.supervisor_state, guest.last_run, guest.stopping,
                guest.restart_flag, guest.console, guest.vm_log, guest.vm_log_rotated, guest.loader_log,
                guest.bhyve_config, guest.device_map, guest.qmp_socket, guest.qmp_control_socket,
                guest.vnc_socket, guest.console_log, guest.serial_socket("com1", True), guest.suspend,
                guest.hypervisor_log("bhyve"), guest.hypervisor_log("qemu"), guest.virt_console("x")]
    assert [p.name for p in run_time if not guest.is_runtime(p.name)] == []
