"""Typed views of vm-bhyve's configuration files (guest, template, system)."""
