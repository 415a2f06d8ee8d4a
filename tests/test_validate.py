"""Every kind of value is checked at the edge, with errors naming source, key and value."""

from __future__ import annotations

import pytest

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.model import keys


@pytest.mark.parametrize("name", ["a/b", "a b", "a;b", "..", "", "x" * 200, "-a", ".hidden", "a..b", "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate.name("f.conf", "name", name)
    assert "f.conf" in str(info.value) and "name=" in str(info.value)


@pytest.mark.parametrize("name", ["a", "web1", "web.example_2-x", "A" * 63])
def test_good_names(name: str) -> None:
    assert validate.name(None, "name", name) == name


@pytest.mark.parametrize(("text", "size"), [("512M", 512 << 20), ("2G", 2 << 30), ("2GB", 2 << 30), ("1024", 1 << 30),
                                            ("2097152", 2097152), ("4096b", 4096), ("1t", 1 << 40)])
def test_memory_follows_bhyve(text: str, size: int) -> None:
    assert validate.memory(None, "memory", text) == size


@pytest.mark.parametrize("text", ["4Q", "", "G", "2 G", "2GBB", "-1G", "0", "1000b"])
def test_memory_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        validate.memory(None, "memory", text)


@pytest.mark.parametrize(("key", "value"), [("cpu", "0"), ("cpu", "two"), ("loader", "lilo"),
                                            ("network0_mac", "01:00:00:00:00:01"), ("network0_mac", "zz"),
                                            ("disk1_type", "floppy"), ("graphics_res", "100x100"),
                                            ("uuid", "0b1c7f5e-6a53-11ef-ef0d-589cfc000001"),
                                            ("comports", "com1 com1"), ("disk0_slot", "31"),
                                            ("network2_slot", "40:0"), ("passthru0", "2:0:0"),
                                            ("zfs_zvol_opts", "compression"), ("network0_mtu", "x")])
def test_guest_keys_reject(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        keys.check("g.conf", key, value)
    assert key in str(info.value)


@pytest.mark.parametrize(("key", "value"), [("cpu", "4"), ("loader", "uefi-csm"), ("network0_mac", "58:9c:fc:01:02:03"),
                                            ("disk3_type", "nvme"), ("disk0_slot", "7"), ("network1_slot", "1:6:0"),
                                            ("passthru0", "2/0/0=8:0"), ("some_future_key", "anything")])
def test_guest_keys_accept(key: str, value: str) -> None:
    keys.check("g.conf", key, value)


def test_cidr() -> None:
    assert str(validate.cidr(None, "addr", "10.0.0.1/24")) == "10.0.0.1/24"
    with pytest.raises(ConfigError):
        validate.cidr(None, "addr", "10.0.0.300/24")
