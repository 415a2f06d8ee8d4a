"""The QEMU driver: the same vm-bhyve guest config rendered for ``qemu-system-x86_64`` on Linux.

It exists so that every lifecycle path hivectl has (start, reboot, ACPI shutdown, forced power-off and
reset, consoles, install boots) runs against a real hypervisor in tests, and so that hivectl is useful on
Linux hosts. Module map:

- ``driver``: ``QemuDriver``, the ``Driver`` interface (preflight, plan, classify, control);
- ``argv``: pure rendering of one boot (``BootPlan``) from the config;
- ``machine``, ``firmware``, ``consoles``: one part of the command line each;
- ``devices/``: one module per device kind (install medium, disk, nic, rng, passthru, graphics, usb, sound,
  virt_console), found by ``devices/registry.py`` and sorted into vm-bhyve's order, which ``argv`` walks;
- ``slots``: PCI addresses on q35's root bus; ``options``: QEMU option-string quoting;
- ``accel``: KVM only where it is real hardware virtualisation, else TCG;
- ``qmp``: a small synchronous QMP client; ``events``: the run-long QMP watcher that tells a reboot from
  a power-off (QEMU exits 0 for both).

See docs/qemu.md for the mapping of every key and the reasoning.
"""
