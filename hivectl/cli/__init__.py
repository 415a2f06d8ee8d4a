"""The ``hivectl`` command line: parsing and rendering only; the work is in ``hivectl.ops``."""
