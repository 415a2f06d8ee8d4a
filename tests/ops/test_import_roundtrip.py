"""``hivectl import`` round trip: every golden bhyve command line, imported, then ``start --dry-run``.

For every boot of every golden case (tests/bhyve/cases.py, the lines in tests/bhyve/golden/), the bhyve
command line and its loader line as hivectl plans them are imported as a new guest into another vm_dir on
the simulated FreeBSD host, and that guest's ``start --dry-run`` must give an equivalent command line.

Equivalence is judged here independently of hivectl's own comparison: both bhyve command lines are read
by the simulated bhyve's option parser (tests/simhost/bhyve.py, bhyve's config tree) and compared key by
key, after the normalisations docs/import.md lists that can apply to hivectl's own lines: files hivectl
keeps in the guest's directory (virtio-console sockets, the UEFI variable store) are compared by name only,
because the imported guest's directory is another one. The loader lines must be equal word for word except
for the device map and grub directory, which live in the guest's directory too.

Every line has its expected outcome. ``REFUSED`` lists the line that is refused on purpose (docs/import.md,
"The golden line that does not round-trip"): the VALE and netgraph NICs of ``backends``; it must be refused
with those words. ``INSTALLS`` lists the 10 first install boots of the grub guests (``-r cd0`` or a grub.cfg
with ``root=cd0``): each must import with the medium it boots reported and kept out of the config, and its
round trip is ``hivectl install --dry-run NAME ISO``; every other line must import and plan back with
``start --dry-run``. So a new refusal fails the test, an install line imported as a plain guest (or a plain
line taken for an installer) fails it, and so does a table entry that names no line.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.api import Hivectl
from hivectl.context import Context
from hivectl.importer.words import ImportRefused
from hivectl.ops.importer import ImportRequest, plan_import
from tests.bhyve.cases import all_cases
from tests.bhyve.harness import Boot, Case, Env, driver_for, plan_boot
from tests.bhyve.test_simhost import Provider
from tests.simhost import bhyve as sim_bhyve
from tests.simhost.fixture import SimHost

CASES = [(case, boot) for case in all_cases() for boot in case.boots]
REFUSED = {"backends-run": "argument 9: '-s 0:5:1,virtio-net,vale1a2b3:4c5d6"}
# The first install boot of each grub guest: the medium the line boots (relative to the original vm_dir).
INSTALLS = {"template-alpine-install": ".iso/install.iso", "template-arch-install": ".iso/install.iso",
            "template-centos-install": ".iso/install.iso", "template-debian-install": ".iso/install.iso",
            "template-netbsd-install": ".iso/install.iso", "template-openbsd-install": ".iso/install.iso",
            "template-ubuntu-install": ".iso/install.iso", "grub-commands-install": ".iso/debian.iso",
            "grub-commands-install from an image": ".img/x.raw", "grub-no-partition-install": ".iso/cloud.iso"}


def line_id(case: Case, boot: Boot) -> str:
    return f"{case.name}-{boot.label}"


def test_every_entry_of_the_tables_names_a_golden_line() -> None:
    """An entry that matches no line (a renamed case or boot) would silently expect nothing."""
    ids = [line_id(case, boot) for case, boot in CASES]
    assert set(REFUSED) <= set(ids) and set(INSTALLS) <= set(ids), set(REFUSED) | set(INSTALLS) - set(ids)
    assert len(CASES) == 62 and len(REFUSED) == 1 and len(INSTALLS) == 10


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """FreeBSD limits UNIX socket paths (virtio-console, swtpm) to 103 bytes: keep the vm_dir short."""
    path = Path(tempfile.mkdtemp(prefix="hvi", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def default_mac(slot: str, func: str, name: str) -> str:
    """What bhyve gives a NIC without mac= (usr.sbin/bhyve/net_utils.c, net_genmac)."""
    digest = hashlib.md5(f"{slot}-{func}-{name}".encode(), usedforsecurity=False).digest()
    return "00:a0:98:" + ":".join(f"{b:02x}" for b in digest[:3])


def tree(argv: list[str], guest_dir: Path) -> dict[str, str]:
    """The keys bhyve would build from ``argv``, files in ``guest_dir`` shown by their name, COM ports by
    their name only (docs/import.md: hivectl puts them on its nmdm pairs), NICs with the MAC bhyve uses."""
    parser = sim_bhyve.parse(argv[1:], "14")
    out = {}
    lines = parser.cfg.dump()
    name = next(line.partition("=")[2] for line in lines if line.startswith("name="))
    for line in lines:
        key, _, value = line.partition("=")
        nic = re.fullmatch(r"pci\.0\.([0-9]+)\.([0-9]+)\.device", key)
        if nic and value in ("virtio-net", "e1000"):
            out.setdefault(key[:-len("device")] + "mac", default_mac(nic.group(1), nic.group(2), name))
        if re.fullmatch(r"lpc\.com[1-4]\.path", key):
            value = "COM"
        own = key.endswith("bootvars") or (re.fullmatch(r"pci\.[0-9.]+\.port\.[0-9]+\.path", key) and \
            Path(value).name.startswith("vtcon."))
        if value.startswith(str(guest_dir) + "/") and own:
            value = "GUEST/" + value[len(str(guest_dir)) + 1:]
        out[key] = value
    return out


def loader_words(argv: list[str]) -> list[str]:
    """The loader line without its console (hivectl's, or none in the foreground) and, for grub-bhyve,
    without the device map's and grub.cfg's paths (they are the guest directory's)."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "-c" or (argv[0] == "grub-bhyve" and word in ("-m", "-d")):
            next(words)
            continue
        out.append(word)
    return out


def _files(planned: object, loader: list[str], bhyve: list[str]) -> None:
    """The loader's device.map and grub.cfg, and a -k file, where the original run had them."""
    if getattr(planned, "device_map", None) is not None:
        path = Path(loader[loader.index("-m") + 1])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(planned.device_map)  # type: ignore[attr-defined]
    if getattr(planned, "grub_cfg", None) is not None:
        path = Path(loader[loader.index("-d") + 1]) / "grub.cfg"
        path.write_text(planned.grub_cfg)  # type: ignore[attr-defined]
    for word in bhyve:
        if word.startswith("bootrom,") and word.count(",") >= 2:  # the guest's UEFI variable store
            vars_file = Path(word.split(",")[2])
            vars_file.parent.mkdir(parents=True, exist_ok=True)
            vars_file.write_bytes(b"\0" * (128 << 10))
    if bhyve[1:2] == ["-k"]:
        Path(bhyve[2]).parent.mkdir(parents=True, exist_ok=True)
        Path(bhyve[2]).write_text(planned.config_text)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("case", "boot"), CASES, ids=[f"{c.name}-{b.label.replace(' ', '_')}" for c, b in CASES])
def test_golden_command_line_imports_and_plans_back(case: Case, boot: Boot, simhost: SimHost, short_tmp: Path) -> None:
    src, dst = short_tmp / "h", short_tmp / "vm"
    # uefi-custom boots <the guest's datastore>/.config/BHYVE_UEFI.fd: the guest made by hand used the
    # datastore it is imported into (its disks are zvols, so nothing of it is in that directory).
    env = Env(src, dst if case.name == "uefi-custom" else src / "z", simhost.root)
    driver, _ = driver_for(env)
    original = plan_boot(driver, case, env, boot)
    bhyve, loader = original.boot.hypervisor, original.boot.loader
    (src / case.guest).mkdir(parents=True)
    _files(original, loader, bhyve)
    Provider(simhost).provide(original)  # the disks, taps, firmware and sockets the line names
    dst.mkdir(exist_ok=True)
    hv = Hivectl(vm_dir=dst)
    hv.init()
    refused = REFUSED.get(line_id(case, boot))
    if refused:
        with pytest.raises(ImportRefused, match=re.escape(refused)):
            hv.import_guest(bhyve=shlex.join(bhyve), loader=shlex.join(loader) if loader else None)
        return
    ctx = Context(None, str(dst))  # what the import reports (the API returns its plan only)
    result = plan_import(ctx.host, ctx.store, ImportRequest(shlex.join(bhyve), shlex.join(loader) if loader else None))
    hv.import_guest(bhyve=shlex.join(bhyve), loader=shlex.join(loader) if loader else None)
    medium = INSTALLS.get(line_id(case, boot))
    if medium is None:
        assert result.install_media is None, result.notes
        plan = hv.start(case.guest, dry_run=True)
    else:
        iso = str(src / medium)
        assert result.install_media == iso
        assert result.notes[0].startswith(f"this line boots an installer: run `hivectl install {case.guest} {iso}`")
        assert iso not in result.config and Path(medium).name not in result.config, result.config
        plan = hv.install(case.guest, iso, dry_run=True)
    runs = [step for step in plan if step[0] == "bhyve"]
    assert len(runs) == 1, plan
    again = runs[0]
    if again[1:2] == ["-k"]:  # the dry run does not write the -k file: plan it in-process to read it
        imported_env = Env(dst, dst, simhost.root)
        text = (dst / case.guest / f"{case.guest}.conf").read_text()
        mine = plan_boot(driver_for(imported_env)[0], Case(case.name, "", text), imported_env, Boot("run"))
        Path(again[2]).write_text(mine.config_text)
    assert tree(again, dst / case.guest) == tree(bhyve, (env.zfs_dir if case.zfs else src) / case.guest)
    loaders = [step for step in plan if step[0] in ("bhyveload", "grub-bhyve")]
    assert [loader_words(a) for a in loaders] == ([loader_words(loader)] if loader else [])
