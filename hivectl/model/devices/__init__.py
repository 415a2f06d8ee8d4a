"""The configuration keys of each device, one module per device, shared by every driver.

A module here declares ``KEYS`` (``KeySpec`` rows: pattern, check, meaning, default) for the keys of one
device (``diskN_*``, ``graphics*``...) and the value sets the drivers build from (disk types, NIC
models). hivectl/model/keys.py finds the modules of this package by listing it (hivectl/model/modules.py),
so a new device adds its keys here without a line anywhere else; the drivers' device kinds
(hivectl/drivers/*/devices/) import from the module of their device. The keys follow vm-bhyve
(sample-templates/config.sample, vm.8); ``hivectl=True`` marks the ones hivectl adds.
"""
