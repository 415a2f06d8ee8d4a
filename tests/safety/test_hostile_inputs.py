"""Hostile input (issue 10, "values are values"): what the command line and the key table accept.

The edge checks and ``init`` first; the property-based test of every key and every command-line value
is below them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivectl.cli.main import main
from hivectl.model.keys import KEYS
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


def test_a_carriage_return_in_a_config_value_is_refused_not_read_as_a_line_end(vmdir: Path) -> None:
    """Found by the property test below: Python's text mode read ``uefi_vars="0<CR>yes"`` as ``0`` (a lone
    CR taken for a line end) while vm-bhyve's sh reader sees ``0<CR>yes``; ``start`` then booted without
    the UEFI variables the admin's file asked vm-bhyve for. Read as sh reads it, the value is refused."""
    assert run_main("create", "-s", "1M", "v")[0] == 0
    conf = vmdir / "v" / "v.conf"
    with open(conf, "w", newline="") as handle:
        handle.write('loader="uefi"\ncpu="1"\nmemory="256M"\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
                     'uefi_vars="0\ryes"\n')
    status, _out, err = run_main("--driver", "bhyve", "start", "--dry-run", "v")
    assert status == 1 and "uefi_vars='0\\ryes': values cannot contain a carriage return" in err, err


@pytest.mark.parametrize("guard", ["bhyve_token", "bhyve_config_value", "qemu_value"])
def test_the_renderers_last_guards_do_not_quote_the_value(guard: str) -> None:
    """They see VNC passwords (fbuf ``password=``, the ``-k`` file, QEMU's secret): before, a password that
    reached one with a line break was quoted in the error line, on stderr, in ``info`` and in the log."""
    from hivectl.safety import values

    with pytest.raises(values.OptionInjection) as caught:
        getattr(values, guard)("s3cr3t-Pw\u2028,x")
    assert "s3cr3t" not in str(caught.value)


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


# -- the property-based test ---------------------------------------------------------------------------------
#
# Hostile values are built as PREFIX + FRAGMENT + SUFFIX: the prefix a value the key accepts, the fragment
# one of the separators, line breaks, expansions, scope ids, paths and huge numbers below. Injected option
# names carry the sentinel ``zzinj``, so a value that escaped into an option of its own shows up as a
# configuration key named ``zzinj`` in the re-parsed argv. The same value without its fragment ("clean") is
# planned too: when both are accepted, the re-parsed options must have the same names.

SENTINEL = "zzinj"
FRAGMENTS = [
    ",zzinj=1", ",zzinj", ",,zzinj=1", "=zzinj", ":zzinj", ";zzinj=1", " zzinj=1", " -s 29,zzinj", "\tzzinj",
    "%(zzinj)", "\\,zzinj=1", "\\", "%", "\0", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029",
    "%zzinj", "%em0,zzinj=1", "%1", "/../../zzinj", "../zzinj", "{outside}/zzinj", "{outside}/passwd", "/",
    "9" * 30, "99999999999999999999G", "18446744073709551616", "9223372036854775808", "-1", "0", "1e3",
    "\u0663", "\u216b", "0x10", "", " ", "=", ",", ":", ";", "rfb=0.0.0.0:5999", "path=/etc/passwd",
    "file={outside}/passwd", "mountpoint=/etc", "${IFS}", "$(id)", "`id`", "'", "*", "~",
]
# Keys whose purpose is to pass raw words through (vm-bhyve's escape hatches): they may add options by
# design; they are still fed hostile values (no traceback, no line break reaches argv) but not sentinel-checked.
RAW_KEYS = {"bhyve_options", "bhyveload_args", "qemu_append", "grub_install0", "grub_run0", "grub_run_partition",
            "grub_run_dir", "grub_run_file", "virt_console0", "limit_rbps", "limit_wbps", "limit_riops",
            "limit_wiops"}
SAMPLES = {
    "loader": "uefi", "uefi_vars": "yes", "bhyveload_loader": "/boot/userboot.so", "loader_timeout": "3",
    "cpu": "2", "cpu_sockets": "1", "cpu_cores": "2", "cpu_threads": "1", "memory": "512M", "hostbridge": "amd",
    "fwcfg": "qemu", "comports": "com1 com2", "uuid": "0b1c7f5e-6a53-11ef-8f0d-589cfc000001", "start_slot": "4",
    "disk0_type": "nvme", "disk0_name": "disk0.img", "disk0_dev": "file", "disk0_opts": "sectorsize=512",
    "disk0_size": "1G", "disk0_slot": "0:7:0", "network0_type": "e1000", "network0_switch": "public",
    "network0_device": "tap7", "network0_name": "tapx", "network0_mac": "58:9c:fc:00:12:34",
    "network0_mtu": "1500", "network0_slot": "9", "passthru0": "2/0/0", "passthru0_options": "rom=x.rom",
    "graphics_port": "5901", "graphics_listen": "::1", "graphics_res": "1024x768",
    "graphics_wait": "no", "graphics_vga": "io", "vnc_password": "pw", "sound_play": "/dev/dsp0",
    "zfs_dataset_opts": "compression=lz4", "tpm": "swtpm", "tpm_path": "swtpm.sock", "cpu_pin": "0:1",
    "tags": "prod", "prestart": "/usr/local/bin/pre", "priority": "5", "fault_limit": "5",
    "on_restart": "restart", "qemu_kernel": "vmlinuz", "qemu_initrd": "initrd.img",
}
EXTRA_SAMPLES = {"graphics_listen": ["127.0.0.1", "fe80::1", "0.0.0.0"], "disk0_name": ["planted.img", "/dev/zvol/x"],
                 "disk0_opts": ["ro", "nocache,direct"], "passthru0_options": ["bootindex=1"],
                 "tpm_path": ["/dev/tpm0"], "vnc_password": ["a b", "p%w"], "network0_switch": ["lan"]}
BASE_GUEST = {"loader": "uefi", "cpu": "1", "memory": "256M", "graphics": "yes", "vnc_password": "pw",
              "network0_type": "virtio-net", "network0_switch": "public", "disk0_type": "virtio-blk",
              "disk0_name": "disk0.img", "uuid": "0b1c7f5e-6a53-11ef-8f0d-589cfc000001",
              "network0_mac": "58:9c:fc:00:00:01"}

QEMU_ARG_OPTIONS = {"-machine", "-cpu", "-name", "-uuid", "-smp", "-m", "-rtc", "-display", "-action", "-chardev",
                    "-mon", "-device", "-drive", "-netdev", "-object", "-vnc", "-overcommit", "-kernel", "-initrd",
                    "-append", "-fsdev", "-audiodev", "-tpmdev", "-boot", "-bios", "-global", "-serial",
                    "-fw_cfg", "-smbios", "-pidfile"}
QEMU_FLAGS = {"-nodefaults", "-no-user-config", "-S", "-no-reboot", "-no-shutdown", "-enable-kvm"}
QEMU_PLAIN = {"-uuid", "-kernel", "-initrd", "-append", "-pidfile", "-bios"}  # one value, not an option list
# QemuOpts groups whose first element may be a bare value (its "implied" option name, qemu-options.hx).
QEMU_IMPLIED = {"-device", "-chardev", "-netdev", "-machine", "-name", "-smp", "-m", "-object", "-audiodev",
                "-fsdev", "-tpmdev", "-vnc", "-display", "-cpu", "-mon", "-serial", "-boot"}


def qemu_opts(text: str) -> list[tuple[str, str | None]]:
    """Split a QemuOpts string as QEMU does (util/qemu-option.c): ``,`` separates, ``,,`` is a comma."""
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == ",":
            if text.startswith(",,", i):
                current.append(",")
                i += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    items.append("".join(current))
    result: list[tuple[str, str | None]] = []
    for item in items:
        name, sep, value = item.partition("=")
        result.append((name, value if sep else None))
    return result


def qemu_structure(argv: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Every option of a QEMU argv with the names of its sub-options; fails on anything QEMU would misread."""
    assert argv[0].startswith("qemu-system-"), argv
    words = argv[1:]
    shape: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(words):
        option = words[i]
        assert not any(ch in option for ch in "\0\n"), option
        if option in QEMU_FLAGS:
            shape.append((option, ()))
            i += 1
            continue
        assert option in QEMU_ARG_OPTIONS, f"unknown or injected QEMU option {option!r} in {argv}"
        assert i + 1 < len(words), f"{option} has no argument"
        value = words[i + 1]
        assert "\0" not in value and not any(b in value for b in BREAKS), (option, value)
        if option in QEMU_PLAIN:
            shape.append((option, ()))
        else:
            opts = qemu_opts(value)
            implied = option in QEMU_IMPLIED and opts[0][1] is None
            names = [n for n, _ in (opts[1:] if implied else opts)]
            assert len(names) == len(set(names)), f"{option} {value!r}: a sub-option is given twice"
            assert all(SENTINEL not in n for n in names), f"{option} {value!r}: a value became an option"
            assert all(n for n in names), f"{option} {value!r}: an empty sub-option name"
            shape.append((option, tuple(sorted(names))))
        i += 2
    return shape


def bhyve_structure(argv: list[str], k_text: str | None, scratch: Path) -> tuple[list[str], dict[str, str]]:
    """Re-parse a planned bhyve argv with the simulated bhyve's own parser (tests/simhost/bhyve.py); return
    the configuration paths it set and their values as bhyve reads them. The ``-k`` file is the text hivectl
    would write."""
    from tests.simhost import bhyve
    from tests.simhost.common import ToolExit

    assert argv[0] == "bhyve", argv
    args = list(argv[1:])
    if "-k" in args:
        assert k_text is not None, "a -k file in argv but none planned"
        kfile = scratch / "bhyve.config"
        kfile.write_text(k_text)
        args[args.index("-k") + 1] = str(kfile)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser = bhyve.parse(args, "14")
    except (ToolExit, SystemExit) as exc:
        raise AssertionError(f"bhyve refuses the planned argv {argv}: {err.getvalue().strip()} ({exc})") from None
    paths: list[str] = []
    seen: dict[str, str] = {}

    def walk(node: dict[str, object], prefix: str) -> None:
        for key, val in node.items():
            assert SENTINEL not in key, f"a value became the bhyve option {prefix}{key}: {argv} / {k_text!r}"
            if isinstance(val, dict):
                walk(val, f"{prefix}{key}.")
            else:
                assert isinstance(val, str)
                assert not any(b in val for b in [*BREAKS, "\0"]), (key, val)
                expanded = parser.cfg.value(f"{prefix}{key}")
                if k_text is None or f"{prefix}{key}=" not in k_text:
                    # a value from argv reaches the device as written: no %(var) expansion, no \ escape
                    assert expanded == val, f"bhyve would expand {prefix}{key}={val!r} to {expanded!r}"
                paths.append(f"{prefix}{key}")
                seen[f"{prefix}{key}"] = expanded or ""

    walk(parser.cfg.tree, "")
    return sorted(paths), seen


@pytest.fixture
def fast(host: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The simulated host with its stand-ins run inside this process (``SimHost.call``: the same code as
    the ``bin/`` wrappers, without an interpreter start per command), a guest ``g``, and a watched tree
    ``outside`` (with a symlink to it planted in the guest directory) that no input may change."""
    from hivectl.host.base import CommandFailed, Result
    from hivectl.host.local import LocalHost
    from hivectl.plan import WriteFile
    from tests.simhost.fixture import IN_PROCESS

    real_run = LocalHost.run

    def run(self: LocalHost, argv: Any, *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Any = None) -> Result:
        args = [str(a) for a in argv]
        if args and args[0] in IN_PROCESS and args[0] != "bhyve" and env is None:
            done = host.call(args, input=input_text)
            result = Result(tuple(args), done.returncode, done.stdout, done.stderr)
            if check and done.returncode != 0:
                raise CommandFailed(result)
            return result
        return real_run(self, argv, check=check, input_text=input_text, timeout=timeout, env=env)

    monkeypatch.setattr(LocalHost, "run", run)
    written: dict[str, str] = {}
    real_argv = WriteFile.argv

    def argv_of(self: WriteFile) -> list[str]:  # a dry run shows a WriteFile: keep what it would write
        written[self.path.name] = self.content
        return real_argv(self)

    monkeypatch.setattr(WriteFile, "argv", argv_of)
    host.written = written
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "passwd").write_text("root:*:0:0::/root:/bin/sh\n")
    host.outside = outside
    status, _, err = run_main("create", "-s", "1M", "g")
    assert status == 0, err
    (host.vm_dir / "g" / "planted.img").symlink_to(outside / "passwd")
    (host.vm_dir / "g" / "disk0.img").write_bytes(b"")
    host.scratch = tmp_path / "scratch"
    host.scratch.mkdir()
    monkeypatch.chdir(host.scratch)  # relative paths ("../x") resolve here, inside the watched tmp_path
    return host


def watched(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root`` with size, mode and (for links) target: writes there are findings."""
    result = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        target = os.readlink(path) if path.is_symlink() else ""
        result[str(path.relative_to(root))] = (st.st_size, st.st_mode, target)
    return result


def one_line_or_ok(status: int, err: str, what: str) -> None:
    """Success (notes on stderr allowed), or failure as exactly one ``hivectl: ...`` line."""
    assert status in (0, 1, 2), (what, status, err)
    assert "Traceback" not in err, (what, err)
    if status != 0:
        assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("hivectl: "), (what, err)


Shapes = dict[str, Any]


def plan_shapes(fast: Any, values: dict[str, str] | None, reparse: bool = True, name: str = "g") -> Shapes:
    """Write the guest config (unless None), plan ``start`` with both drivers and re-parse each argv."""
    if values is not None:
        conf = fast.vm_dir / name / f"{name}.conf"
        conf.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    before = watched(fast.outside), watched(fast.vm_dir)
    shapes: Shapes = {}
    for driver in ("bhyve", "qemu"):
        fast.written.clear()
        try:
            status, out, err = run_main("--driver", driver, "start", "--dry-run", name)
        except Exception as error:  # a traceback: the finding itself
            raise AssertionError(f"{driver} start --dry-run with {values}: {error!r}") from error
        one_line_or_ok(status, err, f"{driver} {values}")
        if SENTINEL in values.get("vnc_password", "") if values else False:
            assert SENTINEL not in out + err, f"{driver}: the VNC password was shown: {out + err}"
        assert (watched(fast.outside), watched(fast.vm_dir)) == before, f"{driver}: a dry run changed files"
        if status != 0 or not reparse:
            shapes[driver] = None
            continue
        argvs = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
        # the hypervisor's line: for bhyve the last ``bhyve`` one (the limits' rctl lines follow it), seen
        # through ``jexec JAIL`` when a jail key was drawn (jail="yes999..." is an administrator's jail name)
        unjailed = [a[2:] if a[:1] == ["jexec"] and len(a) > 2 else a for a in argvs]
        argv = next((a for a in reversed(unjailed) if a[:1] == ["bhyve"]), argvs[-1]) if driver == "bhyve" \
            else argvs[-1]
        if driver == "bhyve":
            shapes[driver] = bhyve_structure(argv, fast.written.get("bhyve.config"), fast.scratch)
        else:
            shapes[driver] = (qemu_structure(argv), fast.written.get(".vnc-secret"))
    return shapes


def fragment_values(key: str) -> st.SearchStrategy[tuple[str, str]]:
    """(hostile value, the same value without its fragment) for ``key``."""
    sample = SAMPLES.get(key, "yes")
    prefixes = [sample, "", *EXTRA_SAMPLES.get(key, [])]
    fragments = st.sampled_from(FRAGMENTS) | st.text(alphabet=",=:;%\\ \t\0\r\x0b\x85\u2028/.-09azGM[]", max_size=6)
    return st.tuples(st.sampled_from(prefixes), fragments, st.sampled_from(["", sample, "x", "1"])).map(
        lambda parts: (parts[0] + parts[1] + parts[2], parts[0] + parts[2]))


def _file_value(value: str, outside: Path) -> str:
    """What a config file can hold: the reader deletes '"', cuts at '#' and ends a line at a newline."""
    return value.replace("{outside}", str(outside)).replace('"', "").replace("#", "").replace("\n", "")


KEY_NAMES = [spec.pattern.replace("N", "0") for spec in KEYS]
KEY_EXAMPLES = 150
# Fed to every key after each of its samples: one per way a value could become an option.
SWEEP = [",zzinj=1", ",,zzinj=1", "%(zzinj)", "\\,zzinj=1", " -s 29,zzinj", "%em0,zzinj=1", "\u2028zzinj=1",
         "\rzzinj=1", "\0"]


# Without one of bhyve's or QEMU's separators (',', '=', '%', '\\', blanks, control characters), a value
# cannot add an option; it can only be another valid value (disk0_slot="90:7:0" for "0:7:0" puts the disk
# on bus 90, for which hivectl rightly adds -Y), so its options are not compared with the clean value's.
PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-+/")


def _plain(value: str) -> bool:
    return set(value) <= PLAIN


def check_key_value(fast: Any, key: str, hostile: str, clean: str) -> None:
    """Plan with ``key=hostile``: no traceback, no write, no added option; the options of ``key=clean``."""
    shapes = plan_shapes(fast, {**BASE_GUEST, key: hostile}, reparse=key not in RAW_KEYS)
    if key in RAW_KEYS:
        return
    if hostile != clean and any(shapes.values()) and not _plain(hostile):
        reference = plan_shapes(fast, {**BASE_GUEST, key: clean})
        for driver, shape in shapes.items():
            if shape is not None and reference[driver] is not None:
                assert shape[0] == reference[driver][0], f"{driver}: {key}={hostile!r} has other options than " \
                                                         f"{key}={clean!r}"
    bhyve = shapes["bhyve"]
    if key == "vnc_password" and bhyve is not None:
        assert hostile in bhyve[1].values(), f"bhyve would not read back the password {hostile!r}"
    if key == "vnc_password" and shapes["qemu"] is not None:
        assert shapes["qemu"][1] == hostile


def test_every_key_against_every_way_to_add_an_option(fast: Any) -> None:
    """The systematic part: each key of the key table, each sample value, each fragment of SWEEP."""
    for key in KEY_NAMES:
        for sample in [SAMPLES.get(key, "yes"), *EXTRA_SAMPLES.get(key, [])]:
            for fragment in SWEEP:
                check_key_value(fast, key, _file_value(sample + fragment, fast.outside), sample)


@settings(max_examples=KEY_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_key_value_adds_an_option_or_a_traceback(fast: Any, data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(KEY_NAMES), label="key")
    hostile, clean = data.draw(fragment_values(key), label="value")
    hostile, clean = _file_value(hostile, fast.outside), _file_value(clean, fast.outside)
    check_key_value(fast, key, hostile, clean)


# Every command-line value of the commands that take one; H is the hostile value.
COMMAND_LINES = [
    ["create", "-s", "H", "g2"], ["create", "-c", "H", "-s", "1M", "g2"], ["create", "-m", "H", "-s", "1M", "g2"],
    ["create", "-t", "H", "-s", "1M", "g2"], ["create", "-d", "H", "-s", "1M", "g2"], ["create", "-s", "1M", "H"],
    ["add", "-d", "disk", "-s", "H", "g"], ["add", "-d", "network", "-s", "H", "g"],
    ["set", "compress=H"], ["set", "console=H"], ["set", "H=1"],
    ["switch", "create", "-t", "H", "s1"], ["switch", "create", "-i", "H", "s1"],
    ["switch", "create", "-n", "H", "-i", "em0", "s1"], ["switch", "create", "-t", "manual", "-b", "H", "s1"],
    ["switch", "create", "-m", "H", "s1"], ["switch", "create", "-a", "H", "s1"], ["switch", "create", "H"],
    ["datastore", "add", "H", "{outside}/etc"], ["datastore", "add", "ds", "H"],
    ["tags", "add", "g", "H"], ["tags", "remove", "g", "H"], ["rename", "g", "H"],
    ["disk", "resize", "g", "disk0", "H"], ["disk", "resize", "g", "H", "2M"],
    ["autostart", "add", "--position", "H", "g"],
    ["clone", "g", "H"], ["destroy", "H"], ["info", "H"], ["start", "--dry-run", "H"],
]
ARG_EXAMPLES = 200


def _snapshot(fast: Any, where: Path) -> None:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    shutil.copytree(fast.vm_dir, where / "vm", symlinks=True)
    shutil.copy2(fast.root / "state.json", where / "state.json")
    shutil.copy2(fast.rc, where / "rc.conf")


def _restore(fast: Any, where: Path) -> None:
    shutil.rmtree(fast.vm_dir)
    shutil.copytree(where / "vm", fast.vm_dir, symlinks=True)
    shutil.copy2(where / "state.json", fast.root / "state.json")
    shutil.copy2(where / "rc.conf", fast.rc)


def _arg_value(outside: Path) -> st.SearchStrategy[str]:
    samples = st.sampled_from(["1M", "2", "512M", "default", "public", "lan", "xz", "em0", "10", "1500",
                               "10.0.0.1/24", "fd00::1/64", "prod", "g3", "1", "nmdm", str(outside)])
    fragments = st.sampled_from(FRAGMENTS) | st.text(alphabet=",=:;%\\ \t\r\x0b\x85\u2028/.-09azGM[]", max_size=6)
    return st.tuples(samples | st.just(""), fragments, st.sampled_from(["", "1", "x", "G"])).map(
        lambda parts: "".join(parts).replace("{outside}", str(outside)))


@settings(max_examples=ARG_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_command_line_value_adds_an_option_a_traceback_or_a_write_outside(fast: Any, data: st.DataObject) -> None:
    template = data.draw(st.sampled_from(COMMAND_LINES), label="command")
    value = data.draw(_arg_value(fast.outside), label="value")
    argv = [value if word == "H" else word.replace("{outside}", str(fast.outside)) for word in template]
    saved = fast.scratch.parent / "saved"
    _snapshot(fast, saved)
    outside_before = watched(fast.outside)
    # beside vm_dir: rc.conf and its lock file (.rc.conf.lock) are the only things a command may add there
    around = {p.name for p in fast.vm_dir.parent.iterdir() if "rc.conf" not in p.name}
    try:
        try:
            status, _out, err = run_main(*argv)
        except Exception as error:  # a traceback: the finding itself
            raise AssertionError(f"hivectl {argv}: {error!r}") from error
        one_line_or_ok(status, err, f"{argv}")
        assert watched(fast.outside) == outside_before, f"hivectl {argv} wrote outside vm_dir"
        beside = {p.name for p in fast.vm_dir.parent.iterdir() if "rc.conf" not in p.name}
        assert beside == around, f"hivectl {argv} made files beside vm_dir"
        if status == 0:
            for name in ("g", "g2", value):
                conf = fast.vm_dir / name / f"{name}.conf"
                if name and "/" not in name and conf.is_file() and not conf.is_symlink():
                    plan_shapes(fast, None, name=name)
    finally:
        _restore(fast, saved)
