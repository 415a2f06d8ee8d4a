"""The machine hivectl runs on."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from hivectl.errors import HivectlError
from hivectl.host.base import CommandFailed, Host, Result
from hivectl.platforms import current_platform


class LocalHost(Host):
    """Runs commands locally with ``subprocess`` and argv lists (``shell`` is never used)."""

    def __init__(self, platform: str | None = None, root: Path | None = None) -> None:
        self.platform = platform or current_platform()
        self.root = root or Path(os.environ.get("HIVECTL_HOST_ROOT", "/") or "/")

    def run(self, argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Mapping[str, str] | None = None) -> Result:
        args = [str(a) for a in argv]
        if not args:
            raise ValueError("empty argv")
        merged = None if env is None else {**os.environ, **env}
        try:
            done = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=timeout,
                                  env=merged, check=False,
                                  stdin=subprocess.DEVNULL if input_text is None else None)
        except FileNotFoundError:
            raise HivectlError(f"{args[0]}: command not found (is it installed and on PATH?)") from None
        except subprocess.TimeoutExpired:
            raise HivectlError(f"{' '.join(args)}: no answer within {timeout} s") from None
        result = Result(tuple(args), done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise CommandFailed(result)
        return result
