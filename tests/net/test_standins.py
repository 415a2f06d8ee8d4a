"""The stand-ins the switch tests rely on refuse what the real tools refuse (so a passing test means something)."""

from __future__ import annotations

from pathlib import Path

from tests.net.conftest import FreeBSD


def test_pfctl_checks_rules_and_needs_pf(freebsd: FreeBSD, tmp_path: Path) -> None:
    rules = tmp_path / "pf.conf"
    rules.write_text("nat on em0 inet from 10.0.0.0/24 to any -> (em0)\n")
    missing = freebsd.run("pfctl", "-a", "hivectl/x", "-f", str(rules))
    assert missing.returncode == 1 and "/dev/pf" in missing.stderr, "pf.ko is not loaded yet"
    assert freebsd.run("kldload", "pf").returncode == 0
    assert freebsd.run("pfctl", "-a", "hivectl/x", "-f", str(rules)).returncode == 0
    assert freebsd.run("pfctl", "-a", "hivectl/x", "-s", "nat").stdout == \
        "nat on em0 inet from 10.0.0.0/24 to any -> (em0)\n"
    for bad in ("nat on em0 inet from 10.0.0.0/24 to any\n",  # no translation target
                "pass quick on vm-x all\nnat on em0 from any to any -> (em0)\n",  # filtering before translation
                "rdr pass on em0 proto tcp from any to (em0) port 99999 -> 10.0.0.5 port 80\n",
                "nat on em0 from 10.0.0.300/24 to any -> (em0)\n"):
        rules.write_text(bad)
        result = freebsd.run("pfctl", "-a", "hivectl/x", "-f", str(rules))
        assert result.returncode == 1 and "pf rules not loaded" in result.stderr, bad
    assert freebsd.run("pfctl", "-a", "hivectl/x", "-s", "nat").stdout != "", "a refused file loads nothing"
    assert freebsd.run("pfctl", "-a", "hivectl/x", "-F", "all").returncode == 0
    assert freebsd.run("pfctl", "-a", "hivectl/x", "-s", "nat").stdout == ""
    assert "Status: Disabled" in freebsd.run("pfctl", "-s", "info").stdout


def test_dnsmasq_route_and_ngctl_refuse_bad_input(freebsd: FreeBSD, tmp_path: Path) -> None:
    pidfile = tmp_path / "d.pid"
    args = ["dnsmasq", "--conf-file=/dev/null", f"--pid-file={pidfile}", "--interface=vm-nope", "--bind-interfaces",
            "--dhcp-range=10.0.0.64,10.0.0.254,255.255.255.0,12h"]
    result = freebsd.run(*args)
    assert result.returncode == 2 and "unknown interface vm-nope" in result.stderr and not pidfile.exists()
    result = freebsd.run(*[a.replace("vm-nope", "em0") for a in args])
    assert result.returncode == 1 and "no address range" in result.stderr, "em0 is 192.0.2.10/24"
    assert freebsd.run("route", "delete", "-net", "239.1.2.3/32").returncode == 1
    assert freebsd.run("route", "add", "-net", "239.1.2.3/32", "-iface", "em9").returncode == 1
    assert freebsd.run("ngctl", "show", "nosuch:").returncode != 0
