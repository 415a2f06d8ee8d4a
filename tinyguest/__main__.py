"""Command line: ``python3 -m tinyguest build [--cache DIR] [--json] [--force] [--no-install]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import apt
from .builder import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tinyguest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="build (or reuse from the cache) the guest artefacts and print their paths"
    )
    b.add_argument(
        "--cache", type=Path, help="cache directory (default ${XDG_CACHE_HOME:-~/.cache}/hivectl/tinyguest)"
    )
    b.add_argument("--json", action="store_true", help="print one JSON object instead of 'name path' lines")
    b.add_argument("--force", action="store_true", help="rebuild even if the cache has this recipe + kernel")
    b.add_argument(
        "--no-install", action="store_true", help="fail instead of apt-get installing missing tools"
    )
    r = sub.add_parser(
        "runtime-deps", help="install what the tests need to boot guests (qemu, qemu-img, OVMF)"
    )
    r.add_argument("--check", action="store_true", help="only list what is missing; exit 1 if anything is")
    args = parser.parse_args(argv)

    try:
        if args.command == "runtime-deps":
            if args.check:
                need = apt.missing(apt.RUNTIME_PACKAGES)
                print(" ".join(need))
                return 1 if need else 0
            apt.ensure_packages(apt.RUNTIME_PACKAGES)
            return 0
        art = build(args.cache, force=args.force, allow_install=not args.no_install)
    except (apt.AptError, RuntimeError) as exc:
        print(f"tinyguest: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(art.as_dict(), indent=2))
    else:
        for name, value in art.as_dict().items():
            print(f"{name:15} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
