"""The table of every guest configuration key hivectl understands, with its check and meaning.

This is the single source of truth for guest keys: validation, ``hivectl help keys`` and the docs all
come from it. It is assembled from the keys of the guest itself (below: loader, CPU, memory, supervision,
hooks: keys that belong to no device) and the keys each device declares in its module of
hivectl/model/devices/, found by scanning that package, so a new device adds no line here. Keys follow
vm-bhyve (its sample-templates/config.sample and vm.8); keys hivectl adds are marked ``hivectl=True``.
Numbered keys (``disk0_type``, ``network1_mac``) are written with ``N`` in ``pattern``.
Unknown keys are not errors: they are kept in the file untouched, because other tools (or a newer
vm-bhyve) may own them.
"""

from __future__ import annotations

from hivectl import patterns, validate
from hivectl.errors import ConfigError
from hivectl.model import devices
from hivectl.model.keyspec import KeySpec, Source, any_text, boolean, choice, integer, path, zfs_properties
from hivectl.model.limits import check_amount
from hivectl.model.modules import submodules
from hivectl.safety import values


def _tags(source: Source, key: str, value: str) -> None:
    for tag in value.split():
        validate.name(source, key, tag, "tag")


def _owner(source: Source, key: str, value: str) -> None:
    validate.account(source, key, value, "user")


def _group(source: Source, key: str, value: str) -> None:
    validate.account(source, key, value, "group")


def _mem(source: Source, key: str, value: str) -> None:
    validate.memory(source, key, value)


def _cpu(source: Source, key: str, value: str) -> None:
    validate.cpu_count(source, key, value)


def _uuid(source: Source, key: str, value: str) -> None:
    validate.uuid(source, key, value)


def _cpu_pin(source: Source, key: str, value: str) -> None:
    """``vcpu:hostcpu`` pairs for bhyve ``-p`` (a vCPU may be listed again to allow several host CPUs)."""
    for pair in value.split():
        match = patterns.fullmatch(r"([0-9]{1,5}):([0-9]{1,4})", pair)
        if not match or int(match.group(1)) > 65534 or int(match.group(2)) > 1023:
            raise ConfigError(source, key, value, f"expected space-separated vcpu:hostcpu pairs like '0:2 1:3' "
                                                  f"(host CPU 0-1023), not {pair!r}")
    if not value.split():
        raise ConfigError(source, key, value, "expected space-separated vcpu:hostcpu pairs like '0:2 1:3'")


def _jail(source: Source, key: str, value: str) -> None:
    """``auto``, ``none`` or a jail name jail(8) accepts (not a number: that is a jid)."""
    if value in ("auto", "none"):
        return
    if not patterns.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}", value) or value.isdigit():
        raise ConfigError(source, key, value, "expected auto, none or the name of a jail (letters, digits, "
                                              "'_', '-', '.'; not a number)")


LOADERS = ("bhyveload", "grub", "uefi", "uefi-csm", "uefi-devel", "uefi-custom")

GUEST_KEYS: tuple[KeySpec, ...] = (
    KeySpec("loader", choice(*LOADERS), "how the guest boots: bhyveload, grub, uefi, uefi-csm, uefi-devel, "
            "uefi-custom"),
    KeySpec("uefi_vars", boolean, "keep UEFI variables in NAME/uefi-vars.fd (a per-guest copy)", "no"),
    KeySpec("bhyveload_loader", path, "path given to bhyveload -l"),
    KeySpec("bhyveload_args", any_text, "extra bhyveload arguments (split at spaces)"),
    KeySpec("loader_timeout", integer(0, 3600), "seconds the boot loader menu waits", "3"),
    KeySpec("cpu", _cpu, "number of virtual CPUs"),
    KeySpec("cpu_sockets", integer(1, 65535), "CPU sockets (topology for -c)"),
    KeySpec("cpu_cores", integer(1, 65535), "cores per socket"),
    KeySpec("cpu_threads", integer(1, 65535), "threads per core"),
    KeySpec("memory", _mem, "guest memory (512M, 2G; a bare number is MiB)"),
    KeySpec("wired_memory", boolean, "wire guest memory (-S); forced by passthru", "no"),
    KeySpec("utctime", boolean, "keep the guest RTC in UTC (-u)", "yes"),
    KeySpec("debug", boolean, "keep bhyve's stderr in NAME/bhyve.log", "no"),
    KeySpec("uuid", _uuid, "SMBIOS system UUID (-U); generated at create"),
    KeySpec("bhyve_options", any_text, "raw extra bhyve options, split at spaces (escape hatch)"),
    KeySpec("ignore_bad_msr", boolean, "documented by vm-bhyve but never read; -w is always passed"),
    KeySpec("ignore_msr", boolean, "ignore unimplemented MSRs (an extra w)"),
    KeySpec("start_slot", integer(1, 30), "first PCI slot for disks", "4"),
    KeySpec("grub_installN", any_text, "grub command for install boots"),
    KeySpec("grub_runN", any_text, "grub command for normal boots"),
    KeySpec("grub_run_partition", any_text, "grub root partition (1, msdos1, gpt2)", "1"),
    KeySpec("grub_run_no_partition", boolean, "grub root is the whole disk (hd0)"),
    KeySpec("grub_run_dir", any_text, "directory holding the guest's grub.cfg"),
    KeySpec("grub_run_file", any_text, "name of the guest's grub.cfg"),
    KeySpec("zfs_dataset_opts", zfs_properties, "properties for the guest dataset (ZFS datastores)"),
    KeySpec("prestart", path, "program run before every boot (args: NAME and the guest directory; cwd: the "
            "guest directory; its exit status is logged, not fatal)"),
    KeySpec("priority", integer(0, 20), "nice value of the hypervisor process"),
    KeySpec("jail", _jail, "run bhyve in a jail: auto (a jail hivectl-NAME made for each run, devfs showing only "
            "this guest's devices) or the name of a running jail with allow.vmm (docs/jails.md)", "none",
            hivectl=True),
    KeySpec("limit_pcpu", integer(1, 100000), "CPU limit, percent of one CPU (rctl pcpu:deny on FreeBSD, as "
            "vm-bhyve; cgroup cpu.max on Linux)"),
    KeySpec("limit_rbps", check_amount, "read bytes/s limit (10M; rctl readbps:throttle, cgroup io.max rbps)"),
    KeySpec("limit_wbps", check_amount, "write bytes/s limit (rctl writebps:throttle, cgroup io.max wbps)"),
    KeySpec("limit_riops", check_amount, "read operations/s limit (rctl readiops:throttle, cgroup io.max riops)"),
    KeySpec("limit_wiops", check_amount, "write operations/s limit (rctl writeiops:throttle, cgroup io.max wiops)"),
    KeySpec("limit_memory", check_amount, "memory limit of the hypervisor process (2G; rctl vmemoryuse:deny, "
            "cgroup memory.max)", hivectl=True),
    KeySpec("on_restart", choice("restart", "stop", "shutdown"), "what a guest reboot does", "restart"),
    KeySpec("on_fault", choice("restart", "stop", "shutdown"), "what a crash (exit 3 and up) does",
            "shutdown"),
    KeySpec("fault_limit", integer(0, 1000), "restarts after faults within 60 s before the supervisor gives up", "5",
            hivectl=True),
    KeySpec("fault_backoff", integer(0, 300), "seconds before the first restart after a fault (doubles, max 30)",
            "1", hivectl=True),
    KeySpec("tags", _tags, "space-separated tags"),
    KeySpec("owner", _owner, "user who may start, stop, snapshot and use the console of the guest (the operator "
            "role on /guests/NAME, docs/security.md)", hivectl=True),
    KeySpec("group", _group, "group whose members hold the operator role on the guest (docs/security.md)",
            hivectl=True),
    KeySpec("cpu_pin", _cpu_pin, "pin vCPUs to host CPUs: space-separated vcpu:hostcpu pairs (-p)", hivectl=True),
    KeySpec("qemu_kernel", path, "qemu driver only: boot this kernel directly (-kernel; relative to the guest "
            "directory)", hivectl=True),
    KeySpec("qemu_initrd", path, "qemu driver only: initrd for qemu_kernel (-initrd)", hivectl=True),
    KeySpec("qemu_append", any_text, "qemu driver only: kernel command line for qemu_kernel (-append)", hivectl=True),
)


def device_keys() -> tuple[KeySpec, ...]:
    """The ``KEYS`` of every module of hivectl/model/devices/, in module-name order."""
    found: list[KeySpec] = []
    for module in submodules(devices.__name__, devices.__path__):
        found += module.KEYS
    return tuple(found)


def assemble() -> tuple[KeySpec, ...]:
    """The whole table: the guest's own keys, then the devices'; a pattern declared twice is an error."""
    table = (*GUEST_KEYS, *device_keys())
    seen: set[str] = set()
    for spec in table:
        if spec.pattern in seen:
            raise ValueError(f"guest key {spec.pattern!r} is declared twice (hivectl/model/devices/)")
        seen.add(spec.pattern)
    return table


KEYS: tuple[KeySpec, ...] = assemble()

# vm-bhyve keys that are read and validated (so configs round-trip and stay valid) but have no effect yet:
# starting a guest that sets one logs a warning instead of silently doing less than vm-bhyve did.
UNSUPPORTED: tuple[str, ...] = ()



class _Index:
    """Lookups over one table: exact names, then the numbered patterns (``N`` is a number)."""

    def __init__(self, table: tuple[KeySpec, ...]) -> None:
        self.table = table
        self.exact = {spec.pattern: spec for spec in table if "N" not in spec.pattern}
        # (prefix, suffix, spec): ``diskN_type`` is ``disk``, one or more ASCII digits, ``_type`` (the
        # first N stands for the number), matched with str methods: no regular expression per pattern.
        self.numbered: list[tuple[str, str, KeySpec]] = []
        for spec in table:
            if "N" in spec.pattern:
                prefix, _, suffix = spec.pattern.partition("N")
                self.numbered.append((prefix, suffix, spec))


_index = _Index(KEYS)


def spec_for(key: str) -> KeySpec | None:
    """The spec for a concrete key (``disk3_type`` → ``diskN_type``), or None for unknown keys.

    The index follows ``KEYS`` (rebuilt if the table was replaced, as a test adding a device does)."""
    global _index
    if _index.table is not KEYS:
        _index = _Index(KEYS)
    spec = _index.exact.get(key)
    if spec is not None:
        return spec
    for prefix, suffix, numbered in _index.numbered:
        number = key[len(prefix):len(key) - len(suffix)]
        if (key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix) + len(suffix)
                and number.isascii() and number.isdigit()):
            return numbered
    return None


def check(source: Source, key: str, value: str) -> None:
    """Validate one key; unknown keys pass (they are kept, not judged) unless their value holds a NUL or a
    line break, which would make the file mean different keys to hivectl and to vm-bhyve's sh reader."""
    values.plain_text(source, key, value)
    spec = spec_for(key)
    if spec is not None:
        spec.check(source, key, value)
