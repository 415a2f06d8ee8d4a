"""Every file of one guest, named in one place: ``GuestLayout``.

A guest is a directory ``$vm_dir/NAME`` (vm-bhyve's vm(8)) holding its config, its disks and, while it
runs, a handful of run-time files that vm-bhyve, ``list``, the supervisor, the drivers, ``clone`` and
``backup`` all have to agree on. Before this module each of them spelt those names itself, so a new file
(a socket, a log) had to be added in six places and ``clone`` could copy a file the supervisor had just
started writing. Now a name is defined here once and everything else asks the layout.

Names kept from vm-bhyve (its ``lib/vm-run`` and ``lib/vm-core``), because administrators and vm-bhyve
itself on shared storage read them: ``NAME.conf``, ``run.lock`` (first line the host), ``console``,
``vm-bhyve.log``, ``NAME.save``, ``device.map``, ``restart``, ``seed.iso``, ``uefi-vars.fd``. Names that are
hivectl's own start with ``hivectl.`` or are sockets, or are the config's lock file ``.NAME.conf.lock``
(``hivectl.safety.filelock``; never copied into another guest).

The layout is pure: it builds paths and never touches the file system, so ``--dry-run`` and ``list`` can
use it freely. The plain file names are also module constants, for the one hot loop (``list`` over a
thousand guests) that works on strings rather than ``Path`` objects.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: ``list`` imports this module for names
if TYPE_CHECKING:
    from pathlib import Path

# -- run-time files (present only while the guest runs, or left behind by a crash) ------------------
RUN_LOCK = "run.lock"  # vm-bhyve's lock; hivectl adds pid= and boot= lines (hivectl/runner/lock.py)
LOCK_GUARD = ".run.lock.guard"  # flock'd while a lock is inspected or taken
SUPERVISOR_STATE = "hivectl.state"  # JSON: state and hypervisor pid, written atomically by the supervisor
LAST_RUN = "hivectl.last"  # JSON: how the last run ended (``info`` shows it)
STOPPING = "hivectl.stopping"  # `stop` asked for it: the next exit is not a fault
WAIT_RECORD = "hivectl.waiting"  # JSON: the supervisor's loop state while it waits as the lean waiter
RESTART_FLAG = "restart"  # vm-bhyve's one-shot flag: the next power-off becomes a restart
CONSOLE = "console"  # ``comN=/dev/nmdm-NAME.NB`` and ``vnc=ip:port`` lines (vm-bhyve's format)
SUSPENDING_LOCK = "suspending.lock"  # vm-bhyve's lock while it writes NAME.save
VM_LOG = "vm-bhyve.log"  # the per-guest log administrators tail; rotated to vm-bhyve.log.0.gz
LOADER_LOG = "loader.log"  # bhyveload / grub-bhyve output of the last boot
BHYVE_CONFIG = "bhyve.config"  # bhyve's -k file (bhyve_config(5)); holds secrets, mode 0600
DEVICE_MAP = "device.map"  # grub-bhyve's device map (vm-bhyve's lib/vm-run writes it the same way)
# -- QEMU driver's run-time files ----------------------------------------------------------------
QMP_SOCKET = "qmp.sock"  # the supervisor's QMP connection (events)
QMP_CONTROL_SOCKET = "qmp-ctl.sock"  # a second QMP monitor for stop/reset from other processes
VNC_SOCKET = "vnc.sock"
VNC_SECRET = ".vnc-secret"  # noqa: S105 - a file name, not a password
CONSOLE_SOCKET = "console.sock"  # com1; further ports are ``<port>.sock``
CONSOLE_LOG = "console.log"
VIRT_CONSOLE_PREFIX = "vtcon."  # ``vtcon.<port>``: bhyve's virtio-console and QEMU's virtserialport sockets
# -- kept between runs ----------------------------------------------------------------------------
SEED = "seed.iso"  # the cloud-init NoCloud seed (rebuilt when stale)
UEFI_VARS = "uefi-vars.fd"  # the guest's own copy of the UEFI variable store
SWTPM_SOCKET = "swtpm.sock"  # default tpm_path for tpm=swtpm
SWTPM_PID = "swtpm.pid"  # the running swtpm's pid (swtpm --pid file=)
SWTPM_LOG = "swtpm.log"  # swtpm's stderr and log of the current run
TPM_STATE = "tpm"  # the software TPM's own state (swtpm --tpmstate dir=): the guest's, kept across runs

HYPERVISOR_LOGS = ("bhyve.log", "qemu.log")  # one per driver: ``<driver>.log``

# Files that describe one run and must never be copied into another guest (clone, backup, restore).
# The seed and the device map are rebuilt at every start, so they count too.
RUNTIME_FILES = frozenset({
    RUN_LOCK, LOCK_GUARD, SUPERVISOR_STATE, LAST_RUN, STOPPING, WAIT_RECORD, RESTART_FLAG, CONSOLE, SUSPENDING_LOCK,
    LOADER_LOG, BHYVE_CONFIG, DEVICE_MAP, CONSOLE_LOG, SEED, *HYPERVISOR_LOGS, SWTPM_PID, SWTPM_LOG,
})
RUNTIME_PREFIXES = (VM_LOG, "hivectl.log", VIRT_CONSOLE_PREFIX)

def config_name(guest: str) -> str:
    """``NAME.conf``: the guest's configuration file inside its directory."""
    return f"{guest}.conf"


def suspend_name(guest: str) -> str:
    """``NAME.save``: bhyve's suspended state, as vm-bhyve names it."""
    return f"{guest}.save"


def tmux_session(guest: str) -> str:
    """vm-bhyve's tmux session name: ``.`` becomes ``~`` (tmux reads ``.`` and ``:`` as target syntax).

    Guest names are validated at the edge, so ``.`` is the only character that needs replacing.
    """
    return guest.replace(".", "~")


def nmdm_base(guest: str, number: int) -> str:
    """``/dev/nmdm-NAME.<n>``: bhyve opens the ``A`` side, users attach to ``B`` (vm-bhyve's names)."""
    return f"/dev/nmdm-{guest}.{number}"


def is_runtime_file(entry: str, guest: str) -> bool:
    """True for a file that belongs to one run of ``guest`` rather than to the guest itself."""
    from hivectl.safety.filelock import lock_name  # here: the lock module's imports are not list's

    return (entry in RUNTIME_FILES or entry.startswith(RUNTIME_PREFIXES) or entry.endswith(".sock")
            or entry.startswith(suspend_name(guest)) or entry == lock_name(config_name(guest)))


class GuestLayout:
    """The paths of one guest's files, from its directory (and its ZFS dataset for zvol disks).

    ``name`` defaults to the directory's name, which is what vm-bhyve requires of a guest directory; pass
    it only for a staging directory that will be renamed into place (restore, create).
    """

    __slots__ = ("dataset", "directory", "name")

    def __init__(self, directory: Path, name: str | None = None, dataset: str | None = None) -> None:
        self.directory = directory
        self.name = directory.name if name is None else name
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"GuestLayout({str(self.directory)!r}, {self.name!r}, {self.dataset!r})"

    # -- the guest itself ------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.directory / config_name(self.name)

    @property
    def suspend(self) -> Path:
        return self.directory / suspend_name(self.name)

    def save_file(self, suffix: str) -> Path:
        """``NAME.save`` plus ``suffix``: bhyve's ``.kern`` and ``.meta``, hivectl's ``.hivectl`` record
        (hivectl/drivers/checkpoint.py)."""
        return self.directory / (suspend_name(self.name) + suffix)

    @property
    def suspending(self) -> Path:
        """vm-bhyve's ``suspending.lock``: a suspend is under way, so the hypervisor's exit is no reboot."""
        return self.directory / SUSPENDING_LOCK

    @property
    def seed(self) -> Path:
        return self.directory / SEED

    @property
    def uefi_vars(self) -> Path:
        return self.directory / UEFI_VARS

    @property
    def swtpm_socket(self) -> Path:
        return self.directory / SWTPM_SOCKET

    @property
    def swtpm_pid(self) -> Path:
        return self.directory / SWTPM_PID

    @property
    def swtpm_log(self) -> Path:
        return self.directory / SWTPM_LOG

    @property
    def tpm_state(self) -> Path:
        return self.directory / TPM_STATE

    def disk_path(self, dev: str, name: str) -> str:
        """Where a disk's data lives, by ``diskN_dev`` (vm-bhyve's ``lib/vm-run``, the disk loop).

        ``file`` disks are in the guest directory, zvols are ``/dev/zvol/<dataset>/<name>``, and
        ``custom``/``9p``/``iscsi`` name their location themselves. The drivers check the name first
        (confinement, a dataset for zvols) and report the key at fault; this only composes the path.
        Raises ``LookupError`` for a zvol of a guest that is not on a ZFS datastore. What each ``dev`` means
        is hivectl/model/backing.py's (imported here, not at the top: ``list`` imports this module).
        """
        from hivectl.model import backing

        kind = backing.of(dev)
        if kind.zvol:
            if self.dataset is None:
                raise LookupError(f"{self.name} is not on a ZFS datastore, so it has no zvols")
            return f"/dev/zvol/{self.dataset}/{name}"
        if kind.literal:
            return name
        return str(self.directory / name)

    # -- run-time files --------------------------------------------------------------------------
    @property
    def run_lock(self) -> Path:
        return self.directory / RUN_LOCK

    @property
    def lock_guard(self) -> Path:
        return self.directory / LOCK_GUARD

    @property
    def supervisor_state(self) -> Path:
        return self.directory / SUPERVISOR_STATE

    @property
    def last_run(self) -> Path:
        return self.directory / LAST_RUN

    @property
    def stopping(self) -> Path:
        return self.directory / STOPPING

    @property
    def wait_record(self) -> Path:
        return self.directory / WAIT_RECORD

    @property
    def restart_flag(self) -> Path:
        return self.directory / RESTART_FLAG

    @property
    def console(self) -> Path:
        return self.directory / CONSOLE

    @property
    def vm_log(self) -> Path:
        return self.directory / VM_LOG

    @property
    def vm_log_rotated(self) -> Path:
        return self.directory / f"{VM_LOG}.0.gz"

    def hypervisor_log(self, driver: str) -> Path:
        """``bhyve.log`` or ``qemu.log``: the hypervisor's stderr of the last boot."""
        return self.directory / f"{driver}.log"

    @property
    def loader_log(self) -> Path:
        return self.directory / LOADER_LOG

    @property
    def bhyve_config(self) -> Path:
        return self.directory / BHYVE_CONFIG

    @property
    def device_map(self) -> Path:
        return self.directory / DEVICE_MAP

    def virt_console(self, port: str) -> Path:
        return self.directory / f"{VIRT_CONSOLE_PREFIX}{port}"

    @property
    def tmux_session(self) -> str:
        return tmux_session(self.name)

    def nmdm_base(self, number: int) -> str:
        return nmdm_base(self.name, number)

    # -- QEMU's sockets --------------------------------------------------------------------------
    @property
    def qmp_socket(self) -> Path:
        return self.directory / QMP_SOCKET

    @property
    def qmp_control_socket(self) -> Path:
        return self.directory / QMP_CONTROL_SOCKET

    @property
    def vnc_socket(self) -> Path:
        return self.directory / VNC_SOCKET

    @property
    def vnc_secret(self) -> Path:
        return self.directory / VNC_SECRET

    def serial_socket(self, port: str, first: bool) -> Path:
        """com1 is ``console.sock`` (what ``console`` attaches to); other ports are ``<port>.sock``."""
        return self.directory / (CONSOLE_SOCKET if first else f"{port}.sock")

    @property
    def console_log(self) -> Path:
        return self.directory / CONSOLE_LOG

    def is_runtime(self, entry: str) -> bool:
        """True for a directory entry that belongs to one run rather than to the guest (see module doc)."""
        return is_runtime_file(entry, self.name)
