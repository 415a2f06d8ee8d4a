"""Confinement and value rules that every module calls instead of re-deriving them.

``paths``: where a path from a config, a template or a backup may live, and opening files inside a guest
directory without following symlinks. ``values``: what a value may contain before it goes into a config
file, and how a value is escaped for each option syntax hivectl builds (bhyve, QEMU, zfs).
"""
