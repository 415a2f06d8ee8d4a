"""The README's main job: boot a small real VM with hivectl, on this Linux machine, end to end.

Builds the tiny guest (Debian kernel + busybox, cached), then in a scratch vm_dir and a private network
namespace (so the host's own network is never touched): init, a switch with an address, create a guest,
install it from the installer ISO, boot it from its disk, show its console's ready line, ping it over the
switch, list it, stop it through ACPI, destroy it. Everything is done through the real ``hivectl`` CLI.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = re.compile(r"HIVECTL-GUEST-READY ip=(\S+) mac=(\S+) disks=(\S+) boot=(\S+)")
def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import tinyguest
    from tinyguest.templates import hivectl_template

    say("building the tiny guest (cached after the first run)")
    art = tinyguest.build()
    print(f"kernel {art.kernel_package} {art.kernel_version}; installer {art.installer_iso}")

    scratch = Path(tempfile.mkdtemp(prefix="hivectl-tour."))
    vm_dir = scratch / "vm"
    vm_dir.mkdir()
    rc = scratch / "hivectl.conf"
    rc.write_text(f'vm_dir="{vm_dir}"\nvm_list="web1"\n')
    netns = f"hvtour-{secrets.token_hex(2)}"
    env = {**os.environ, "HIVECTL_RC_CONF": str(rc), "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu"}
    prefix = ["ip", "netns", "exec", netns]

    def hivectl(*args: str, check: bool = True, input_text: str | None = None) -> str:
        print(f"+ hivectl {' '.join(args)}", flush=True)
        done = subprocess.run([*prefix, sys.executable, "-m", "hivectl", *args], env=env, text=True,
                              capture_output=True, input=input_text, check=False)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if check and done.returncode != 0:
            raise SystemExit(f"tour failed at: hivectl {' '.join(args)}")
        return done.stdout

    def wait_console(pattern: re.Pattern[str] | str, after: int = 0, timeout: float = 180) -> re.Match[str]:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        log = vm_dir / "web1" / "console.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            match = regex.search(text, after)
            if match:
                return match
            time.sleep(0.25)
        raise SystemExit(f"the guest did not print {regex.pattern!r} within {timeout:.0f} s (see {log})")

    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], check=True)
        say("a vm_dir of our own, and a switch with the host's address on it")
        hivectl("init")
        (vm_dir / ".templates" / "tiny.conf").write_text(hivectl_template())
        hivectl("switch", "create", "-a", "10.77.0.1/24", "lan")
        hivectl("switch", "list")
        say("create a guest from a template")
        hivectl("create", "-t", "tiny", "web1")
        hivectl("start", "--dry-run", "web1")
        say("install it from the ISO (the installer writes the disk, then powers off)")
        started = time.monotonic()
        hivectl("install", "web1", str(art.installer_iso))
        print(wait_console(r"HIVECTL-INSTALL-DONE \S+").group(0))
        while "Stopped" not in hivectl("list"):
            time.sleep(1)
        print(f"installed in {time.monotonic() - started:.1f} s")
        say("boot it from its disk; the guest's own console says when it is ready")
        mark = (vm_dir / "web1" / "console.log").stat().st_size
        started = time.monotonic()
        hivectl("start", "web1")
        ready = wait_console(READY, after=mark)
        print(f"console: {ready.group(0)}   ({time.monotonic() - started:.1f} s after start)")
        hivectl("list")
        ip = ready.group(1).split("/")[0]
        say(f"ping the guest at {ip} over the switch")
        subprocess.run([*prefix, "ping", "-c", "3", "-W", "3", ip], check=True)
        say("talk to it through its serial console")
        hivectl("console", "web1", input_text="uname -r; cat /proc/cmdline\n")
        say("stop it: ACPI power button, wait, and it is off")
        started = time.monotonic()
        hivectl("stop", "--timeout", "30", "web1")
        print(f"stopped in {time.monotonic() - started:.1f} s")
        hivectl("list")
        hivectl("destroy", "-f", "web1")
        say("done: hivectl booted a real VM with QEMU, the same model and commands it drives bhyve with")
        return 0
    finally:
        pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
        for pid in pids.split():
            subprocess.run(["kill", "-9", pid], check=False)
        subprocess.run(["ip", "netns", "delete", netns], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
