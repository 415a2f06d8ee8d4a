"""One retention grammar for everything hivectl keeps a series of: snapshots, backups, later replicas.

Pure: no I/O, no clock, no host. A caller turns what it has (ZFS snapshots with their creation time and
properties, backup files, a replica's snapshots) into :class:`Item` values, asks :func:`select` what a
:class:`Policy` keeps, and plans the removal of the rest itself. The semantics are Proxmox's prune
options (the Proxmox Backup Server manual, "Maintenance Tasks: Pruning", and the Proxmox VE manual,
"Backup Retention"; ``pvesm prune-backups``):

- ``keep-last N``, then ``keep-hourly``, ``keep-daily``, ``keep-weekly`` (ISO weeks, Monday to Sunday),
  ``keep-monthly``, ``keep-yearly``, applied in that order; each keeps the newest item of each of the N
  newest periods that have one (periods without an item do not count), and each considers only what the
  earlier ones left: a period that already holds an item kept by an earlier option is not counted again;
- an item that is protected (``hivectl:protected`` on a snapshot, as Proxmox's protected backups) or not
  yet replicated is never removed, and neither counts towards an option nor covers its period;
- a policy with no option keeps everything (Proxmox's ``keep-all``).

``hivectl retention explain`` shows the decision for each item with the option that kept it;
``hivectl snapshot prune`` applies it (docs/storage.md, "Retention").
"""

from hivectl.retention.policy import RULES, Policy, parse_policy
from hivectl.retention.select import Decision, Item, select

__all__ = ["RULES", "Decision", "Item", "Policy", "parse_policy", "select"]
