"""The ``simhost`` pytest fixture: a fresh simulated FreeBSD host per test.

Each test gets its own root (so tests run in parallel), the stand-ins first on ``PATH``, and the
environment hivectl reads (``HIVECTL_PLATFORM=freebsd``, ``HIVECTL_DRIVER=bhyve``, ``HIVECTL_HOST_ROOT``
= ``SIMHOST_ROOT``). The returned :class:`SimHost` lets a test look at the host (state, running VMs,
interfaces, datasets, loader runs), act as the guest (``exit_guest``) and change the host (``edit``,
``set_sysctl``, ``set_release``...). At teardown every bhyve stand-in still running for the root is
killed, so a failing test does not leave processes behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import common, kld, state, zfs
from .common import pid_alive

BIN_DIR = Path(__file__).resolve().parent / "bin"
FIRMWARE = {
    "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd": 2 << 20,
    "/usr/local/share/uefi-firmware/BHYVE_UEFI_CSM.fd": 2 << 20,
    "/usr/local/share/uefi-firmware/BHYVE_UEFI_CODE.fd": (2 << 20) - (128 << 10),
    "/usr/local/share/uefi-firmware/BHYVE_UEFI_VARS.fd": 128 << 10,
}
BOOT_FILES = ["/boot/userboot.so", "/boot/userboot_4th.so", "/boot/userboot_lua.so"]
DEVICE_NODES = ["/dev/cam/ctl", "/dev/null", "/dev/random", "/dev/tpm0"]


def create_host(root: Path, ncpu: int = 4, release: str = "14", pool: str = "zroot") -> None:
    """Lay out a new simulated host under ``root`` (also usable outside pytest, e.g. by scripts)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("dev/vmm", "dev/zvol", "control", "usr/local/share/uefi-firmware", "boot"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for path, size in FIRMWARE.items():
        target = root / path.lstrip("/")
        with open(target, "wb") as fh:
            fh.write(b"_FVH" + b"\0" * 12)
            fh.truncate(size)
    for path in BOOT_FILES + DEVICE_NODES:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    data = state.default_state(root, ncpu=ncpu, release=release)
    for module in state.DEFAULT_MODULES:
        kld.load_into(data, module)
    if pool:
        zfs.add_pool(data, pool, root / pool)
    state.write_json(root / state.STATE_FILE, data)


# command -> (module, function) for SimHost.call()
IN_PROCESS = {
    "bhyve": ("bhyve", "main"), "bhyvectl": ("bhyvectl", "main"), "bhyveload": ("bhyveload", "main"),
    "grub-bhyve": ("grub_bhyve", "main"), "ifconfig": ("ifconfig", "main"), "sysctl": ("sysctl", "main"),
    "kldstat": ("kld", "_kldstat"), "kldload": ("kld", "_kldload"), "kldunload": ("kld", "_kldunload"),
    "zfs": ("zfs", "main"), "zpool": ("zfs", "zpool"), "pciconf": ("pciconf", "main"),
    "truncate": ("truncate", "main"), "pfctl": ("pfctl", "main"), "acpidump": ("acpidump", "main"),
    "jail": ("jails", "jail_main_args"), "jls": ("jails", "jls_args"), "devfs": ("jails", "devfs_args"),
    "rctl": ("rctl", "main"), "swtpm": ("swtpm", "main"),
}


class SimHost:
    """Handle on one simulated host; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = BIN_DIR
        self._procs: list[subprocess.Popen[str]] = []

    # -- looking at the host ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The whole state document (parsed JSON)."""
        return state.load(self.root)

    def commands(self) -> list[list[str]]:
        """Every command the stand-ins received as processes since the last ``clear_commands``, in order
        (program base name first; see ``common.record_command``)."""
        try:
            text = (self.root / common.COMMANDS_FILE).read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line]

    def clear_commands(self) -> None:
        (self.root / common.COMMANDS_FILE).unlink(missing_ok=True)

    def running(self) -> dict[str, dict[str, Any]]:
        """Running bhyve stand-ins by VM name (records of dead processes are left out)."""
        out = {}
        for name, rec in self.state().get("running", {}).items():
            if pid_alive(int(rec["pid"]), rec.get("starttime")):
                out[name] = rec
        return out

    def interfaces(self) -> dict[str, dict[str, Any]]:
        """ifconfig's view: name -> record (kind, flags, mtu, description, groups, members...)."""
        return dict(self.state()["interfaces"])

    def datasets(self) -> dict[str, dict[str, Any]]:
        """ZFS datasets and snapshots by name."""
        return dict(self.state()["datasets"])

    def loader_runs(self) -> list[dict[str, Any]]:
        """Every bhyveload/grub-bhyve run: tool, argv, VM name, exit status, time."""
        return list(self.state().get("loader_runs", []))

    def jails(self) -> dict[str, dict[str, Any]]:
        """Jails by name: jid, path, parameters, mounts, devfs (mount point and ruleset), attached processes."""
        return {rec["name"]: rec for rec in self.state().get("jails", {}).values()}

    def jail_sees(self, jail: str, device: str) -> bool:
        """Whether a process in ``jail`` sees ``/dev/...`` node ``device`` through the jail's devfs ruleset."""
        from . import jails

        record = self.jails()[jail]
        if record.get("devfs") is None:
            return False
        return jails.node_visible(self.state(), int(record["devfs"]["ruleset"]), device.removeprefix("/dev/"))

    def path(self, freebsd_path: str) -> Path:
        """Where a FreeBSD path lives here (``/dev/vmm/x`` -> ``<root>/dev/vmm/x``; others unchanged)."""
        if freebsd_path.startswith(("/dev/", "/usr/local/share/", "/boot/")):
            return self.root / freebsd_path.lstrip("/")
        return Path(freebsd_path)

    def vm_exists(self, name: str) -> bool:
        """Whether ``/dev/vmm/NAME`` exists."""
        return self.path(f"/dev/vmm/{name}").exists()

    # -- acting as the guest or the administrator ------------------------------------------------------

    def exit_guest(self, name: str, status: int) -> None:
        """Make the guest of VM ``name`` end: 0 reboot, 1 power-off, 2 halt, 3 triple fault, 4 error."""
        control = self.root / "control"
        control.mkdir(exist_ok=True)
        tmp = control / f".{name}.exit.tmp"
        tmp.write_text(f"{status}\n")
        os.replace(tmp, control / f"{name}.exit")

    def loader_exit(self, name: str, status: int) -> None:
        """Make the next bhyveload/grub-bhyve run for ``name`` exit with ``status``."""
        (self.root / "control" / f"{name}.loader_exit").write_text(f"{status}\n")

    def set_guest_acpi(self, name: str, mode: str) -> None:
        """How the guest answers SIGTERM: ``poweroff`` (default), ``ignore``, or ``off`` (killed)."""
        if mode not in ("poweroff", "ignore", "off"):
            raise ValueError(mode)
        (self.root / "control" / f"{name}.acpi").write_text(mode + "\n")

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Change the state directly (under the lock), e.g. to add interfaces or PCI devices."""
        with state.transaction(self.root) as data:
            yield data

    def set_sysctl(self, name: str, value: str | int) -> None:
        """Set any sysctl value (read-only ones included: they are boot-time tunables)."""
        with self.edit() as data:
            data["sysctl"][name] = str(value)

    def swtpms(self) -> dict[str, dict[str, Any]]:
        """Running swtpm stand-ins by pid: start time, control socket, state directory."""
        return {pid: rec for pid, rec in self.state().get("swtpm", {}).items()
                if pid_alive(int(pid), rec.get("starttime"))}

    def rctl_rules(self) -> list[str]:
        """The rctl(8) rules the kernel holds now (those of exited processes gone), as ``rctl`` lists them."""
        from . import rctl

        with self.edit() as data:
            return [rctl.render(rule) for rule in rctl.live(data)]

    def set_acpi_tables(self, signatures: list[str]) -> None:
        """The firmware's ACPI tables ``acpidump -t`` shows (``DMAR`` present: the host has VT-d)."""
        with self.edit() as data:
            data["acpi_tables"] = list(signatures)

    def set_snapshot_build(self, enabled: bool = True) -> None:
        """A bhyve and bhyvectl built WITH_BHYVE_SNAPSHOT (``bhyve -r``, ``bhyvectl --checkpoint/--suspend``);
        off by default, as in FreeBSD's release builds."""
        with self.edit() as data:
            data["snapshot"] = bool(enabled)

    def set_release(self, release: str) -> None:
        """``14`` or ``15``: which FreeBSD behaviour bhyve follows where they differ."""
        if release not in ("14", "15"):
            raise ValueError(release)
        with self.edit() as data:
            data["release"] = release

    def unload_module(self, filename: str) -> None:
        """Unload a kernel module file (``vmm``, ``nmdm``...) without kldunload's checks."""
        with self.edit() as data:
            data["kld"]["loaded"] = [e for e in data["kld"]["loaded"] if e["file"] != filename + ".ko"]

    def add_interface(self, name: str, kind: str = "ether", inet: list[str] | None = None, mtu: int = 1500,
                      **fields: Any) -> dict[str, Any]:
        """Add a physical-looking interface (``em1``, ``igb0``...) with ``inet`` like ``["10.0.0.5/24"]``.

        Extra ``fields`` go into the record as they are (``description``, ``groups``, ``max_mtu``...).
        """
        with self.edit() as data:
            index = int(data.get("next_ifindex", len(data["interfaces"]) + 1))
            data["next_ifindex"] = index + 1
            record: dict[str, Any] = {
                "name": name, "kind": kind, "index": index, "cloner": None, "unit": 0,
                "flags": ["UP", "BROADCAST", "RUNNING", "SIMPLEX", "MULTICAST"], "mtu": mtu, "max_mtu": 9216,
                "description": "", "groups": [], "ether": f"00:0c:29:5a:{index // 256:02x}:{index % 256:02x}",
                "inet": [{"addr": a.split("/")[0], "prefixlen": int(a.split("/")[1]) if "/" in a else 24}
                         for a in (inet or [])],
                "inet6": [], "auto_linklocal": True,
            }
            record.update(fields)
            data["interfaces"][name] = record
        return record

    def add_pci_device(self, driver: str, unit: int, bus: int, slot: int, func: int = 0,
                       **fields: Any) -> None:
        """Add a PCI device (``driver="ppt"`` makes it available for passthrough)."""
        with self.edit() as data:
            record = {"driver": driver, "unit": unit, "domain": 0, "bus": bus, "slot": slot, "func": func,
                      "class": 0x020000, "rev": 1, "hdr": 0, "vendor": 0x8086, "device": 0x1521,
                      "subvendor": 0x8086, "subdevice": 0x0001, "vendor_name": "Intel Corporation",
                      "device_name": "I350 Gigabit Network Connection", "class_name": "network",
                      "subclass": "ethernet"}
            record.update(fields)
            data["pci"].append(record)

    def add_pool(self, name: str, size: int = 100 << 30) -> Path:
        """Another pool with a real mountpoint ``<root>/<name>``; returns the mountpoint."""
        mountpoint = self.root / name
        with self.edit() as data:
            zfs.add_pool(data, name, mountpoint, size)
        return mountpoint

    # -- running commands --------------------------------------------------------------------------------

    def run(self, argv: list[str], input: str | None = None, timeout: float = 30,
            cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command (found on the stand-in PATH) and capture its output as text."""
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              check=False)

    def call(self, argv: list[str], input: str | None = None,
             cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
        """Like :meth:`run` but inside this process (no interpreter start-up): for table-driven checks.

        The tool's ``main`` runs with stdin/stdout/stderr redirected and the same environment. Only for
        commands that end by themselves: a bhyve that would start a guest raises RuntimeError instead.
        """
        import importlib
        import io

        from . import bhyve, common

        module_name, func_name = IN_PROCESS[argv[0]]
        func = getattr(importlib.import_module(f"{__package__}.{module_name}"), func_name)
        out, err = io.StringIO(), io.StringIO()
        saved = (sys.stdin, sys.stdout, sys.stderr, os.getcwd())
        sys.stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()))
        sys.stdout, sys.stderr = out, err
        bhyve.IN_OWN_PROCESS = False
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                status = common.run(func, list(argv[1:]))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
        finally:
            bhyve.IN_OWN_PROCESS = True
            sys.stdin, sys.stdout, sys.stderr = saved[:3]
            os.chdir(saved[3])
        return subprocess.CompletedProcess(list(argv), status, out.getvalue(), err.getvalue())

    def start(self, argv: list[str], cwd: str | os.PathLike[str] | None = None) -> subprocess.Popen[str]:
        """Start a command in the background (a bhyve); it is killed at teardown if still running."""
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=cwd)
        self._procs.append(proc)
        return proc

    def wait_running(self, name: str, proc: subprocess.Popen[str] | None = None,
                     timeout: float = 10) -> dict[str, Any]:
        """Wait until VM ``name`` has a running bhyve; fails early if ``proc`` exits instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self.running().get(name)
            if rec is not None:
                return rec
            if proc is not None and proc.poll() is not None:
                _out, err = proc.communicate()
                raise AssertionError(f"bhyve for {name} exited with {proc.returncode}: {err.strip()}")
            time.sleep(0.02)
        raise AssertionError(f"bhyve for {name} did not start within {timeout}s")

    def close(self) -> None:
        """Kill every bhyve and swtpm stand-in still running for this root and reap our children."""
        try:
            records = [*self.state().get("running", {}).values(), *self.swtpms().values()]
        except (OSError, SystemExit, ValueError):
            records = []
        for rec in records:
            if pid_alive(int(rec["pid"]), rec.get("starttime")):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(rec["pid"]), signal.SIGKILL)
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)


def pycache_dir(base: Path) -> str | None:
    """Where the stand-ins may cache compiled modules when the environment forbids writing .pyc.

    With ``PYTHONDONTWRITEBYTECODE`` every stand-in would recompile its modules on each run (about
    25 ms). The wrappers honour ``SIMHOST_PYCACHE`` (a cache outside the repository, so no
    ``__pycache__`` appears in the tree). None when Python may write bytecode normally.
    """
    if not sys.dont_write_bytecode:
        return None
    return str(base / "simhost-pycache")


def python_link(tmp_path: Path) -> Path | None:
    """A directory with ``python3`` linked to this interpreter, or None inside a virtualenv.

    The stand-ins start with ``#!/usr/bin/env -S python3 -S`` (no ``site``: they need nothing outside the
    standard library and this repository, and every installed package's .pth files would run on each of
    the suite's thousands of stand-in commands); behind a launcher shim (pyenv) that costs
    about 0.1 s per command, which adds up over a test suite. Outside a virtualenv the link is the same
    interpreter the shim would pick. Inside one it is left out: a link would lose the venv's packages.
    """
    if sys.prefix != sys.base_prefix:
        return None
    where = tmp_path / "simhost-python"
    where.mkdir(exist_ok=True)
    link = where / "python3"
    if not link.exists():
        link.symlink_to(sys.executable)
    return where


_PYCACHE: dict[str, str | None] = {}


def enter_simulated_host(base: Path, mp: pytest.MonkeyPatch) -> Path:
    """Make a simulated host under ``base/simhost`` and point this process's environment at it (the stand-ins
    first on PATH, the platform and driver), as :func:`simhost` does for one test; for fixtures shared by a
    whole module (a daemon whose start costs seconds), which pass their own ``MonkeyPatch.context()``.
    Returns the host's root."""
    root = base / "simhost"
    create_host(root)
    fast = python_link(base)
    mp.setenv("PATH", os.pathsep.join([str(BIN_DIR), *([str(fast)] if fast else []), os.environ["PATH"]]))
    for key in ("SIMHOST_ROOT", "HIVECTL_HOST_ROOT"):
        mp.setenv(key, str(root))
    mp.setenv("HIVECTL_PLATFORM", "freebsd")
    mp.setenv("HIVECTL_DRIVER", "bhyve")
    return root


@pytest.fixture
def simhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHost]:
    """A fresh simulated FreeBSD host; see :class:`SimHost`."""
    root = tmp_path / "simhost"
    if "prefix" not in _PYCACHE:  # once per session (the conftest exports only this fixture)
        _PYCACHE["prefix"] = pycache_dir(tmp_path_factory.getbasetemp())
    if _PYCACHE["prefix"] is not None:
        monkeypatch.setenv("SIMHOST_PYCACHE", _PYCACHE["prefix"])
    create_host(root)
    search = [str(BIN_DIR)]
    fast = python_link(tmp_path)
    if fast is not None:
        search.append(str(fast))
    monkeypatch.setenv("PATH", os.pathsep.join([*search, os.environ.get("PATH", "")]))
    monkeypatch.setenv("SIMHOST_ROOT", str(root))
    monkeypatch.setenv("HIVECTL_HOST_ROOT", str(root))
    monkeypatch.setenv("HIVECTL_PLATFORM", "freebsd")
    monkeypatch.setenv("HIVECTL_DRIVER", "bhyve")
    host = SimHost(root)
    try:
        yield host
    finally:
        host.close()
