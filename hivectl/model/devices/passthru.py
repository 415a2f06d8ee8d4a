"""PCI passthrough: ``passthruN`` (a host device's bus/slot/function) and ``passthruN_options``."""

from __future__ import annotations

from hivectl import patterns
from hivectl.errors import ConfigError
from hivectl.model.keyspec import KeySpec, Source
from hivectl.safety import values


def _address(source: Source, key: str, value: str) -> None:
    if not patterns.fullmatch(r"[0-9]{1,3}/[0-9]{1,2}/[0-7](=[0-9]{1,2}:[0-7])?", value):
        raise ConfigError(source, key, value, "expected a host PCI address bus/slot/function like 2/0/0, "
                                              "optionally =S:F for a fixed guest slot")


def _options(source: Source, key: str, value: str) -> None:
    if " " in value.strip():
        raise ConfigError(source, key, value, "options are comma-separated with no spaces")
    values.passthru_options(source, key, value)


KEYS = (
    KeySpec("passthruN", _address, "host PCI device bus/slot/function to pass through"),
    KeySpec("passthruN_options", _options, "extra passthru options (rom=, bootindex=)"),
)
