"""Issue 12's Ansible Done-means: ``ansible-playbook`` (ansible-core from PyPI) against a namespace host
over ssh creates, starts and snapshots a guest; the second run reports no change; check mode changes
nothing (and diff mode shows what it would change).

The managed host is one host of the many-hosts bed (tests/multihost/bed.py): a network namespace with its
own sshd, the simulated FreeBSD host with its vm_dir on the simulated pool (``zfs:zroot/vm``), so the
snapshot is a real dataset of that host. Ansible's modules run there with the bed's ``python3`` wrapper
(that host's environment) and call hivectl's Python API; what they did is checked on the host itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import REPO, is_journal_file, tree
from tests.multihost.bed import Bed, NsHost, make_bed

COLLECTION = REPO / "contrib" / "ansible"
PLAYBOOK = """\
- hosts: managed
  gather_facts: false
  tasks:
    - name: a switch for the guest
      hivectl.fleet.hivectl_switch: {name: public}
    - name: the guest, running
      hivectl.fleet.hivectl_guest:
        name: web1
        state: running
        size: 1G
        config: {cpu: "2", memory: 512M}
    - name: its first snapshot
      hivectl.fleet.hivectl_snapshot: {guest: web1, snapshot: base, force: true}
"""
# Check mode over a changed play: one more key, a second guest and its snapshot.
CHANGED = PLAYBOOK.replace('{cpu: "2", memory: 512M}', '{cpu: "4", memory: 512M}') + """\
    - hivectl.fleet.hivectl_guest: {name: web2, state: running}
    - hivectl.fleet.hivectl_snapshot: {guest: web1, snapshot: second, force: true}
"""

pytestmark = pytest.mark.skipif(shutil.which("ansible-playbook") is None,
                                reason="ansible-core is in the dev extra (pip install -e .[dev])")


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bed, NsHost, dict[str, str], Path]]:
    base = tmp_path_factory.mktemp("ansible")
    with make_bed(base / "bed", ["m"], zfs=True) as bed:
        host = bed["m"]
        work = base / "ansible"
        (work / "ansible_collections" / "hivectl").mkdir(parents=True)
        (work / "ansible_collections" / "hivectl" / "fleet").symlink_to(COLLECTION)
        (work / "remote-tmp").mkdir()
        inventory = work / "inventory.ini"
        inventory.write_text(
            f"managed ansible_host={host.address} ansible_user=root "
            f"ansible_ssh_private_key_file={bed.identity} "
            f"ansible_python_interpreter={host.command.with_name('python3')} "
            f"ansible_remote_tmp={work / 'remote-tmp'} "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={bed.known_hosts} -o StrictHostKeyChecking=yes "
            f"-o IdentitiesOnly=yes'\n")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HIVECTL_", "SIMHOST_", "ANSIBLE_"))},
               "ANSIBLE_HOME": str(work / "home"), "ANSIBLE_COLLECTIONS_PATH": str(work),
               "ANSIBLE_INVENTORY": str(inventory), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"), "ANSIBLE_LOCAL_TEMP": str(work / "local-tmp"),
               "ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "True"}
        yield bed, host, env, work


def play(env: dict[str, str], work: Path, text: str, *options: str) -> tuple[dict[str, int], str]:
    book = work / "play.yml"
    book.write_text(text)
    done = subprocess.run(["ansible-playbook", *options, str(book)], capture_output=True, text=True,
                          env=env, timeout=600, check=False, cwd=work)
    assert done.returncode == 0, f"ansible-playbook failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr}"
    recap = re.search(r"^managed\s*:\s*(.*)$", done.stdout, re.M)
    assert recap is not None, done.stdout
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
    return counts, done.stdout


def contents(root: Path) -> dict[str, str]:
    """Every file's digest under ``root`` (the journal's logs left out: a check run's reads are not logged,
    but a refused change would be): ``tree`` alone sees sizes, and cpu="2" -> cpu="4" keeps the size."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not is_journal_file(p)}


def host_state(host: NsHost) -> Any:
    assert host.sim is not None
    data = host.sim.state()
    return (tree(host.vm_dir), contents(host.vm_dir), sorted(host.sim.running()),
            json.dumps({k: data.get(k) for k in ("datasets", "interfaces")}, sort_keys=True, default=str))


def test_create_start_snapshot_then_nothing_then_check_mode(managed: tuple[Bed, NsHost, dict[str, str], Path]) -> None:
    _bed, host, env, work = managed
    assert host.sim is not None

    first, out = play(env, work, PLAYBOOK)
    assert first["changed"] == 3 and first["failed"] == 0, out
    assert "web1" in host.sim.running()
    conf = (host.vm_dir / "web1" / "web1.conf").read_text()
    assert 'cpu="2"' in conf and 'memory="512M"' in conf
    assert "zroot/vm/web1@base" in host.sim.datasets()
    assert "public" in host.ok("switch", "list").out

    second, out = play(env, work, PLAYBOOK)
    assert second["changed"] == 0 and second["ok"] == 3, out

    before = host_state(host)
    checked, out = play(env, work, CHANGED, "--check", "--diff")
    assert checked["changed"] == 3 and checked["failed"] == 0, out  # the cpu key, web2, web1@second
    assert host_state(host) == before
    assert '-cpu="2"' in out and '+cpu="4"' in out, out
    assert "web2" not in host.ok("list").out and "zroot/vm/web1@second" not in host.sim.datasets()

    audit = (host.vm_dir / ".config" / "audit.jsonl").read_text()
    assert '"operation":"snapshot"' in audit.replace(" ", "") and "web1@second" not in audit


REPLICATE = """\
- hosts: managed
  gather_facts: false
  tasks:
    - hivectl.fleet.hivectl_guest: {name: db1, state: present}
    - hivectl.fleet.hivectl_replicate: {guest: db1, remote: dr, every: 60s, keep: keep-last=2}
"""


def jobs(host: NsHost) -> list[tuple[str, str, str, str]]:
    words = host.ok("replicate", "list").out.split()
    return [tuple(words[i:i + 4]) for i in range(4, len(words), 4)]  # type: ignore[misc]


def test_replicate_job_created_then_unchanged_then_checked_then_removed(
        managed: tuple[Bed, NsHost, dict[str, str], Path]) -> None:
    """hivectl_replicate: the job is recorded (60s normalised to hivectl's 1m, so the second run finds it
    equal), check mode with another interval shows the diff and changes nothing, absent removes it."""
    _bed, host, env, work = managed
    first, out = play(env, work, REPLICATE)
    assert first["changed"] == 2 and first["failed"] == 0, out
    assert jobs(host) == [("db1", "dr", "1m", "keep-last=2")]
    second, out = play(env, work, REPLICATE)
    assert second["changed"] == 0, out
    config = host.vm_dir / ".config" / "replication.json"
    before = config.read_bytes()
    checked, out = play(env, work, REPLICATE.replace("60s", "5m"), "--check", "--diff")
    assert checked["changed"] == 1, out
    assert "-replicate db1 dr --every 1m --keep keep-last=2" in out, out
    assert "+replicate db1 dr --every 5m --keep keep-last=2" in out, out
    assert config.read_bytes() == before
    changed, out = play(env, work, REPLICATE.replace("60s", "5m"))
    assert changed["changed"] == 1 and jobs(host) == [("db1", "dr", "5m", "keep-last=2")], out
    gone = REPLICATE.replace("keep: keep-last=2}", "state: absent}")
    removed, out = play(env, work, gone)
    assert removed["changed"] == 1 and jobs(host) == [], out
    again, out = play(env, work, gone)
    assert again["changed"] == 0, out
