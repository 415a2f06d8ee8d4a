"""What every hivectl.fleet module shares: the API object for the managed host, errors as failures.

The modules run on the managed host and call hivectl's Python API there (hivectl/api.py): every
validation, lock, rollback and audit line is hivectl's own, and check mode is the API's ``dry_run``.
"""

from __future__ import annotations

from typing import Any

COMMON_ARGS: dict[str, Any] = {
    "vm_dir": {"type": "str"},  # default: what hivectl itself reads (HIVECTL_VM_DIR, rc.conf, /etc/hivectl.conf)
    "driver": {"type": "str", "choices": ["bhyve", "qemu"]},
}


def api(module: Any) -> Any:
    """``hivectl.api.Hivectl`` for the managed host, or the module fails saying hivectl is missing."""
    try:
        from hivectl.api import Hivectl
    except ImportError as error:
        module.fail_json(msg=f"hivectl is not importable on the managed host: {error}")
    return Hivectl(module.params.get("vm_dir"), module.params.get("driver"))


def guarded(module: Any, action: Any, *args: Any, **kwargs: Any) -> Any:
    """``action(*args, **kwargs)``; a hivectl error is the task's failure with hivectl's one line."""
    from hivectl.errors import HivectlError

    try:
        return action(*args, **kwargs)
    except HivectlError as error:
        module.fail_json(msg=str(error), exit_status=error.exit_status, error_type=type(error).__name__)
    except OSError as error:
        from hivectl.errors import os_error_line

        module.fail_json(msg=os_error_line(error))
    return None


def running(row: dict[str, Any] | None) -> bool:
    """A ``list --json`` row of a guest that is not stopped (running, in its loader, locked by a run)."""
    return row is not None and not str(row.get("state", "")).startswith("Stopped")


def config_lines(values: dict[str, str]) -> str:
    return "".join(f'{key}="{value}"\n' for key, value in sorted(values.items()))
