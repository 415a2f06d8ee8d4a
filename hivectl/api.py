"""The Python API: what the CLI does, as calls that return data and raise ``HivectlError``.

For scripts, configuration management and monitoring that would otherwise parse ``hivectl`` output::

    from hivectl.api import Hivectl

    hv = Hivectl()                      # vm_dir from rc.conf / /etc/hivectl.conf / HIVECTL_VM_DIR
    hv.create("web1", template="debian", size="30G", cpu="2", memory="2G")
    hv.start("web1")
    for row in hv.guests():
        print(row["name"], row["state"])
    hv.stop(["web1"], timeout=60)

Every method goes through the same operations and plans as the command line, so validation, locking,
rollback on failure and the supervisor are identical; ``dry_run=True`` returns the planned host commands
(lists of strings) instead of changing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivectl.context import Context
from hivectl.drivers import get_driver
from hivectl.drivers.base import Driver
from hivectl.host.base import Host
from hivectl.journal.audit import audit_methods
from hivectl.plan import Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hivectl.auth.principal import Principal


class Hivectl:
    """One host's hivectl: its vm_dir, datastores, guests and driver."""

    def __init__(self, vm_dir: str | Path | None = None, driver: str | None = None, *,
                 principal: Principal | None = None, host: Host | None = None) -> None:
        """``principal``: whom the access operations (tokens, grants, tenants) act for; the daemon gives its
        request's, otherwise it is this process's user or its sudo/doas invoker (docs/security.md).
        ``host``: the machine to act on (default: this one); hivectld passes one that can cancel a plan."""
        self._ctx = Context(driver, str(vm_dir) if vm_dir is not None else None, host)
        self._principal = principal

    # -- plumbing ------------------------------------------------------------------------------------------
    def _run(self, plan: Plan, dry_run: bool) -> list[list[str]]:
        if dry_run:
            return plan.argvs()
        plan.apply(self._ctx.host)
        self._ctx.refresh()  # the plan may have changed rc.conf or system.conf: read them again next time
        return []

    @property
    def driver(self) -> Driver:
        return get_driver(self._ctx.driver, self._ctx.host, self._ctx.store)

    # -- host ----------------------------------------------------------------------------------------------
    def init(self, dry_run: bool = False) -> list[list[str]]:
        """Prepare vm_dir and the host (``hivectl init``); safe to run again.

        >>> hv.init()
        []
        """
        from hivectl.ops.system import plan_init

        return self._run(plan_init(self._ctx.store, self._ctx.host), dry_run)

    def templates(self) -> list[str]:
        """The names of the templates in vm_dir/.templates (``hivectl template list``).

        >>> "default" in hv.templates()
        True
        """
        return self._ctx.store.templates()

    # -- guests --------------------------------------------------------------------------------------------
    def guests(self, running_only: bool = False, tag: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``hivectl list --json``."""
        from hivectl.ops.listing import list_guests

        return [row.as_json() for row in list_guests(self._ctx.store, running_only, tag)]

    def info(self, name: str) -> dict[str, Any]:
        """What ``hivectl info --json NAME`` prints."""
        from hivectl.ops.listing import guest_info

        return guest_info(self._ctx.store, self._ctx.store.get(name))

    def create(self, name: str, template: str = "default", datastore: str = "default", size: str | None = None,
               cpu: str | None = None, memory: str | None = None, image: str | None = None,
               cloud_init: bool = False, keyfile: str | Path | None = None, userdata: str | Path | None = None,
               netconfig: list[str] | None = None, dry_run: bool = False) -> list[list[str]]:
        """Create a guest from a template (``hivectl create``; the same options, by name).

        >>> plan = hv.create("other", template="debian", size="1G", dry_run=True)
        >>> plan[-2][:3], plan[-1][0]  # built in a hidden staging directory, published by one rename
        (['truncate', '-s', '1G'], 'mv')
        """
        from hivectl.ops.guests import CreateRequest, plan_create

        self._ctx.store.require_initialised()
        request = CreateRequest(name, template, datastore, size, cpu, memory, image, cloud_init,
                                Path(keyfile) if keyfile is not None else None,
                                Path(userdata) if userdata is not None else None, list(netconfig or []))
        plan, _ = plan_create(self._ctx.store, request)
        return self._run(plan, dry_run)

    def import_guest(self, bhyve: str | None = None, loader: str | None = None, script: str | Path | None = None,
                     line: int | None = None, name: str | None = None, datastore: str = "default",
                     directory: str | Path | None = None, dry_run: bool = False) -> list[list[str]]:
        """Make a guest from a bhyve command line (and its loader line) or a script (``hivectl import``).

        The guest is planned as ``start`` plans it and compared with the line first; what cannot be kept is
        refused with its position:

        >>> hv.import_guest(bhyve="bhyve -c 1 -m 1G -s 0,hostbridge -s 3,uart,stdio "
        ...                       "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd handmade")
        Traceback (most recent call last):
        ...
        hivectl.importer.words.ImportRefused: argument 7: '-s 3,uart,stdio': hivectl has no key for a uart device
        """
        from hivectl.ops.importer import ImportRequest, plan_import

        self._ctx.store.require_initialised()
        request = ImportRequest(bhyve, loader, Path(script) if script is not None else None, line, name, datastore,
                                Path(directory) if directory is not None else None)
        return self._run(plan_import(self._ctx.host, self._ctx.store, request).plan, dry_run)

    def set(self, name: str, dry_run: bool = False, **keys: str) -> list[list[str]]:
        """Change guest configuration keys (validated first, written atomically)."""
        from hivectl.ops.guests import plan_set_keys

        return self._run(plan_set_keys(self._ctx.store.get(name), keys), dry_run)

    def rename(self, name: str, new: str, dry_run: bool = False) -> list[list[str]]:
        """Rename a stopped guest (its directory or dataset, and its config file).

        >>> [step[0] for step in hv.rename("doc", "doc2", dry_run=True)]
        ['cp', 'mv', 'rm']
        """
        from hivectl.ops.guests import plan_rename

        return self._run(plan_rename(self._ctx.store, name, new), dry_run)

    def destroy(self, name: str, dry_run: bool = False) -> list[list[str]]:
        """Remove a stopped guest and its disks; ``NAME@SNAP`` destroys that ZFS snapshot instead.

        >>> hv.destroy("doc", dry_run=True) != []
        True
        """
        from hivectl.ops.guests import plan_destroy

        if "@" in name:
            from hivectl.storage.snapshots import plan_destroy_snapshot

            return self._run(plan_destroy_snapshot(self._ctx.store, name), dry_run)

        return self._run(plan_destroy(self._ctx.store, name), dry_run)

    def configure(self, name: str, text: str, dry_run: bool = False) -> list[list[str]]:
        """Replace ``NAME/NAME.conf`` with ``text`` once it validates (``hivectl configure`` without an editor).

        >>> import re
        >>> hv.configure("doc", re.sub(r'^cpu=.*$', 'cpu="2"', hv.config_text("doc"), flags=re.M))
        []
        >>> hv.info("doc")["cpu"]
        '2'
        """
        from hivectl.ops.guests import plan_configure

        return self._run(plan_configure(self._ctx.store.get(name), text), dry_run)

    def config_text(self, name: str) -> str:
        """The text of a guest's configuration file, as ``configure`` would open it in an editor."""
        return self._ctx.store.get(name).conf_path.read_text()

    def add(self, name: str, device: str, spec: str, dev: str = "file", dry_run: bool = False) -> list[list[str]]:
        """Add a disk (``device="disk"``, ``spec`` a size) or a NIC (``device="network"``, ``spec`` a switch).

        >>> plan = hv.add("doc", "disk", "1G", dry_run=True)
        >>> plan[0][:3]
        ['truncate', '-s', '1G']
        """
        from hivectl.errors import UsageError
        from hivectl.ops.guests import plan_add_disk, plan_add_network

        ref = self._ctx.store.get(name)
        if device == "disk":
            return self._run(plan_add_disk(self._ctx.store, ref, spec, dev), dry_run)
        if device == "network":
            return self._run(plan_add_network(self._ctx.store, ref, spec), dry_run)
        raise UsageError(f"add: device {device!r}: expected disk or network")

    # -- tags ----------------------------------------------------------------------------------------------
    def tags_list(self, name: str) -> list[str]:
        """A guest's tags, in order.

        >>> hv.tags_add("doc", ["prod", "eu"])
        []
        >>> hv.tags_list("doc")[-2:]
        ['prod', 'eu']
        """
        from hivectl.ops import tags

        return tags.current(self._ctx.store.get(name))

    def tags_add(self, name: str, tags: list[str], dry_run: bool = False) -> list[list[str]]:
        """Add tags the guest does not have yet (after the ones it has)."""
        from hivectl.ops import tags as ops

        plan, _ = ops.plan_add(self._ctx.store.get(name), tags)
        return self._run(plan, dry_run)

    def tags_remove(self, name: str, tags: list[str], dry_run: bool = False) -> list[list[str]]:
        """Remove tags (tags the guest does not have are skipped).

        >>> hv.tags_add("doc", ["a", "b"]); hv.tags_remove("doc", ["a"]); "a" in hv.tags_list("doc")
        []
        []
        False
        """
        from hivectl.ops import tags as ops

        plan, _ = ops.plan_remove(self._ctx.store.get(name), tags)
        return self._run(plan, dry_run)

    def tags_find(self, tag: str) -> list[str]:
        """The names of the guests that have ``tag``.

        >>> hv.tags_add("doc", ["found"]); hv.tags_find("found")
        []
        ['doc']
        """
        from hivectl.ops import tags

        return [row.name for row in tags.find(self._ctx.store, tag)]

    # -- host settings, datastores, templates, passthru ---------------------------------------------------
    def settings(self, names: list[str] | None = None) -> dict[str, str | None]:
        """System settings (``hivectl get``); None where unset.

        >>> "console" in hv.settings()
        True
        """
        from hivectl.ops.system import get_settings

        return {k: (None if v == "-" else v) for k, v in get_settings(self._ctx.store, names or [])}

    def set_settings(self, dry_run: bool = False, **settings: str) -> list[list[str]]:
        """Change system settings (``hivectl set console=tmux``).

        >>> hv.set_settings(console="tmux"); hv.settings(["console"])
        []
        {'console': 'tmux'}
        """
        from hivectl.ops.system import plan_set_settings

        return self._run(plan_set_settings(self._ctx.store, [f"{k}={v}" for k, v in settings.items()]), dry_run)

    def version(self) -> str:
        """hivectl's version.

        >>> hv.version() == __import__("hivectl").__version__
        True
        """
        from hivectl import __version__

        return __version__

    def metrics(self, json: bool = False) -> Any:
        """The host's and guests' metrics (``hivectl metrics``): Prometheus text, or with ``json=True`` the
        collected values as plain data (docs/metrics.md)."""
        from hivectl.metrics.collect import scrape

        snapshot = scrape(self._ctx.store, self._ctx.host, self._ctx.driver)
        if json:
            import dataclasses

            return dataclasses.asdict(snapshot)
        from hivectl.metrics.exposition import text

        return text(snapshot).decode()

    def datastore_list(self) -> list[dict[str, Any]]:
        """The datastores (``hivectl datastore list --json``).

        >>> [d["name"] for d in hv.datastore_list()][:1]
        ['default']
        """
        return [{"name": d.name, "type": d.kind, "path": str(d.path), "zfs": d.dataset is not None,
                 "dataset": d.dataset} for d in self._ctx.store.datastores()]

    def datastore_add(self, name: str, path: str, dry_run: bool = False) -> list[list[str]]:
        """Add a guest datastore: a directory or ``zfs:pool/dataset``."""
        from hivectl.ops.system import plan_datastore_add

        return self._run(plan_datastore_add(self._ctx.store, name, path, ""), dry_run)

    def datastore_iso(self, name: str, path: str, dry_run: bool = False) -> list[list[str]]:
        """Add an ISO store."""
        from hivectl.ops.system import plan_datastore_add

        return self._run(plan_datastore_add(self._ctx.store, name, path, "iso"), dry_run)

    def datastore_img(self, name: str, path: str, dry_run: bool = False) -> list[list[str]]:
        """Add a cloud-image store."""
        from hivectl.ops.system import plan_datastore_add

        return self._run(plan_datastore_add(self._ctx.store, name, path, "img"), dry_run)

    def datastore_remove(self, name: str, dry_run: bool = False) -> list[list[str]]:
        """Forget a datastore (no data is deleted)."""
        from hivectl.ops.system import plan_datastore_remove

        return self._run(plan_datastore_remove(self._ctx.store, name), dry_run)

    def template_show(self, name: str) -> str:
        """The text of a template.

        >>> 'loader=' in hv.template_show("debian")
        True
        """
        return self._ctx.store.template_path(name).read_text()

    def passthru(self) -> list[dict[str, Any]]:
        """The host's PCI devices and which are ready for passthrough (``hivectl passthru --json``)."""
        from hivectl.ops.passthru import host_devices

        return [device.as_json() for device in host_devices(self._ctx.host)]

    # -- autostart -----------------------------------------------------------------------------------------
    def autostart_list(self) -> list[dict[str, Any]]:
        """The guests in vm_list, in start order.

        >>> hv.autostart_add(["doc"]); [e["name"] for e in hv.autostart_list()]
        []
        ['doc']
        >>> hv.autostart_remove(["doc"])
        []
        """
        from hivectl.ops import autostart

        return [entry.as_json() for entry in autostart.entries(self._ctx.store)]

    def autostart_add(self, names: list[str], position: str | None = None, dry_run: bool = False) -> list[list[str]]:
        """Start guests at boot: append them to vm_list, or insert them from ``position`` on."""
        from hivectl.ops import autostart

        plan, _ = autostart.plan_add(self._ctx.store, names, position)
        return self._run(plan, dry_run)

    def autostart_remove(self, names: list[str], dry_run: bool = False) -> list[list[str]]:
        """Take guests off vm_list."""
        from hivectl.ops import autostart

        plan, _ = autostart.plan_remove(names)
        return self._run(plan, dry_run)

    # -- storage -------------------------------------------------------------------------------------------
    def disk_list(self, name: str) -> list[dict[str, Any]]:
        """A guest's disks (``hivectl disk list --json``).

        >>> [d["index"] for d in hv.disk_list("doc")]
        [0]
        """
        from hivectl.ops.listing import guest_info

        disks: list[dict[str, Any]] = guest_info(self._ctx.store, self._ctx.store.get(name))["disks"]
        return disks

    def disk_resize(self, name: str, disk: str, size: str, dry_run: bool = False) -> list[list[str]]:
        """Grow a stopped guest's disk to ``size`` (or by ``+size``); disks never shrink.

        >>> hv.disk_resize("doc", "disk0", "2G"); hv.disk_list("doc")[0]["size"] == 2 << 30
        []
        True
        """
        from hivectl.storage.resize import plan_resize

        return self._run(plan_resize(self._ctx.store, name, disk, size).plan, dry_run)

    def snapshot(self, spec: str, force: bool = False, dry_run: bool = False) -> list[list[str]]:
        """Take a recursive ZFS snapshot of a guest (``NAME`` or ``NAME@SNAP``; ``force`` for a running one)."""
        from hivectl.storage.snapshots import plan_snapshot

        plan, _ = plan_snapshot(self._ctx.store, spec, force)
        return self._run(plan, dry_run)

    def snapshots(self, name: str) -> list[dict[str, Any]]:
        """The ZFS snapshots of a guest, oldest first, each ``{"name", "creation", "used"}``.

        What ``hivectl info`` shows under ``snapshots``, and the web UI's snapshot table. On a directory
        datastore one line says that snapshots need ZFS.
        """
        from hivectl.storage.snapshots import snapshot_list

        return snapshot_list(self._ctx.store, self._ctx.store.get(name))

    def snapshot_prune(self, name: str, policy: str, dry_run: bool = False) -> list[dict[str, Any]]:
        """Destroy the ZFS snapshots of a guest that a retention ``policy`` does not keep (the grammar of
        ``hivectl/retention``: ``keep-last=3,keep-daily=7``, Proxmox's prune options); returns every
        decision, newest first: ``{"name", "time", "keep", "rule"}``. With ``dry_run`` nothing is destroyed
        and the decisions are what a run would do. Protected (``hivectl:protected=on``) and not yet
        replicated (``hivectl:replication=pending``) snapshots are always kept."""
        from hivectl.ops.retention import prune
        from hivectl.retention import parse_policy

        result = prune(self._ctx, name, parse_policy(policy, None, "policy"), dry_run)
        return [_decision(d) for d in result.decisions]

    def retention_explain(self, policy: str, names: list[str] | None = None,
                          guest: str | None = None) -> list[dict[str, Any]]:
        """What a retention ``policy`` keeps of a guest's snapshots (``guest``) or of ``names`` that carry
        their time (``backup-20261203``), without changing anything; the decisions, newest first.

        >>> [d["name"] for d in hv.retention_explain("keep-last=1,keep-daily=1",
        ...     ["s-2026-12-03-10:00:00", "s-2026-12-03-09:00:00", "s-2026-12-02"]) if d["keep"]]
        ['s-2026-12-03-10:00:00', 's-2026-12-02']
        """
        from hivectl.ops.retention import explain
        from hivectl.retention import parse_policy

        decisions = explain(self._ctx, parse_policy(policy, None, "policy"), names or (), guest)
        return [_decision(d) for d in decisions]

    def rollback(self, spec: str, recursive: bool = False, dry_run: bool = False) -> list[list[str]]:
        """Roll a guest back to a ZFS snapshot (``NAME@SNAP``)."""
        from hivectl.storage.snapshots import plan_rollback

        return self._run(plan_rollback(self._ctx.store, spec, recursive), dry_run)

    def clone(self, spec: str, new: str, dry_run: bool = False) -> list[list[str]]:
        """Make a new guest from a guest or a snapshot (``NAME`` or ``NAME@SNAP``), with a new identity."""
        from hivectl.storage.clone import plan_clone

        return self._run(plan_clone(self._ctx.store, spec, new), dry_run)

    # -- replication (hivectl/replicate, docs/replication.md) ---------------------------------------------
    def replicate(self, name: str, remote: str, every: str, keep: str, dry_run: bool = False) -> dict[str, Any]:
        """Record a replication job: keep a stopped copy of ``name`` on ``remote`` (a remote's name, or
        ``local:zfs:POOL/DS``), a run every ``every`` (``15m``), pruned on both sides with ``keep``
        (``keep-last=4,keep-hourly=24``). The job runs from hivectld or ``replicate_run_due`` (cron)."""
        import time

        from hivectl.replicate import jobs

        self._ctx.store.get(name)
        job = jobs.make_job(name, remote, every, keep, time.time())
        jobs.add(self._ctx.store.config_dir, job, dry_run)
        return {"guest": job.guest, "remote": job.remote, "every": job.every, "keep": job.keep}

    def replicate_list(self) -> list[dict[str, Any]]:
        """The replication jobs of this host."""
        from hivectl.replicate import jobs

        return [{"guest": j.guest, "remote": j.remote, "every": j.every, "keep": j.keep}
                for j in jobs.load(self._ctx.store.config_dir)]

    def replicate_remove(self, name: str, remote: str | None = None, dry_run: bool = False) -> list[str]:
        """Remove ``name``'s replication job (to ``remote``, needed when there are several); the copy and
        the snapshots stay."""
        from hivectl.replicate import jobs

        return [j.key for j in jobs.remove(self._ctx.store.config_dir, name, remote, dry_run)]

    def replicate_status(self) -> list[dict[str, Any]]:
        """Per job: recovery point (the last snapshot both sides have) and its age, last success, bytes,
        consecutive failures and the last error."""
        from hivectl.replicate.run import status

        return status(self._ctx)

    def replicate_run_due(self, now: float | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
        """Run every replication job that is due at ``now`` (default: the clock); each run's outcome."""
        import time

        from hivectl.replicate import run

        moment = time.time() if now is None else now
        if dry_run:
            return [{"job": job.key} for job in run.due_jobs(self._ctx, moment)]
        return [r.as_json() for r in run.run_due(self._ctx, moment)]

    def promote(self, name: str, force: bool = False, source: str | None = None, start: bool = True,
                dry_run: bool = False) -> dict[str, Any]:
        """On the DR host: make replica ``name`` a normal guest (rolled back to its newest complete
        snapshot) and start it; refused while the source runs it or cannot be asked, unless ``force``."""
        from hivectl.replicate.promote import promote

        result = promote(self._ctx, name, force, source, start, dry_run)
        return {"name": result.name, "snapshot": result.snapshot, "plan": result.plan, "started": result.started}

    def migrate(self, name: str, remote: str, warm: bool = False, max_downtime: float = 5.0,
                rename: str | None = None, keep_source: bool = False, datastore: str | None = None,
                to_vm_bhyve: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Move a guest to another host (``hivectl migrate``; docs/migration.md): the preflight of both hosts,
        then cold (stop, send, start there) or ``warm`` (rounds while it runs, then a stop of at most about
        ``max_downtime`` seconds); returns the result with the rounds and the measured downtime. REMOTE is
        ``ssh://[USER@]HOST[:PORT]``, ``local:VM_DIR``, ``exec:COMMAND`` or a remote's name; ``to_vm_bhyve``:
        the target runs vm-bhyve and is sent to in its protocol. ``dry_run`` runs the preflight and returns the
        steps in ``plan`` and what it found in ``problems``."""
        from hivectl.migrate.transport import connect
        from hivectl.ops.migrate import MigrateRequest, migrate

        request = MigrateRequest(name, remote, warm, max_downtime, rename, keep_source, datastore, dry_run,
                                 to_vm_bhyve)
        return migrate(self._ctx, None if to_vm_bhyve else connect(remote, self._ctx), request).as_json()

    def iso(self, url: str | None = None, datastore: str | None = None, sha256: str | None = None,
            sums: str | None = None, dry_run: bool = False) -> list[dict[str, Any]] | list[list[str]]:
        """Without ``url``: the ISOs in the ISO stores. With it: download one (a plan when ``dry_run``).

        >>> hv.iso()
        []
        """
        return self._media("iso", url, datastore, sha256, sums, dry_run)

    def img(self, url: str | None = None, datastore: str | None = None, sha256: str | None = None,
            sums: str | None = None, dry_run: bool = False) -> list[dict[str, Any]] | list[list[str]]:
        """Without ``url``: the cloud images in the image stores. With it: download one."""
        return self._media("img", url, datastore, sha256, sums, dry_run)

    def _media(self, kind: str, url: str | None, datastore: str | None, sha256: str | None, sums: str | None,
               dry_run: bool) -> list[dict[str, Any]] | list[list[str]]:
        from hivectl.ops.media import DownloadRequest, plan_download
        from hivectl.storage import download, media

        if url is None:
            return [{"datastore": f.datastore, "filename": f.name, "size": f.size}
                    for f in media.list_media(self._ctx.store, kind)]
        planned = plan_download(self._ctx.store, DownloadRequest(kind, url, datastore, sha256, sums))
        if dry_run:
            return planned
        target = media.target_store(self._ctx.store, kind, datastore)
        download.fetch(url, target.path, sha256=sha256, sums=sums)
        return []

    def backup(self, name: str, to: str | None = None, keep: int | None = None, compress: str = "gz",
               full: bool = False, dry_run: bool = False, retention: str | None = None) -> list[list[str]]:
        """Write a guest to one compressed, checksummed file (see ``hivectl backup --help``); ``keep`` N or a
        ``retention`` policy (``keep-daily=7,keep-weekly=4``, as ``snapshot_prune``) prunes older backups."""
        from hivectl.storage.backup import BackupRequest, plan_backup

        plan, _ = plan_backup(self._ctx.store, BackupRequest(name, to, keep, compress, full, retention))
        return self._run(plan, dry_run)

    def restore(self, file: str | Path, name: str | None = None, datastore: str | None = None,
                dry_run: bool = False) -> list[list[str]]:
        """Recreate a guest from a backup; with ``dry_run`` only check the archive and return what it would do."""
        from hivectl.ops.media import RestoreRequest, plan_restore
        from hivectl.storage.backup import restore

        if dry_run:
            return plan_restore(self._ctx.store, RestoreRequest(str(file), name, datastore))
        restore(self._ctx.store, Path(file), datastore, name)
        return []

    def image_list(self) -> list[dict[str, Any]]:
        """The guest images in vm_dir/images (ZFS)."""
        from hivectl.storage import images

        return [vars(i) for i in images.list_images(self._ctx.store)]

    def image_create(self, name: str, description: str = "", compress: str = "xz",
                     dry_run: bool = False) -> list[list[str]]:
        """Make an image of a ZFS guest."""
        from hivectl.storage import images

        plan, _ = images.plan_create(self._ctx.store, name, description, compress)
        return self._run(plan, dry_run)

    def image_provision(self, uuid: str, new: str, datastore: str = "default",
                        dry_run: bool = False) -> list[list[str]]:
        """Make a new guest from an image."""
        from hivectl.storage import images

        return self._run(images.plan_provision(self._ctx.store, uuid, new, datastore), dry_run)

    def image_destroy(self, uuid: str, dry_run: bool = False) -> list[list[str]]:
        """Remove an image."""
        from hivectl.storage import images

        return self._run(images.plan_destroy(self._ctx.store, uuid), dry_run)

    # -- switches ------------------------------------------------------------------------------------------
    def _switches(self, changing: bool = True) -> Any:
        from hivectl.errors import HivectlError
        from hivectl.net.ops import SwitchOps

        if changing:
            self._ctx.store.require_initialised()
            if not self._ctx.store.config_dir.is_dir():
                raise HivectlError(f"{self._ctx.store.config_dir} does not exist: run 'hivectl init' first")
        return SwitchOps(self._ctx.store, self._ctx.host)

    def switch_list(self) -> list[dict[str, Any]]:
        """The switches (``hivectl switch list --json``).

        >>> hv.switch_list()
        []
        """
        rows: list[dict[str, Any]] = self._switches(False).rows()
        return rows

    def switch_info(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Switches in detail, with their ports, DHCP and forwards."""
        infos: list[dict[str, Any]] = self._switches(False).info(names or [])
        return infos

    def switch_create(self, name: str, type: str = "standard", interface: str | None = None, vlan: str | None = None,
                      bridge: str | None = None, mtu: str | None = None, address: str | None = None,
                      private: bool = False, nat: bool = False, dry_run: bool = False) -> list[list[str]]:
        """Create a switch (same options as ``hivectl switch create``)."""
        from hivectl.net.ops import CreateRequest

        request = CreateRequest(name, type, interface, vlan, bridge, mtu, address, private, nat)
        return self._run(self._switches().plan_create(request), dry_run)

    def switch_destroy(self, name: str, force: bool = False, dry_run: bool = False) -> list[list[str]]:
        """Remove a switch."""
        return self._run(self._switches().plan_destroy(name, force), dry_run)

    def switch_add(self, name: str, interface: str, dry_run: bool = False) -> list[list[str]]:
        """Add a physical port to a switch."""
        return self._run(self._switches().plan_add(name, interface), dry_run)

    def switch_remove(self, name: str, interface: str, dry_run: bool = False) -> list[list[str]]:
        """Remove a physical port from a switch."""
        return self._run(self._switches().plan_remove(name, interface), dry_run)

    def switch_vlan(self, name: str, vlan: str, dry_run: bool = False) -> list[list[str]]:
        """Set or clear (``"0"``) the VLAN of a switch's physical ports."""
        return self._run(self._switches().plan_vlan(name, vlan), dry_run)

    def switch_address(self, name: str, address: str, dry_run: bool = False) -> list[list[str]]:
        """Set a switch's bridge address, or ``"none"``."""
        return self._run(self._switches().plan_address(name, address), dry_run)

    def switch_private(self, name: str, value: str, dry_run: bool = False) -> list[list[str]]:
        """Make a switch private (``"on"``) or not (``"off"``)."""
        return self._run(self._switches().plan_private(name, value), dry_run)

    def switch_init(self, dry_run: bool = False) -> list[list[str]]:
        """Create every configured switch on the host (what boot does)."""
        return self._run(Plan(self._switches().plan_init()), dry_run)

    def switch_forward_list(self, name: str) -> list[dict[str, Any]]:
        """The port forwards of a NAT switch."""
        return [{"proto": f.proto, "host_port": f.host_port, "guest": str(f.guest), "guest_port": f.guest_port}
                for f in self._switches(False).forwards(name)]

    def switch_forward_add(self, name: str, proto: str, host_port: str, target: str,
                           dry_run: bool = False) -> list[list[str]]:
        """Forward a host port of a NAT switch to ``GUEST:PORT``."""
        return self._run(self._switches().plan_forward_add(name, proto, host_port, target), dry_run)

    def switch_forward_remove(self, name: str, proto: str, host_port: str, dry_run: bool = False) -> list[list[str]]:
        """Remove a port forward."""
        return self._run(self._switches().plan_forward_remove(name, proto, host_port), dry_run)

    # -- running (hivectl/ops/lifecycle.py) ---------------------------------------------------------------
    def start(self, name: str, install: str | Path | None = None, dry_run: bool = False) -> Any:
        """Start a guest under its supervisor; returns the hypervisor's pid (the start plan when ``dry_run``:
        identity written if missing, ports, seed, prestart, prepare actions, loader, hypervisor).

        Honours ``console=tmux`` (``set_settings(console="tmux")``) as ``hivectl start`` does; raises the
        start's error (``HivectlError``) when it fails.

        A dry run checks what the start checks (here: the template's switch was never created):

        >>> hv.start("doc", dry_run=True)
        Traceback (most recent call last):
        ...
        hivectl.errors.ConfigError: ...network0_switch='public': there is no such switch...
        """
        from hivectl.errors import HivectlError
        from hivectl.ops import lifecycle

        media = Path(install) if install is not None else None
        result = lifecycle.start(self._ctx, lifecycle.StartRequest((name,), media, dry_run=dry_run))
        if dry_run:
            return result.plan
        if result.errors:
            raise HivectlError(result.errors[0])
        return result.started[0].pid

    def install(self, name: str, media: str | Path, dry_run: bool = False) -> Any:
        """Start a guest with install media (an ISO path or a name in the ISO stores) attached."""
        from hivectl.ops import lifecycle

        return self.start(name, lifecycle.find_media(self._ctx, str(media)), dry_run)

    def stop(self, names: list[str], timeout: float = 90.0, dry_run: bool = False) -> list[str] | list[list[str]]:
        """ACPI shutdown, wait, then force; returns notes about guests that had to be forced (the plan when
        ``dry_run``). A guest that is not running is a ``Conflict``, raised before any guest is touched.

        >>> hv.stop(["doc"])
        Traceback (most recent call last):
        ...
        hivectl.errors.Conflict: doc is not running (Stopped)
        """
        from hivectl.errors import Conflict
        from hivectl.ops import lifecycle

        for name in names:
            lifecycle.check_running(self._ctx, name)
        result = lifecycle.stop(self._ctx, lifecycle.StopRequest(tuple(names), timeout, dry_run))
        if result.not_running:  # stopped meanwhile
            raise Conflict(result.not_running[0])
        return result.plan if dry_run else result.notes

    def restart(self, name: str, timeout: float = 90.0, dry_run: bool = False) -> Any:
        """Shut a guest down and boot it again; returns its new state (the plan when ``dry_run``)."""
        from hivectl.ops import lifecycle

        result = lifecycle.restart(self._ctx, lifecycle.GuestRequest(name, timeout, dry_run))
        return result.plan if dry_run else result.state

    def reset(self, name: str, dry_run: bool = False) -> Any:
        """Reset a running guest at once; returns its state after the reboot (the plan when ``dry_run``).

        >>> hv.reset("doc", dry_run=True)
        Traceback (most recent call last):
        ...
        hivectl.errors.Conflict: doc is not running (Stopped)
        """
        from hivectl.ops import lifecycle

        result = lifecycle.reset(self._ctx, lifecycle.GuestRequest(name, dry_run=dry_run))
        return result.plan if dry_run else result.state

    def poweroff(self, name: str, dry_run: bool = False) -> list[list[str]]:
        """Power a running guest off at once (killed if the hypervisor does not stop); the plan when ``dry_run``."""
        from hivectl.ops import lifecycle

        return lifecycle.poweroff(self._ctx, lifecycle.GuestRequest(name, dry_run=dry_run)).plan

    def suspend(self, names: list[str], timeout: float = 300.0, dry_run: bool = False) -> list[str] | list[list[str]]:
        """Save running guests' state into their directories and stop them; returns the saves' paths (the
        plan when ``dry_run``). Raises the first guest's error (``HivectlError``) after trying them all.

        >>> hv.suspend(["doc"])
        Traceback (most recent call last):
        ...
        hivectl.errors.Conflict: doc is not running (Stopped)
        """
        from hivectl.errors import HivectlError
        from hivectl.ops import lifecycle, suspend

        for name in names:
            lifecycle.check_running(self._ctx, name)
        result = suspend.suspend(self._ctx, suspend.SuspendRequest(tuple(names), timeout, dry_run))
        if dry_run:
            return result.plan
        if result.errors:
            raise HivectlError(result.errors[0])
        return [line.split(": ", 1)[1] for line in result.suspended]

    def suspendall(self, timeout: float = 300.0, dry_run: bool = False) -> list[str] | list[list[str]]:
        """Suspend every running guest, in ``stopall``'s order (vm-bhyve's ``vm suspendall``); returns the
        saves' paths (the plan when ``dry_run``). Raises the first guest's error after trying them all.

        >>> hv.suspendall(dry_run=True)
        []
        """
        from hivectl.errors import HivectlError
        from hivectl.ops import suspend

        result = suspend.suspendall(self._ctx, timeout, dry_run)
        if dry_run:
            return result.plan
        if result.errors:
            raise HivectlError(result.errors[0])
        return [line.split(": ", 1)[1] for line in result.suspended]

    def resumeall(self, dry_run: bool = False) -> list[int] | list[list[str]]:
        """Resume every suspended guest, ``vm_list``'s first in its order; returns their hypervisors' pids
        (the plan when ``dry_run``). Raises the first guest's error after trying them all.

        >>> hv.resumeall(dry_run=True)
        []
        """
        from hivectl.errors import HivectlError
        from hivectl.ops import suspend

        result = suspend.resumeall(self._ctx, dry_run)
        if dry_run:
            return result.plan
        if result.errors:
            raise HivectlError(result.errors[0])
        return [one.pid for one in result.resumed if one.pid is not None]

    def resume(self, name: str, discard: bool = False, dry_run: bool = False) -> Any:
        """Continue a suspended guest from its save (``discard``: move the save aside and boot afresh);
        returns the hypervisor's pid (the plan when ``dry_run``). A stale save raises ``HivectlError``."""
        from hivectl.ops import suspend

        result = suspend.resume(self._ctx, suspend.ResumeRequest(name, discard, dry_run))
        return result.plan if dry_run else result.pid

    def console(self, name: str, port: str | None = None) -> dict[str, str]:
        """Where a running guest's serial console is: ``{"port": "com1", "kind": ..., "target": ...}``
        (``nmdm`` device, ``socket`` path, ``tmux`` session, or ``stdio``) for a program to attach to;
        ``hivectl console`` attaches.

        >>> hv.console("doc")
        Traceback (most recent call last):
        ...
        hivectl.errors.Conflict: doc is not running (Stopped)
        """
        from hivectl.ops import lifecycle

        target = lifecycle.console_target(self._ctx, name, port)
        return {"port": target.port, "kind": target.kind, "target": target.target}

    def startall(self, dry_run: bool = False) -> list[str] | list[list[str]]:
        """Start the guests of vm_list in order (``vm_delay`` apart); returns the errors, if any (the plan
        when ``dry_run``: each start plan, with the ``sleep`` between them).

        >>> hv.startall(dry_run=True)
        []
        """
        from hivectl.ops import lifecycle

        result = lifecycle.startall(self._ctx, lifecycle.StartallRequest(dry_run))
        return result.plan if dry_run else result.errors

    def stopall(self, timeout: float = 90.0, dry_run: bool = False) -> list[str] | list[list[str]]:
        """Stop every running guest in vm-bhyve's order (not in vm_list first, then vm_list reversed,
        ``vm_delay`` apart); returns notes about guests that had to be forced (the plan when ``dry_run``).

        >>> hv.stopall(dry_run=True)
        []
        """
        from hivectl.ops import lifecycle

        result = lifecycle.stopall(self._ctx, lifecycle.StopallRequest(timeout, dry_run))
        return result.plan if dry_run else result.notes

    # -- remotes: other hosts' hivectl over ssh (docs/remotes.md) ------------------------------------------
    def remote_list(self) -> list[dict[str, Any]]:
        """The remotes of this host (``hivectl remote list --json``): name, url, command, identity, known_hosts.

        >>> [r["name"] for r in hv.remote_list()]
        []
        """
        from hivectl.remote import config

        return config.rows(self._ctx.store.config_dir)

    def remote_add(self, name: str, url: str, command: str | None = None, identity: str | None = None,
                   known_hosts: str | None = None, dry_run: bool = False) -> list[list[str]]:
        """Record another host's hivectl, reached at ``ssh://[user@]host[:port]`` (``hivectl remote add``).

        Every value is checked first (``ConfigError`` naming it); nothing runs on the remote. Then
        ``hivectl.remote.connect(vm_dir, name)`` reaches it.

        >>> hv.remote_add("dr", "ssh://root@dr.example.net", dry_run=True)
        []
        """
        from hivectl.remote import config

        config.add_checked(self._ctx.store.config_dir, name, url, command, identity, known_hosts, dry_run)
        return []

    def remote_remove(self, name: str, dry_run: bool = False) -> list[list[str]]:
        """Forget a remote (``hivectl remote remove``); nothing on the remote changes."""
        from hivectl.remote import config

        config.remove_checked(self._ctx.store.config_dir, name, dry_run)
        return []

    # -- access: tokens and grants (docs/security.md) ------------------------------------------------------
    def _actor(self) -> Principal:
        """Who the access operations act for (see ``__init__``)."""
        from hivectl.auth import invoker

        return self._principal if self._principal is not None else invoker.current()

    def token_create(self, role: str | None = None, path: str | None = None, expires: str = "90d",
                     user: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Make a bearer token (``hivectl token create``); ``token`` in the result is its secret, returned once.

        >>> made = hv.token_create(role="viewer", path="/guests/doc", expires="1h")
        >>> made["token"].startswith("hvt."), made["role"], made["path"]
        (True, 'viewer', '/guests/doc')
        >>> hv.token_create(role="admin", dry_run=True)["token"] is None  # checked, not made
        True
        """
        from hivectl.ops import access

        made = access.token_create(self._ctx.store, self._actor(), user, role, path, expires, dry_run)
        if made is None:
            return {"id": None, "owner": user or self._actor().name, "role": role, "path": path if role else None,
                    "expires": expires, "token": None}
        token, bearer = made
        return {**token.as_json(), "token": bearer}

    def token_list(self) -> list[dict[str, Any]]:
        """Tokens without their secrets (``hivectl token list --json``).

        >>> made = hv.token_create(expires="1h")
        >>> made["id"] in [t["id"] for t in hv.token_list()] and "token" not in hv.token_list()[0]
        True
        """
        from hivectl.ops import access

        return [t.as_json() for t in access.token_list(self._ctx.store, self._actor())]

    def token_revoke(self, token_id: str, dry_run: bool = False) -> list[list[str]]:
        """Revoke a token: it is refused from the next request on.

        >>> hv.token_revoke(hv.token_create(expires="1h")["id"])
        []
        """
        from hivectl.ops import access

        access.token_revoke(self._ctx.store, self._actor(), token_id, dry_run)
        return [["hivectl", "token", "revoke", token_id]] if dry_run else []

    def acl_grant(self, role: str, path: str, subject: str, dry_run: bool = False) -> list[list[str]]:
        """Grant ``role`` on ``path`` to ``subject`` (``USER``, ``@GROUP``, ``token:ID``).

        >>> hv.acl_grant("operator", "/guests/doc", "@nogroup")
        []
        >>> {"role": "operator", "path": "/guests/doc", "subject": "@nogroup"} in hv.acl_list()
        True
        """
        from hivectl.ops import access

        grant = access.acl_grant(self._ctx.store, self._actor(), role, path, subject, dry_run)
        return [["hivectl", "acl", "grant", *grant.line().split()]] if dry_run else []

    def acl_revoke(self, role: str, path: str, subject: str, dry_run: bool = False) -> list[list[str]]:
        """Remove exactly one grant.

        >>> hv.acl_grant("viewer", "/switches", "nobody")
        []
        >>> hv.acl_revoke("viewer", "/switches", "nobody", dry_run=True)
        [['hivectl', 'acl', 'revoke', 'viewer', '/switches', 'nobody']]
        """
        from hivectl.ops import access

        grant = access.acl_revoke(self._ctx.store, self._actor(), role, path, subject, dry_run)
        return [["hivectl", "acl", "revoke", *grant.line().split()]] if dry_run else []

    def acl_list(self) -> list[dict[str, str]]:
        """Every grant (``hivectl acl list --json``)."""
        from hivectl.ops import access

        return [g.as_json() for g in access.acl_list(self._ctx.store)]

    # -- tenants (docs/security.md) ------------------------------------------------------------------------
    def tenant_create(self, name: str, datastore: str, vlan: str, memory: str, user: str | None = None,
                      group: str | None = None, interface: str | None = None,
                      dry_run: bool = False) -> list[list[str]]:
        """Make a tenant: its datastore, VLAN switch, memory limit and grants, in one plan (``hivectl tenant create``).

        >>> hv.tenant_create("acme", "/nonexistent/acme", "40", "4G", dry_run=True)
        Traceback (most recent call last):
        ...
        hivectl.errors.NotFound: /nonexistent does not exist (the tenant's datastore directory is made in it)
        """
        from hivectl.ops.tenants import TenantRequest, plan_create

        request = TenantRequest(name, datastore, vlan, memory, user, group, interface)
        return self._run(plan_create(self._ctx.store, self._ctx.host, request), dry_run)

    def tenant_list(self) -> list[dict[str, str]]:
        """Every tenant's record (``hivectl tenant list --json``).

        >>> hv.tenant_list()
        []
        """
        from hivectl.ops.tenants import tenants

        return [t.as_json() for t in tenants(self._ctx.store)]

    def tenant_destroy(self, name: str, dry_run: bool = False) -> list[list[str]]:
        """Remove a tenant without guests; its dataset or directory is kept (never deleted)."""
        from hivectl.ops.tenants import plan_destroy

        plan, _ = plan_destroy(self._ctx.store, self._ctx.host, name)
        return self._run(plan, dry_run)

    def tenant_rules(self, name: str, kind: str, command: str = "/usr/local/bin/hivectl", install: bool = False,
                     file: str | None = None, dry_run: bool = False) -> str:
        """The tenant's sudo (``kind="sudo"``) or doas rules; ``install`` writes them (checked first)."""
        from hivectl.ops.tenants import rules

        text, _ = rules(self._ctx.store, self._ctx.host, name, kind, command, install,
                        Path(file) if file else None, dry_run)
        return text
    # -- events and audit (docs/events.md) -----------------------------------------------------------------
    def _config_dir(self) -> str:
        """Where this host's event and audit logs are (``vm_dir/.config``)."""
        return str(self._ctx.store.config_dir)

    def events(self, since: int = 0, guest: str | None = None) -> list[dict[str, Any]]:
        """The retained events after sequence number ``since`` (``hivectl events --json``), oldest first.

        >>> [e["type"] for e in hv.events(guest="evt")]  # made by audit's example
        ['created']
        """
        from hivectl.journal.query import events

        return list(events(self._config_dir(), since, guest))

    def audit(self, guest: str | None = None, since: str | int | None = None) -> list[dict[str, Any]]:
        """The retained audit lines (``hivectl audit --json``): of one guest, after a sequence number, a
        UTC time or an age (``2h``).

        >>> hv.create("evt", template="debian", size="1G")
        []
        >>> line = hv.audit(guest="evt")[-1]
        >>> line["operation"], line["target"], line["result"]
        ('create', ['/guests/evt'], 'ok')
        """
        from hivectl.journal.query import audit_lines

        return list(audit_lines(self._config_dir(), guest, since))


def _hide_secrets(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an audit line with what the catalog marks secret hidden (hivectl/catalog.py)."""
    from hivectl import catalog  # at the first change, not at import: the catalog is built from this class

    found = [op for op in catalog.operations() if op.method == method and op.mutating]
    return catalog.redact(found[0], arguments) if found else arguments


# The audit seam (hivectl/journal/audit.py): every method that changes something writes one audit line.
audit_methods(Hivectl, _hide_secrets)


def _decision(decision: Any) -> dict[str, Any]:
    """A retention decision as the API returns it (``hivectl.retention.Decision``)."""
    return {"name": decision.item.name, "time": decision.item.time, "keep": decision.keep,
            "rule": decision.rule or None}
