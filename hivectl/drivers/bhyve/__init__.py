"""The bhyve driver: turns a guest's vm-bhyve config into bhyve, bhyveload and grub-bhyve commands.

Planning is pure: ``slots`` decides where every PCI device goes, ``devices`` and ``options`` build the
structured invocation, ``render`` prints it as argv, ``kconfig`` as a bhyve_config(5) file, ``loaders``
plans the boot loader or firmware, and ``driver`` ties it to the supervisor's ``Driver`` interface. Only
``driver`` asks the host anything, and only read-only questions (is vmm loaded, which ports listen).
See docs/bhyve.md for the rules and where they differ from vm-bhyve.
"""
