"""Fixtures of the many-hosts tests (issue 12): namespace hosts with their own sshd and vm_dir.

Usage (everything is in tests/multihost/bed.py; read its docstring for what a host is)::

    from tests.multihost.bed import Bed, make_bed

    def test_something(bed: Bed) -> None:          # module scope: two simulated FreeBSD hosts, a and b
        a, b = bed["a"], bed["b"]
        a.ok("create", "web1")                      # hivectl on host a, in a's namespace, with a's vm_dir
        b.sim.running()                             # b's simulated host (tests/simhost SimHost)
        bed.add_remote(a, "b", b)                   # on a: hivectl remote add b ssh://root@ADDR --command ...
        a.ok("-H", "b", "list")                     # a's hivectl reaches b over ssh
        b.down(); b.up()                            # b unreachable (sshd and its sessions killed), back

Your own mix of hosts (platform "sim" or "qemu"; ``zfs=True`` puts every qemu host on a zfs-fuse pool of
its own, vm_dir ``zfs:POOL/vm``)::

    @pytest.fixture(scope="module")
    def qbed(tmp_path_factory):
        with make_bed(tmp_path_factory.mktemp("qbed"), [("src", "qemu"), ("dst", "qemu")], zfs=True) as bed:
            yield bed

What each host gives: ``name``, ``netns``, ``address`` (sshd on port 22 there), ``url`` (ssh://root@ADDR),
``base`` (its directory), ``vm_dir`` and ``vm_dir_setting``, ``env`` (its hivectl's environment),
``command`` (the wrapper: ``hivectl remote add --command`` names it), ``sim`` (SimHost or None), ``pool``,
``hivectl(*args)`` / ``ok(*args)`` (an ``Outcome``: status, out, err, json()), ``nsenter(argv)`` (any
command inside its namespace), ``down()`` / ``up()``. The bed gives ``identity`` (the client key every host
accepts), ``known_hosts`` (every host's key), ``remote_args(host)``, ``add_remote(on, name, to)``
(``on=None``: the test's own hivectl, with ``env=local_env(base)``) and ``connect_everyone()``.

Beds are not cheap (about 2 s per host): take one per module (scope="module") and give each test guests
of its own names. Everything is cleaned up at the end, also after a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.multihost.bed import Bed, make_bed

NEEDS = ("sshd", "ssh", "ssh-keygen", "nsenter", "ip")


def _missing() -> list[str]:
    return [tool for tool in NEEDS if shutil.which(tool) is None and shutil.which(f"/usr/sbin/{tool}") is None]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """Two simulated FreeBSD hosts, ``a`` and ``b``, each in its namespace with its sshd and vm_dir."""
    missing = _missing()
    if missing:  # scripts/setup installs them; a machine without them cannot run this bed at all
        pytest.fail(f"the many-hosts bed needs {', '.join(missing)} (scripts/setup installs them)")
    with make_bed(tmp_path_factory.mktemp("bed")) as made:
        yield made
