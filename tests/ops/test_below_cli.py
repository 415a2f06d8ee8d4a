"""Nothing below the command line imports it: only the entry point (``hivectl/__main__.py``) does.

The REST daemon, the Python API and the supervisor build their ``hivectl.context.Context`` themselves; an
import of ``hivectl.cli`` from below would drag argument parsing (and printing) into them (issue 9.1).
"""

from __future__ import annotations

import ast
from pathlib import Path

import hivectl

PACKAGE = Path(hivectl.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_entry_point_imports_the_cli() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative == Path("__main__.py"):
            continue
        wrong = sorted(n for n in _imports(path) if n == "hivectl.cli" or n.startswith("hivectl.cli."))
        if wrong:
            offenders.append(f"hivectl/{relative}: {', '.join(wrong)}")
    assert offenders == []


def test_the_context_builds_without_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from hivectl.context import Context; c = Context(vm_dir=sys.argv[1]); "
            "c.store; assert not [m for m in sys.modules if m.startswith('hivectl.cli')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
